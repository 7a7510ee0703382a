{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_changed_opportunities(with_states=true) }}",
    meta={'new_rows': '_merged_at = {built_at}'},
) }}

{#- One row per stage visit: consecutive history changes in the same stage are one visit. A visit ends when the
    next one starts; the deal's current visit has no end.

    Incremental: a build recomputes every visit of the deals whose states changed since the previous one
    (macros/pipeline.sql), after its pre-hook deleted them. -#}
-- read only by an incremental build (macros/pipeline.sql):
-- depends_on: {{ ref('stg_crm__opportunities') }}
-- depends_on: {{ ref('stg_crm__opportunity_history') }}
-- depends_on: {{ ref('stg_crm__opportunity_stages') }}
-- depends_on: {{ ref('int_opportunity_stages_resolved') }}
{%- set build = incremental_build() %}
{%- set incremental = build.mode == 'incremental' %}

with

states as (
    select * from {{ ref('int_opportunity_states_versioned') }}
    {% if incremental %}
        where opportunity_id in ({{ opportunities_to_recompute(build, with_states=true) }})
    {% endif %}
),

flagged as (
    select
        states.*,
        case
            when lag(stage_name) over (partition by opportunity_id order by change_number) = stage_name then 0
            else 1
        end as is_new_visit
    from states
),

numbered as (
    select
        flagged.*,
        sum(is_new_visit) over (
            partition by opportunity_id order by change_number rows between unbounded preceding and current row
        ) as visit_number
    from flagged
),

visits as (
    select
        opportunity_id,
        visit_number,
        min(stage_name) as stage_name,
        min(stage_order) as stage_order,
        {{ bool_and_sql('is_closed') }} as is_closed,
        {{ bool_and_sql('is_won') }} as is_won,
        min(valid_from_at) as entered_at
    from numbered
    group by opportunity_id, visit_number
)

select
    visits.opportunity_id,
    visits.visit_number,
    visits.stage_name,
    visits.stage_order,
    visits.is_closed,
    visits.is_won,
    visits.entered_at,
    lead(visits.entered_at) over (partition by visits.opportunity_id order by visits.visit_number) as exited_at,
    lag(visits.stage_order) over (
        partition by visits.opportunity_id order by visits.visit_number
    ) as previous_stage_order,
    {{ build_started_at() }} as _merged_at
from visits
