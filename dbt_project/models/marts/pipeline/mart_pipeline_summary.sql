{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_pipeline_summary_rows_to_recompute() }}",
    meta={'new_rows': 'as_of_date > {previous_as_of_date}'},
) }}

{#- One row per as-of day, team, territory, stage and forecast category, for every day up to the build's as-of
    date. Each deal counts in the row of the state it stood in at the end of that day. Open measures count open,
    pipeline-eligible deals, converted at that day's FX rate; created, won, lost and pushed count the fiscal quarter
    to date. A closed deal sits in its Closed Won or Closed Lost row on the days of the fiscal quarter of its close
    date, credited to the team and territory of its owner at the close, at the close date's FX rate: the rules of
    fct_bookings, so that won amounts and team bookings equal fct_bookings and mart_quota_attainment. Coverage is per
    team and quarter and repeated on each of the team's rows, with numerator and denominator: open pipeline expected
    to close by the quarter's end / (team quota - team bookings to date).

    Incremental by day: a build recomputes every day from the first one that what changed since the previous build
    can reach, for every team or for the teams a change can move rows between (macros/pipeline.sql: a deal moved to
    another owner reaches back to its creation, for its old and new teams), after its pre-hook deleted those rows.
    Rebuilt every day in full, it took 218.6 s of a 541.5 s bench-scale build. -#}
-- read only by an incremental build (macros/pipeline.sql):
-- depends_on: {{ ref('stg_crm__opportunities') }}
-- depends_on: {{ ref('stg_crm__opportunity_history') }}
-- depends_on: {{ ref('stg_crm__opportunity_stages') }}
-- depends_on: {{ ref('stg_crm__opportunity_versions') }}
-- depends_on: {{ ref('stg_crm__users') }}
-- depends_on: {{ ref('int_opportunity_stages_resolved') }}
-- depends_on: {{ ref('stg_reference__fx_rates') }}
{%- set build = incremental_build() %}
{%- set incremental = build.mode == 'incremental' %}
{%- if incremental %}
    {%- set scope = pipeline_summary_scope(build) %}
    {%- set first_day = scope.some_teams_from %}
{%- else %}
    {%- set first_day = "cast('" ~ var('calendar_start_date') ~ "' as date)" %}
{%- endif %}

with

states as (
    select * from {{ ref('int_opportunity_states_versioned') }}
),

opportunities as (
    select * from {{ ref('fct_opportunity') }}
),

reps as (
    select * from {{ ref('dim_rep') }}
),

dates as (
    -- the days this build writes
    select * from {{ ref('dim_date') }}
    where date_day >= {{ first_day }} and date_day <= {{ as_of_date() }}
),

quotas as (
    select
        owner_id as team_id,
        period_start_date,
        sum(quota_amount) as quota_amount
    from {{ ref('stg_reference__quotas') }}
    where quota_type = 'team'
    group by owner_id, period_start_date
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

state_days as (
    -- An open state holds until the next change. A closed state counts on the days of the fiscal quarter of its close
    -- date (the period fct_bookings credits it to) while it held: a deal won on 28 April with a close date of 3 May
    -- is a booking of May's quarter, and one closed after the end of the quarter its close date names was never won
    -- on that quarter's days; without a close date in the calendar it is booked in no quarter.
    select
        states.*,
        opportunities.currency,
        opportunities.owner_id,
        opportunities.created_date,
        opportunities.team_id as opportunity_team_id,
        opportunities.territory_id as opportunity_territory_id,
        greatest(
            cast(states.valid_from_at as date),
            coalesce(closing_quarter.fiscal_quarter_start_date, cast(states.valid_from_at as date)),
            {% if incremental %}
                -- a deal that can count for a changed team from its first changed day, any other from the day
                -- every team changed
                case
                    when
                        coalesce(opportunities.team_id, '') in {{ scope.teams }}
                        or opportunities.owner_id in (
                            select team_reps.rep_id from reps as team_reps
                            where coalesce(team_reps.team_id, '') in {{ scope.teams }}
                        )
                        then {{ scope.some_teams_from }}
                    else {{ scope.every_team_from }}
                end
            {% else %}
                {{ first_day }}
            {% endif %}
        ) as first_day,
        case
            when states.is_closed
                then least(
                        closing_quarter.fiscal_quarter_end_date,
                        coalesce(
                            cast({{ dbt.dateadd('day', -1, 'cast(states.valid_to_at as date)') }} as date),
                            {{ as_of_date() }}
                        )
                    )
            when states.valid_to_at is null then {{ as_of_date() }}
            else cast({{ dbt.dateadd('day', -1, 'cast(states.valid_to_at as date)') }} as date)
        end as last_day,
        -- Closed deals in the reporting currency at the close date's rate, credited to the owner's team and
        -- territory at the close. The deal's current closed state takes fct_opportunity's amount, team and
        -- territory, the ones fct_bookings books (one conversion, rounded once, so that the two agree to the cent);
        -- a closed state the deal later left (reopened, or edited while closed) converts its own amount by the same
        -- rule and is credited to the owner's team at that close.
        case
            when states.valid_to_at is null and opportunities.is_closed then opportunities.amount_reporting
            else cast(states.amount * closing_rates.rate as decimal(18, 2))
        end as closed_amount_reporting,
        case
            when states.valid_to_at is null and opportunities.is_closed then opportunities.team_id
            else coalesce(owner_at_close.team_id, opportunities.team_id)
        end as closing_team_id,
        case
            when states.valid_to_at is null and opportunities.is_closed then opportunities.territory_id
            else coalesce(owner_at_close.territory_id, opportunities.territory_id)
        end as closing_territory_id
    from states
    inner join opportunities on states.opportunity_id = opportunities.opportunity_id
    left join {{ ref('dim_date') }} as closing_quarter
        on states.is_closed and states.close_date = closing_quarter.date_day
    left join fx_rates as closing_rates
        on states.is_closed
            and opportunities.currency = closing_rates.currency
            and states.close_date = closing_rates.rate_date
    left join reps as owner_at_close
        on states.is_closed
            and opportunities.owner_id = owner_at_close.rep_id
            and states.valid_from_at >= owner_at_close.valid_from_at
            and (owner_at_close.valid_to_at is null or states.valid_from_at < owner_at_close.valid_to_at)
    where not states.is_closed or closing_quarter.date_day is not null
),

first_pushes as (
    -- the first day in each fiscal quarter a deal's expected close date moved later
    select
        states.opportunity_id,
        push_day.fiscal_quarter_start_date,
        min(push_day.date_day) as first_push_date
    from states
    inner join {{ ref('dim_date') }} as push_day on cast(states.valid_from_at as date) = push_day.date_day
    where states.is_close_date_push
    group by states.opportunity_id, push_day.fiscal_quarter_start_date
),

deal_days as (
    select
        dates.date_day as as_of_date,
        dates.fiscal_quarter_start_date,
        dates.fiscal_quarter_end_date,
        state_days.opportunity_id,
        state_days.stage_name,
        state_days.forecast_category,
        state_days.is_closed,
        state_days.is_won,
        state_days.probability,
        state_days.close_date,
        -- open deals at the day's rate, closed ones at their close date's; a deal without an amount adds nothing
        -- to a sum (and a sum of such deals alone is zero, as in mart_quota_attainment, not null)
        coalesce(
            case
                when state_days.is_closed then state_days.closed_amount_reporting
                else state_days.amount * fx_rates.rate
            end,
            0
        ) as amount_reporting,
        state_days.created_date,
        -- the deal's state that day decides: a closed deal counts in its quarter, an open one when pipeline-eligible
        state_days.is_closed
        or {{ is_pipeline_eligible('state_days.amount', 'state_days.close_date', 'state_days.forecast_category') }}
            as is_counted,
        first_pushes.first_push_date is not null as is_pushed,
        -- an open deal counts for its owner's team and territory that day, a closed one for those at the close
        case
            when state_days.is_closed then state_days.closing_team_id
            else coalesce(rep_then.team_id, state_days.opportunity_team_id)
        end as team_id,
        case
            when state_days.is_closed then state_days.closing_territory_id
            else coalesce(rep_then.territory_id, state_days.opportunity_territory_id)
        end as territory_id
    from state_days
    {{ join_days('state_days.first_day', 'state_days.last_day', 'days') }}
    inner join dates on days.date_day = dates.date_day
    left join fx_rates
        on not state_days.is_closed
            and state_days.currency = fx_rates.currency
            and dates.date_day = fx_rates.rate_date
    left join first_pushes
        on state_days.opportunity_id = first_pushes.opportunity_id
            and dates.fiscal_quarter_start_date = first_pushes.fiscal_quarter_start_date
            and dates.date_day >= first_pushes.first_push_date
    left join reps as rep_then
        on not state_days.is_closed
            and state_days.owner_id = rep_then.rep_id
            and {{ dbt.dateadd('day', 1, 'dates.date_day') }} > rep_then.valid_from_at
            and (rep_then.valid_to_at is null or {{ dbt.dateadd('day', 1, 'dates.date_day') }} <= rep_then.valid_to_at)
),

summarized as (
    select
        as_of_date,
        fiscal_quarter_start_date,
        team_id,
        territory_id,
        stage_name,
        forecast_category,
        sum(case when not is_closed and is_counted then 1 else 0 end) as open_count,
        sum(case when not is_closed and is_counted then amount_reporting else 0 end) as open_amount,
        -- each deal's weighted amount is a decimal before the sum: a sum of doubles depends on the order DuckDB adds
        -- them in, and two builds of the same data as of the same day gave weighted amounts a cent apart
        sum(case
            when not is_closed and is_counted then cast(amount_reporting * probability / 100 as decimal(18, 6))
            else 0
        end) as weighted_amount,
        sum(case when not is_closed and is_counted and close_date <= fiscal_quarter_end_date
                then amount_reporting
            else 0
        end) as closing_this_quarter_amount,
        sum(case when created_date >= fiscal_quarter_start_date then 1 else 0 end) as created_count,
        sum(case when created_date >= fiscal_quarter_start_date then amount_reporting else 0 end) as created_amount,
        sum(case when is_won then 1 else 0 end) as won_count,
        sum(case when is_won then amount_reporting else 0 end) as won_amount,
        sum(case when is_closed and not is_won then 1 else 0 end) as lost_count,
        sum(case when is_closed and not is_won then amount_reporting else 0 end) as lost_amount,
        sum(case when is_pushed and not is_closed then 1 else 0 end) as pushed_count,
        sum(case when is_pushed and not is_closed then amount_reporting else 0 end) as pushed_amount
    from deal_days
    group by as_of_date, fiscal_quarter_start_date, team_id, territory_id, stage_name, forecast_category
),

with_team as (
    select
        summarized.*,
        sum(closing_this_quarter_amount) over (partition by as_of_date, team_id) as team_pipeline_this_quarter_amount,
        sum(won_amount) over (partition by as_of_date, team_id) as team_bookings_to_date_amount
    from summarized
)

select
    {{ dbt.hash(dbt.concat([
        "cast(with_team.as_of_date as " ~ dbt.type_string() ~ ")", "'|'", "coalesce(with_team.team_id, '')", "'|'",
        "coalesce(with_team.territory_id, '')", "'|'", "with_team.stage_name", "'|'",
        "coalesce(with_team.forecast_category, '')",
    ])) }} as pipeline_summary_id,
    with_team.as_of_date,
    with_team.team_id,
    with_team.territory_id,
    with_team.stage_name,
    with_team.forecast_category,
    cast(with_team.open_count as integer) as open_count,
    cast(with_team.open_amount as decimal(18, 2)) as open_amount,
    cast(with_team.weighted_amount as decimal(18, 2)) as weighted_amount,
    cast(with_team.created_count as integer) as created_count,
    cast(with_team.created_amount as decimal(18, 2)) as created_amount,
    cast(with_team.won_count as integer) as won_count,
    cast(with_team.won_amount as decimal(18, 2)) as won_amount,
    cast(with_team.lost_count as integer) as lost_count,
    cast(with_team.lost_amount as decimal(18, 2)) as lost_amount,
    cast(with_team.pushed_count as integer) as pushed_count,
    cast(with_team.pushed_amount as decimal(18, 2)) as pushed_amount,
    cast(with_team.closing_this_quarter_amount as decimal(18, 2)) as closing_this_quarter_amount,
    cast(with_team.team_pipeline_this_quarter_amount as decimal(18, 2)) as coverage_numerator_amount,
    cast(quotas.quota_amount - with_team.team_bookings_to_date_amount as decimal(18, 2))
        as coverage_denominator_amount,
    -- a team that has booked its quota has nothing left to cover: no ratio, the parts still published
    case
        when quotas.quota_amount - with_team.team_bookings_to_date_amount > 0
            then cast({{ safe_ratio('with_team.team_pipeline_this_quarter_amount',
                'quotas.quota_amount - with_team.team_bookings_to_date_amount') }} as double)
    end as coverage_ratio,
    cast(quotas.quota_amount as decimal(18, 2)) as team_quota_amount,
    cast(with_team.team_bookings_to_date_amount as decimal(18, 2)) as team_bookings_to_date_amount
from with_team
left join quotas
    on with_team.team_id = quotas.team_id and with_team.fiscal_quarter_start_date = quotas.period_start_date
{% if incremental %}
    -- before the day every team changed, only the changed teams' rows: the other deals were left out of those days
    where
        with_team.as_of_date >= {{ scope.every_team_from }}
        or coalesce(with_team.team_id, '') in {{ scope.teams }}
{% endif %}
