{{ config(unique_key='opportunity_id') }}

with

source as (
    {{ latest_exported_version(source('raw', 'opportunity'), '"Id"', '"SystemModstamp"', known_at='"SystemModstamp"') }}
),

renamed as (
    select
        -- ids
        "Id" as opportunity_id,
        "AccountId" as account_id,
        "OwnerId" as owner_id,
        "CreatedById" as created_by_id,
        "Sourced_By__c" as sourced_by_id,

        -- strings
        "Name" as opportunity_name,
        "StageName" as stage_name,
        "Type" as opportunity_type,
        "LeadSource" as lead_source,
        "ForecastCategoryName" as forecast_category,
        "CurrencyIsoCode" as currency,
        "Primary_Product__c" as primary_product,

        -- numerics
        "Amount" as amount,
        "Probability" as probability,

        -- booleans
        "IsClosed" as is_closed,
        "IsWon" as is_won,
        "IsDeleted" as is_deleted,

        -- dates and timestamps
        "CloseDate" as close_date,
        "CreatedDate" as created_at,
        "SystemModstamp" as modified_at,

        -- lineage
        {{ build_started_at() }} as _merged_at

    from source
)

select * from renamed
