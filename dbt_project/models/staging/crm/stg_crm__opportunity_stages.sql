{#- One row per stage the CRM defines: the latest exported version of each OpportunityStage record known as of
    the build's date. When no OpportunityStage export has landed, the shipped definitions apply (the
    stage_definitions seed), so a CRM that customises its stages only has to export that object. -#}
with

source as (
    {{ latest_exported_version(
        source('raw', 'opportunity_stage'), '"Id"', '"SystemModstamp"', known_at='"SystemModstamp"'
    ) }}
),

exported as (
    select
        -- ids
        "Id" as stage_id,

        -- strings: an Opportunity's StageName holds the stage's API name; its label when the API name is absent
        coalesce("ApiName", "MasterLabel") as stage_name,
        "MasterLabel" as stage_label,
        "ForecastCategoryName" as default_forecast_category,

        -- numerics
        cast("SortOrder" as integer) as stage_order,
        cast("DefaultProbability" as decimal(5, 2)) as default_probability,

        -- booleans
        coalesce("IsActive", true) as is_active,
        coalesce("IsClosed", false) as is_closed,
        coalesce("IsWon", false) as is_won,

        'OpportunityStage export' as defined_in,

        -- lineage: when the definition changed and was loaded (an incremental build of the marts reads it)
        "SystemModstamp" as modified_at,
        _loaded_at
    from source
),

shipped as (
    select
        cast(null as varchar) as stage_id,
        stage_name,
        stage_name as stage_label,
        default_forecast_category,
        cast(stage_order as integer) as stage_order,
        cast(default_probability as decimal(5, 2)) as default_probability,
        true as is_active,
        is_closed,
        is_won,
        'stage_definitions seed' as defined_in,
        cast(null as {{ dbt.type_timestamp() }}) as modified_at,
        cast(null as {{ dbt.type_timestamp() }}) as _loaded_at
    from {{ ref('stage_definitions') }}
    where not exists (select 1 from exported)
)

select * from exported
union all
select * from shipped
