{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_pipeline_days_to_recompute() }}",
    meta={'new_rows': 'pipeline_date > {previous_as_of_date}'},
) }}

{#- One row per open opportunity per day: the state it stood in at the end of that day (the last OpportunityHistory
    change before midnight UTC).

    Incremental: a build adds the days after the previous build's as-of date for every deal, and recomputes every
    day of the deals that changed since (macros/pipeline.sql: a new version of the deal or of its history, a
    deletion) and, in a currency whose rate changed, the days from the first rate that did; the pre-hook deletes
    those rows first, so a deal deleted or shortened loses its days. -#}
-- read only by an incremental build (macros/pipeline.sql):
-- depends_on: {{ ref('stg_crm__opportunity_history') }}
-- depends_on: {{ ref('stg_crm__opportunity_stages') }}
-- depends_on: {{ ref('int_opportunity_stages_resolved') }}
-- depends_on: {{ ref('stg_reference__fx_rates') }}
{%- set build = incremental_build() %}
{%- set incremental = build.mode == 'incremental' %}
{%- if incremental %}
    {%- set next_day = "cast(" ~ dbt.dateadd('day', 1, previous_as_of_date(build)) ~ " as date)" %}
{%- endif %}

with

{% if incremental %}
    changed_deals as (
        {{ changed_opportunities(build) }}
    ),

    changed_rates as (
        {{ changed_fx_rates(build) }}
    ),
{% endif %}

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

-- the first day this build writes for each deal: the calendar's first day for a full build or a changed deal,
-- else the day after the previous as-of date, or the first day whose rate changed
{% if incremental %}
    window_start as (
        select
            opportunities.opportunity_id,
            case
                when changed_deals.opportunity_id is not null then cast('{{ var("calendar_start_date") }}' as date)
                when changed_rates.first_day < {{ next_day }} then changed_rates.first_day
                else {{ next_day }}
            end as first_day
        from opportunities
        left join changed_deals on opportunities.opportunity_id = changed_deals.opportunity_id
        left join changed_rates on opportunities.currency = changed_rates.currency
    ),
{% else %}
    window_start as (
        select
            opportunity_id,
            cast('{{ var("calendar_start_date") }}' as date) as first_day
        from opportunities
    ),
{% endif %}

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
    inner join window_start on states.opportunity_id = window_start.opportunity_id
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
