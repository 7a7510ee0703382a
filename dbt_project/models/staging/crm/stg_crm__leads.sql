{{ config(unique_key='lead_id') }}

with

source as (
    {{ latest_exported_version(source('raw', 'lead'), '"Id"', '"SystemModstamp"', known_at='"SystemModstamp"') }}
),

renamed as (
    select
        -- ids
        "Id" as lead_id,
        "OwnerId" as owner_id,
        "ConvertedAccountId" as converted_account_id,
        "ConvertedContactId" as converted_contact_id,
        "ConvertedOpportunityId" as converted_opportunity_id,

        -- strings
        "Company" as company,
        lower("Email") as email,
        "Phone_e164" as phone_e164,
        "Country" as country,
        "Industry" as industry,
        "LeadSource" as lead_source,
        "Status" as lead_status,

        -- booleans
        "IsConverted" as is_converted,
        "IsDeleted" as is_deleted,

        -- dates and timestamps
        "ConvertedDate" as converted_date,
        "CreatedDate" as created_at,
        "SystemModstamp" as modified_at,

        -- lineage
        {{ build_started_at() }} as _merged_at

    from source
)

select * from renamed
