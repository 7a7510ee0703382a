{#- A stage that opportunities use but no definition names: the deals load and stay in the marts (their closed and
    won flags taken from the Opportunity rows), but they have no stage order, so stage conversion and stage ordering
    leave them out. One row per such stage, with the rows affected and how to define it. -#}
{#- attached, for Dagster's asset check, to the model that holds the stages; it reads the deals too -#}
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'int_opportunity_stages_resolved'}}}) }}

with

undefined as (
    select stage_name from {{ ref('int_opportunity_stages_resolved') }}
    where not is_defined
),

opportunities as (
    select
        stage_name,
        count(*) as opportunities
    from {{ ref('stg_crm__opportunities') }}
    where not is_deleted
    group by stage_name
),

history as (
    select
        stage_name,
        count(*) as history_rows
    from {{ ref('stg_crm__opportunity_history') }}
    where not is_deleted
    group by stage_name
)

select
    undefined.stage_name,
    coalesce(opportunities.opportunities, 0) as opportunities,
    coalesce(history.history_rows, 0) as history_rows,
    'export the OpportunityStage object with the CRM drop, or add the stage to '
    || 'dbt_project/seeds/stage_definitions.csv (docs/crm_values.md)' as how_to_define
from undefined
left join opportunities on undefined.stage_name = opportunities.stage_name
left join history on undefined.stage_name = history.stage_name
