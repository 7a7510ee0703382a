{#- One row per stage name an opportunity or its history uses or the CRM defines. Defined stages carry the CRM's
    order, closed and won flags and default probability. A stage in no definition is a fact of the CRM, not an
    error: it is kept with is_defined = false, its closed and won flags taken from the Opportunity rows that stand
    in it (IsClosed and IsWon), and a warning test (tests/undefined_stages.sql) names it with the rows affected. -#}
with

exported_definitions as (
    select * from {{ ref('stg_crm__opportunity_stages') }}
),

-- Salesforce's Data Loader writes a stage's API name in StageName, but exports of other tools (reports, some
-- integrations) write its label: a stage is found under either, the label being an alias where it differs
definitions as (
    select
        stage_id,
        stage_name,
        stage_label,
        default_forecast_category,
        stage_order,
        default_probability,
        is_active,
        is_closed,
        is_won,
        defined_in
    from exported_definitions
    union all
    select
        stage_id,
        stage_label as stage_name,
        stage_label,
        default_forecast_category,
        stage_order,
        default_probability,
        is_active,
        is_closed,
        is_won,
        defined_in
    from exported_definitions
    where
        stage_label <> stage_name
        and stage_label not in (select named.stage_name from exported_definitions as named)
),

opportunities as (
    select * from {{ ref('stg_crm__opportunities') }}
    where not is_deleted
),

history as (
    select * from {{ ref('stg_crm__opportunity_history') }}
    where not is_deleted
),

used as (
    select
        stage_name,
        -- what the CRM says of deals standing in the stage now; null when none does
        max(case when is_closed then 1 else 0 end) as any_closed,
        max(case when is_won then 1 else 0 end) as any_won
    from opportunities
    group by stage_name
    union all
    select
        stage_name,
        cast(null as integer) as any_closed,
        cast(null as integer) as any_won
    from history
    group by stage_name
),

undefined as (
    select
        used.stage_name,
        max(used.any_closed) as any_closed,
        max(used.any_won) as any_won
    from used
    left join definitions on used.stage_name = definitions.stage_name
    where definitions.stage_name is null and used.stage_name is not null
    group by used.stage_name
)

select
    stage_name,
    stage_label,
    stage_order,
    default_probability,
    default_forecast_category,
    is_active,
    is_closed,
    is_won,
    true as is_defined,
    defined_in
from definitions
union all
select
    stage_name,
    stage_name as stage_label,
    cast(null as integer) as stage_order,
    cast(null as decimal(5, 2)) as default_probability,
    cast(null as varchar) as default_forecast_category,
    true as is_active,
    coalesce(any_closed = 1, false) as is_closed,
    coalesce(any_won = 1, false) as is_won,
    false as is_defined,
    cast(null as varchar) as defined_in
from undefined
