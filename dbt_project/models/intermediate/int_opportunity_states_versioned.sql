{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_changed_opportunities() }}",
    meta={'new_rows': '_merged_at = {built_at}'},
) }}

{#- One row per OpportunityHistory change of a live opportunity: the state it set (stage, amount, close date,
    forecast category, probability) and the interval it held, [valid_from_at, valid_to_at). The last change of a
    deal holds until now (valid_to_at null).

    Incremental: a build recomputes every state of the deals that changed since the previous one
    (macros/pipeline.sql), after its pre-hook deleted them; a deleted deal's states stay deleted. -#}
-- read only by an incremental build (macros/pipeline.sql):
-- depends_on: {{ ref('stg_crm__opportunity_stages') }}
{%- set build = incremental_build() %}
{%- set incremental = build.mode == 'incremental' %}

with

{% if incremental %}
    changed_deals as (
        {{ changed_opportunities(build) }}
    ),
{% endif %}

history as (
    select * from {{ ref('stg_crm__opportunity_history') }}
    where
        not is_deleted
        {% if incremental %}
            and opportunity_id in (select changed_deals.opportunity_id from changed_deals)
        {% endif %}
),

opportunities as (
    select opportunity_id from {{ ref('stg_crm__opportunities') }}
    where
        not is_deleted
        {% if incremental %}
            and opportunity_id in (select changed_deals.opportunity_id from changed_deals)
        {% endif %}
),

stages as (
    select * from {{ ref('int_opportunity_stages_resolved') }}
),

sequenced as (
    select
        history.opportunity_id,
        history.opportunity_history_id,
        history.stage_name,
        history.amount,
        history.probability,
        history.forecast_category,
        history.close_date,
        history.changed_at,
        row_number() over (
            partition by history.opportunity_id order by history.changed_at, history.opportunity_history_id
        ) as change_number
    from history
    inner join opportunities on history.opportunity_id = opportunities.opportunity_id
),

with_next as (
    select
        sequenced.*,
        lead(changed_at) over (partition by opportunity_id order by change_number) as next_changed_at,
        lag(close_date) over (partition by opportunity_id order by change_number) as previous_close_date
    from sequenced
)

select
    with_next.opportunity_id,
    with_next.opportunity_history_id,
    with_next.change_number,
    with_next.stage_name,
    stages.stage_order,
    coalesce(stages.is_closed, false) as is_closed,
    coalesce(stages.is_won, false) as is_won,
    with_next.amount,
    coalesce(with_next.probability, stages.default_probability) as probability,
    coalesce(with_next.forecast_category, stages.default_forecast_category) as forecast_category,
    with_next.close_date,
    coalesce(
        with_next.close_date > with_next.previous_close_date and not coalesce(stages.is_closed, false), false
    ) as is_close_date_push,
    with_next.changed_at as valid_from_at,
    with_next.next_changed_at as valid_to_at,
    {{ build_started_at() }} as _merged_at
from with_next
left join stages on with_next.stage_name = stages.stage_name
