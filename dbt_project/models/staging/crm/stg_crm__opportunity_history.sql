{{ config(unique_key='opportunity_history_id') }}

with

-- a change made after the as-of date's end is unknown as of the date (history rows are not filtered by
-- SystemModstamp: a later edit of a change is still the change)
source as (
    {{ latest_exported_version(
        source('raw', 'opportunity_history'), '"Id"', '"SystemModstamp"', known_at='"CreatedDate"'
    ) }}
),

forecast_categories as (
    {{ crm_picklist('OpportunityHistory', 'ForecastCategory') }}
),

renamed as (
    select
        -- ids
        source."Id" as opportunity_history_id,
        source."OpportunityId" as opportunity_id,
        source."CreatedById" as created_by_id,

        -- strings
        source."StageName" as stage_name,
        -- OpportunityHistory carries the API names of the forecast categories, Opportunity the labels: the
        -- crm_picklists seed translates them (a name it does not list is kept as written)
        coalesce(forecast_categories.meaning, source."ForecastCategory") as forecast_category,

        -- numerics
        source."Amount" as amount,
        source."Probability" as probability,

        -- booleans
        source."IsDeleted" as is_deleted,

        -- dates and timestamps
        source."CloseDate" as close_date,
        source."CreatedDate" as changed_at,

        -- lineage
        {{ build_started_at() }} as _merged_at

    from source
    left join forecast_categories on source."ForecastCategory" = forecast_categories.value
)

select * from renamed
