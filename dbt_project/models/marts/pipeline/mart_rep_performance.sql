{#- One row per period (calendar month or fiscal quarter), level (rep, team, territory) and member of that level.
    Bookings and win rates count deals that closed in the period, credited to the owner and to the team and
    territory the owner was in at close; pipeline created counts deals created in the period; activities count
    customer-facing activities. Ratios are computed from the summed parts at each level, never averaged. -#}
with

opportunities as (
    select * from {{ ref('fct_opportunity') }}
),

activities as (
    select * from {{ ref('fct_rep_daily_activity') }}
),

reps as (
    select * from {{ ref('dim_rep') }}
    where is_current
),

dates as (
    select * from {{ ref('dim_date') }}
),

quotas as (
    select * from {{ ref('stg_reference__quotas') }}
),

facts as (
    -- one row per deal event or rep day, with the parts every measure is built from
    select
        owner_id as rep_id,
        team_id,
        territory_id,
        close_date as event_date,
        case when is_won then amount_reporting else 0 end as bookings_amount,
        case when is_win_rate_eligible and is_won then 1 else 0 end as won_count,
        case when is_win_rate_eligible and not is_won then 1 else 0 end as lost_count,
        case when is_win_rate_eligible and is_won then amount_reporting else 0 end as won_amount,
        case when is_win_rate_eligible and not is_won then amount_reporting else 0 end as lost_amount,
        case when is_won then 1 else 0 end as bookings_count,
        case when is_won then age_days else 0 end as won_cycle_days,
        0 as pipeline_created_amount,
        0 as activity_count
    from opportunities
    where is_closed
    union all
    select
        owner_id as rep_id,
        team_id,
        territory_id,
        created_date as event_date,
        0 as bookings_amount,
        0 as won_count,
        0 as lost_count,
        0 as won_amount,
        0 as lost_amount,
        0 as bookings_count,
        0 as won_cycle_days,
        case when amount_reporting > 0 then amount_reporting else 0 end as pipeline_created_amount,
        0 as activity_count
    from opportunities
    union all
    select
        activities.rep_id,
        reps.team_id,
        reps.territory_id,
        activities.activity_date as event_date,
        0 as bookings_amount,
        0 as won_count,
        0 as lost_count,
        0 as won_amount,
        0 as lost_amount,
        0 as bookings_count,
        0 as won_cycle_days,
        0 as pipeline_created_amount,
        activities.calls + activities.meetings_held + activities.emails as activity_count
    from activities
    left join reps on activities.rep_id = reps.rep_id
),

in_periods as (
    select
        facts.*,
        'month' as period_type,
        dates.month_start_date as period_start_date
    from facts inner join dates on facts.event_date = dates.date_day
    where facts.event_date <= {{ as_of_date() }}
    union all
    select
        facts.*,
        'fiscal_quarter' as period_type,
        dates.fiscal_quarter_start_date as period_start_date
    from facts inner join dates on facts.event_date = dates.date_day
    where facts.event_date <= {{ as_of_date() }}
),

by_level as (
    {% for level, member in [('rep', 'rep_id'), ('team', 'team_id'), ('territory', 'territory_id')] %}
        select
            period_type,
            period_start_date,
            '{{ level }}' as rollup_level,
            {{ member }} as member_id,
            sum(bookings_amount) as bookings_amount,
            sum(bookings_count) as bookings_count,
            sum(won_count) as won_count,
            sum(lost_count) as lost_count,
            sum(won_amount) as won_amount,
            sum(lost_amount) as lost_amount,
            sum(won_cycle_days) as won_cycle_days,
            sum(pipeline_created_amount) as pipeline_created_amount,
            sum(activity_count) as activity_count
        from in_periods
        where {{ member }} is not null
        group by period_type, period_start_date, {{ member }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

quota_by_level as (
    -- quarterly quotas: a rep's own, a team's (set on its manager), a territory's (its teams' summed)
    select
        'rep' as rollup_level,
        owner_id as member_id,
        period_start_date,
        sum(quota_amount) as quota_amount
    from quotas
    where quota_type = 'individual'
    group by owner_id, period_start_date
    union all
    select
        'team' as rollup_level,
        owner_id as member_id,
        period_start_date,
        sum(quota_amount) as quota_amount
    from quotas
    where quota_type = 'team'
    group by owner_id, period_start_date
    union all
    select
        'territory' as rollup_level,
        reps.territory_id as member_id,
        quotas.period_start_date,
        sum(quotas.quota_amount) as quota_amount
    from quotas
    inner join reps on quotas.owner_id = reps.rep_id
    where quotas.quota_type = 'team' and reps.territory_id is not null
    group by reps.territory_id, quotas.period_start_date
)

select
    {{ dbt.hash(dbt.concat([
        "by_level.period_type", "'|'", "cast(by_level.period_start_date as " ~ dbt.type_string() ~ ")", "'|'",
        "by_level.rollup_level", "'|'", "by_level.member_id",
    ])) }} as rep_performance_id,
    by_level.period_type,
    by_level.period_start_date,
    by_level.rollup_level,
    by_level.member_id,
    cast(by_level.bookings_amount as decimal(18, 2)) as bookings_amount,
    cast(by_level.bookings_count as integer) as bookings_count,
    cast(quota_by_level.quota_amount as decimal(18, 2)) as quota_amount,
    cast({{ safe_ratio('by_level.bookings_amount', 'quota_by_level.quota_amount') }} as double) as attainment,
    cast(by_level.won_count as integer) as won_count,
    cast(by_level.lost_count as integer) as lost_count,
    cast({{ safe_ratio('by_level.won_count', 'by_level.won_count + by_level.lost_count') }} as double)
        as win_rate_by_count,
    cast({{ safe_ratio('by_level.won_amount', 'by_level.won_amount + by_level.lost_amount') }} as double)
        as win_rate_by_value,
    cast({{ safe_ratio('by_level.bookings_amount', 'by_level.bookings_count') }} as decimal(18, 2))
        as average_deal_size,
    cast({{ safe_ratio('by_level.won_cycle_days', 'by_level.bookings_count') }} as double) as sales_cycle_days,
    cast(by_level.pipeline_created_amount as decimal(18, 2)) as pipeline_created_amount,
    cast(by_level.activity_count as integer) as activity_count
from by_level
left join quota_by_level
    on by_level.rollup_level = quota_by_level.rollup_level
        and by_level.member_id = quota_by_level.member_id
        and by_level.period_type = 'fiscal_quarter'
        and by_level.period_start_date = quota_by_level.period_start_date
