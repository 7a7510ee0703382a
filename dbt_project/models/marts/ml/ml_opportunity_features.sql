{#- One row per open opportunity per snapshot date: what was known about the deal at the end of that day, for the
    win-probability model (ml/). Snapshot dates are the last day of every ISO week (Sunday) from the calendar's
    first day, plus the as-of date itself. Every column comes from as-of-aware models (the deal's state that day,
    its stage visits, its activities before the end of the day, deals closed before it); the deal's outcome is
    never here (ml/features.py rejects such columns). -#}
with

states as (
    select * from {{ ref('int_opportunity_states_versioned') }}
),

visits as (
    select * from {{ ref('int_opportunity_stage_visits') }}
),

pipeline_days as (
    select * from {{ ref('fct_pipeline_daily') }}
),

opportunities as (
    select * from {{ ref('fct_opportunity') }}
),

reps as (
    select * from {{ ref('dim_rep') }}
),

activities as (
    select * from {{ ref('fct_activity') }}
    where opportunity_id is not null and is_customer_facing
),

snapshot_dates as (
    select distinct date_day as snapshot_date
    from {{ ref('dim_date') }}
    where date_day <= {{ as_of_date() }}
        and (
            date_day = {{ as_of_date() }}
            or cast({{ dbt.dateadd('day', 6, dbt.date_trunc('week', 'date_day')) }} as date) = date_day
        )
),

snapshots as (
    -- the deal as it stood at the end of the snapshot day (fct_pipeline_daily: its open days)
    select
        pipeline_days.opportunity_id,
        snapshot_dates.snapshot_date,
        cast({{ dbt.dateadd('day', 1, 'snapshot_dates.snapshot_date') }} as {{ dbt.type_timestamp() }}) as known_before,
        pipeline_days.owner_id,
        pipeline_days.stage_name,
        pipeline_days.stage_order,
        pipeline_days.forecast_category,
        pipeline_days.probability,
        pipeline_days.amount_reporting,
        pipeline_days.expected_close_date,
        pipeline_days.is_pipeline_eligible
    from pipeline_days
    inner join snapshot_dates on pipeline_days.pipeline_date = snapshot_dates.snapshot_date
),

current_visit as (
    select
        snapshots.opportunity_id,
        snapshots.snapshot_date,
        max(visits.entered_at) as stage_entered_at
    from snapshots
    inner join visits
        on snapshots.opportunity_id = visits.opportunity_id
            and snapshots.known_before > visits.entered_at
    group by snapshots.opportunity_id, snapshots.snapshot_date
),

pushes as (
    select
        snapshots.opportunity_id,
        snapshots.snapshot_date,
        sum(case when states.is_close_date_push then 1 else 0 end) as close_date_pushes
    from snapshots
    inner join states
        on snapshots.opportunity_id = states.opportunity_id
            and snapshots.known_before > states.valid_from_at
    group by snapshots.opportunity_id, snapshots.snapshot_date
),

activity_counts as (
    select
        snapshots.opportunity_id,
        snapshots.snapshot_date,
        {%- for days in [7, 30, 90] %}
            {%- for activity_type in ['call', 'email', 'meeting'] %}
                count(case
                    when activities.activity_type = '{{ activity_type }}'
                        and activities.occurred_at >= {{ dbt.dateadd('day', -days, 'snapshots.known_before') }}
                        then 1
                end) as {{ activity_type }}s_{{ days }}d,
            {%- endfor %}
        {%- endfor %}
        count(case when activities.activity_type = 'call' and activities.is_connected then 1 end)
            as connected_calls_to_date,
        count(case when activities.activity_type = 'meeting' then 1 end) as meetings_held_to_date,
        count(distinct activities.contact_id) as contacts_engaged_to_date,
        max(activities.occurred_at) as last_activity_at
    from snapshots
    inner join activities
        on snapshots.opportunity_id = activities.opportunity_id
            and activities.occurred_at < snapshots.known_before
            -- a cancelled meeting was not held
            and not (activities.activity_type = 'meeting' and activities.is_cancelled)
    group by snapshots.opportunity_id, snapshots.snapshot_date
),

closed_deals as (
    -- win-rate-eligible deals and when they closed: a rate at a date counts only those closed before it
    select
        owner_id,
        segment,
        closed_at,
        case when is_won then 1 else 0 end as is_won
    from opportunities
    where is_win_rate_eligible and closed_at is not null
),

owner_rates as (
    select
        snapshots.opportunity_id,
        snapshots.snapshot_date,
        count(closed_deals.closed_at) as owner_closed_deals,
        sum(closed_deals.is_won) as owner_won_deals
    from snapshots
    inner join closed_deals
        on snapshots.owner_id = closed_deals.owner_id and snapshots.known_before > closed_deals.closed_at
    group by snapshots.opportunity_id, snapshots.snapshot_date
),

segment_rates as (
    select
        snapshot_dates.snapshot_date,
        closed_deals.segment,
        count(*) as segment_closed_deals,
        sum(closed_deals.is_won) as segment_won_deals
    from snapshot_dates
    inner join closed_deals
        on closed_deals.closed_at
            < cast({{ dbt.dateadd('day', 1, 'snapshot_dates.snapshot_date') }} as {{ dbt.type_timestamp() }})
    group by snapshot_dates.snapshot_date, closed_deals.segment
),

owner_at_snapshot as (
    select
        snapshots.opportunity_id,
        snapshots.snapshot_date,
        reps.team_id,
        reps.territory_id,
        reps.hire_date
    from snapshots
    inner join reps
        on snapshots.owner_id = reps.rep_id
            and snapshots.known_before > reps.valid_from_at
            and (reps.valid_to_at is null or snapshots.known_before <= reps.valid_to_at)
)

select
    -- ids
    {{ dbt.concat(["snapshots.opportunity_id", "'|'", "cast(snapshots.snapshot_date as varchar)"]) }}
        as opportunity_snapshot_id,
    snapshots.opportunity_id,
    snapshots.snapshot_date,
    snapshots.owner_id,
    owner_at_snapshot.team_id,
    owner_at_snapshot.territory_id,

    -- the deal that day
    snapshots.stage_name,
    snapshots.stage_order,
    cast({{ days_between('current_visit.stage_entered_at', 'snapshots.known_before') }} as decimal(10, 2))
        as days_in_stage,
    cast({{ dbt.datediff('opportunities.created_date', 'snapshots.snapshot_date', 'day') }} as integer) as age_days,
    snapshots.amount_reporting,
    '{{ var("reporting_currency") }}' as reporting_currency,
    cast(coalesce(pushes.close_date_pushes, 0) as integer) as close_date_pushes,
    snapshots.expected_close_date,
    cast({{ dbt.datediff('snapshots.snapshot_date', 'snapshots.expected_close_date', 'day') }} as integer)
        as days_to_expected_close,
    snapshots.forecast_category,
    snapshots.probability as crm_probability,
    snapshots.is_pipeline_eligible,
    opportunities.opportunity_type,
    opportunities.segment,
    opportunities.region,
    cast({{ dbt.datediff('owner_at_snapshot.hire_date', 'snapshots.snapshot_date', 'day') }} as integer)
        as owner_tenure_days,

    -- activity before the end of the day
    {%- for days in [7, 30, 90] %}
        {%- for activity_type in ['call', 'email', 'meeting'] %}
            cast(coalesce(activity_counts.{{ activity_type }}s_{{ days }}d, 0) as integer)
                as {{ activity_type }}s_{{ days }}d,
        {%- endfor %}
    {%- endfor %}
    cast(coalesce(activity_counts.connected_calls_to_date, 0) as integer) as connected_calls_to_date,
    cast(coalesce(activity_counts.meetings_held_to_date, 0) as integer) as meetings_held_to_date,
    cast(coalesce(activity_counts.contacts_engaged_to_date, 0) as integer) as contacts_engaged_to_date,
    cast({{ days_between('activity_counts.last_activity_at', 'snapshots.known_before') }} as decimal(10, 2))
        as days_since_last_activity,

    -- win rates of deals closed before the end of the day
    cast(coalesce(owner_rates.owner_closed_deals, 0) as integer) as owner_closed_deals,
    cast({{ safe_ratio('owner_rates.owner_won_deals', 'owner_rates.owner_closed_deals') }} as double)
        as owner_win_rate,
    cast(coalesce(segment_rates.segment_closed_deals, 0) as integer) as segment_closed_deals,
    cast({{ safe_ratio('segment_rates.segment_won_deals', 'segment_rates.segment_closed_deals') }} as double)
        as segment_win_rate
from snapshots
inner join opportunities on snapshots.opportunity_id = opportunities.opportunity_id
left join current_visit
    on snapshots.opportunity_id = current_visit.opportunity_id and snapshots.snapshot_date = current_visit.snapshot_date
left join pushes
    on snapshots.opportunity_id = pushes.opportunity_id and snapshots.snapshot_date = pushes.snapshot_date
left join activity_counts
    on snapshots.opportunity_id = activity_counts.opportunity_id
        and snapshots.snapshot_date = activity_counts.snapshot_date
left join owner_rates
    on snapshots.opportunity_id = owner_rates.opportunity_id and snapshots.snapshot_date = owner_rates.snapshot_date
left join segment_rates
    on snapshots.snapshot_date = segment_rates.snapshot_date and opportunities.segment = segment_rates.segment
left join owner_at_snapshot
    on snapshots.opportunity_id = owner_at_snapshot.opportunity_id
        and snapshots.snapshot_date = owner_at_snapshot.snapshot_date
