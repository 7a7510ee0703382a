{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['opportunity_id', 'pipeline_date'],
    on_schema_change='fail',
    post_hook=[
        "delete from {{ this }} where opportunity_id not in"
        " (select opportunity_id from {{ ref('stg_crm__opportunities') }} where not is_deleted)",
    ],
) }}

{#- One row per open opportunity per day: the state it stood in at the end of that day (the last OpportunityHistory
    change before midnight UTC). An incremental run recomputes the last `incremental_lookback_days` days it holds and
    adds the days up to the as-of date; the post-hook drops the days of deals deleted in the CRM since. -#}
with

states as (
    select * from {{ ref('int_opportunity_states_versioned') }}
),

opportunities as (
    select
        opportunity_id,
        owner_id,
        account_id,
        currency
    from {{ ref('stg_crm__opportunities') }}
    where not is_deleted
),

window_start as (
    -- the first day this build writes: the calendar's first day, or the lookback before the latest day held
    select
        {% if is_incremental() %}
            cast({{ dbt.dateadd('day', 1 - (var('incremental_lookback_days') | int), 'max(pipeline_date)') }} as date)
        {% else %}
            cast('{{ var("calendar_start_date") }}' as date)
        {% endif %} as first_day
    {% if is_incremental() %}
        from {{ this }}
    {% endif %}
),

end_of_day_states as (
    -- a state is the day's closing state from the day it was set until the day before the next change, cut to the
    -- days this build writes
    select
        states.*,
        greatest(cast(states.valid_from_at as date), window_start.first_day) as first_day,
        case
            when states.valid_to_at is null then {{ as_of_date() }}
            else least(
                    cast({{ dbt.dateadd('day', -1, 'cast(states.valid_to_at as date)') }} as date), {{ as_of_date() }}
                )
        end as last_day
    from states
    cross join window_start
    where not states.is_closed
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
)

select
    days.date_day as pipeline_date,
    end_of_day_states.opportunity_id,
    opportunities.owner_id,
    opportunities.account_id,
    end_of_day_states.stage_name,
    end_of_day_states.stage_order,
    end_of_day_states.forecast_category,
    cast(end_of_day_states.probability as decimal(5, 2)) as probability,
    opportunities.currency,
    cast(end_of_day_states.amount as decimal(18, 2)) as amount,
    cast(end_of_day_states.amount * fx_rates.rate as decimal(18, 2)) as amount_reporting,
    cast(end_of_day_states.amount * fx_rates.rate * end_of_day_states.probability / 100 as decimal(18, 2))
        as weighted_amount_reporting,
    end_of_day_states.close_date as expected_close_date,
    -- the deal as it stood that day (an open deal: the rows are its open days)
    {{ is_pipeline_eligible(
        'end_of_day_states.amount', 'end_of_day_states.close_date', 'end_of_day_states.forecast_category'
    ) }} as is_pipeline_eligible
from end_of_day_states
{{ join_days('end_of_day_states.first_day', 'end_of_day_states.last_day') }}
inner join opportunities on end_of_day_states.opportunity_id = opportunities.opportunity_id
left join fx_rates
    on opportunities.currency = fx_rates.currency
        and days.date_day = fx_rates.rate_date
