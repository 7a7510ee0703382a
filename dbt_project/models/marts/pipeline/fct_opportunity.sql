with

opportunities as (
    select * from {{ ref('stg_crm__opportunities') }}
    where not is_deleted
),

stages as (
    select * from {{ ref('int_opportunity_stages_resolved') }}
),

accounts as (
    select * from {{ ref('dim_account') }}
),

reps as (
    select * from {{ ref('dim_rep') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

visits as (
    select * from {{ ref('int_opportunity_stage_visits') }}
),

states as (
    select * from {{ ref('int_opportunity_states_versioned') }}
),

current_visits as (
    select
        opportunity_id,
        stage_name,
        entered_at
    from visits
    where exited_at is null
),

closings as (
    -- when the deal entered its closed stage, for deals closed now
    select
        opportunity_id,
        entered_at as closed_at
    from visits
    where exited_at is null and is_closed
),

pushes as (
    select
        opportunity_id,
        sum(case when is_close_date_push then 1 else 0 end) as close_date_push_count
    from states
    group by opportunity_id
),

enriched as (
    select
        opportunities.*,
        coalesce(stages.stage_order, 0) as stage_order,
        -- the Opportunity row's IsClosed and IsWon when the CRM exports them, else the stage's definition
        coalesce(opportunities.is_closed, stages.is_closed, false) as is_closed_resolved,
        coalesce(opportunities.is_won, stages.is_won, false) as is_won_resolved,
        -- the same for the probability and the forecast category: the row's, else the stage's defaults
        coalesce(opportunities.probability, stages.default_probability) as probability_resolved,
        coalesce(opportunities.forecast_category, stages.default_forecast_category) as forecast_category_resolved,
        case
            when coalesce(opportunities.is_won, stages.is_won, false) then 'won'
            when coalesce(opportunities.is_closed, stages.is_closed, false) then 'lost'
            else 'open'
        end as status,
        closings.closed_at,
        current_visits.entered_at as current_stage_entered_at,
        coalesce(pushes.close_date_push_count, 0) as close_date_push_count,
        -- closed deals convert at their close date, open ones at the as-of date
        case
            when coalesce(opportunities.is_closed, stages.is_closed, false) then opportunities.close_date
            else {{ as_of_date() }}
        end as fx_date
    from opportunities
    left join stages on opportunities.stage_name = stages.stage_name
    left join closings on opportunities.opportunity_id = closings.opportunity_id
    left join current_visits on opportunities.opportunity_id = current_visits.opportunity_id
    left join pushes on opportunities.opportunity_id = pushes.opportunity_id
),

converted as (
    select
        enriched.*,
        fx_rates.rate as fx_rate,
        cast(enriched.amount * fx_rates.rate as decimal(18, 2)) as amount_reporting
    from enriched
    left join fx_rates
        on enriched.currency = fx_rates.currency
            and enriched.fx_date = fx_rates.rate_date
)

select
    -- ids
    converted.opportunity_id,
    converted.account_id,
    converted.owner_id,
    owner_at_close.team_id,
    coalesce(owner_at_close.territory_id, accounts.territory_id) as territory_id,
    converted.sourced_by_id,

    -- attributes
    converted.opportunity_name,
    converted.opportunity_type,
    converted.lead_source,
    accounts.segment,
    accounts.region,
    converted.status,
    converted.stage_name,
    converted.stage_order,
    converted.forecast_category_resolved as forecast_category,
    cast(converted.probability_resolved as decimal(5, 2)) as probability,

    -- money
    converted.currency,
    cast(converted.amount as decimal(18, 2)) as amount,
    '{{ var("reporting_currency") }}' as reporting_currency,
    cast(converted.fx_rate as decimal(18, 6)) as fx_rate,
    converted.amount_reporting,
    cast(converted.amount_reporting * converted.probability_resolved / 100 as decimal(18, 2))
        as weighted_amount_reporting,

    -- dates
    cast(converted.created_at as date) as created_date,
    converted.close_date,
    converted.created_at,
    converted.closed_at,
    converted.current_stage_entered_at,
    cast({{ dbt.datediff('cast(converted.created_at as date)',
        'coalesce(cast(converted.closed_at as date), ' ~ as_of_date() ~ ')', 'day') }} as integer) as age_days,
    cast({{ days_between('converted.current_stage_entered_at', as_of_end_at()) }} as decimal(10, 2))
        as days_in_current_stage,
    cast(converted.close_date_push_count as integer) as close_date_push_count,

    -- flags
    converted.is_closed_resolved as is_closed,
    converted.is_won_resolved as is_won,
    -- Win rates count closed New Business and Expansion deals with an amount above zero. Renewals are left out
    -- (renewing is retention, not selling), and so are closed deals without an amount.
    coalesce(
        converted.is_closed_resolved
        and converted.opportunity_type in ('New Business', 'Expansion')
        and converted.amount > 0,
        false
    ) as is_win_rate_eligible,
    {{ is_pipeline_eligible(
        'converted.amount', 'converted.close_date', 'converted.forecast_category_resolved',
        is_closed='converted.is_closed_resolved'
    ) }} as is_pipeline_eligible
from converted
left join accounts on converted.account_id = accounts.account_id
left join reps as owner_at_close
    on converted.owner_id = owner_at_close.rep_id
        and coalesce(converted.closed_at, {{ as_of_end_at() }}) >= owner_at_close.valid_from_at
        and (
            owner_at_close.valid_to_at is null
            or coalesce(converted.closed_at, {{ as_of_end_at() }}) < owner_at_close.valid_to_at
        )
