{{ config(unique_key='account_id') }}

with

source as (
    {{ latest_exported_version(source('raw', 'account'), '"Id"', '"SystemModstamp"', known_at='"SystemModstamp"') }}
),

renamed as (
    select
        -- ids
        "Id" as account_id,
        "OwnerId" as owner_id,
        "Territory__c" as territory_id,

        -- strings
        "Name" as account_name,
        "Type" as account_type,
        "Industry" as industry,
        "Employee_Band__c" as employee_band,
        "Website" as website,
        "Phone_e164" as phone_e164,
        "BillingCountryCode" as billing_country_code,
        "Segment__c" as segment,
        "Region__c" as region,
        "CurrencyIsoCode" as currency,

        -- numerics
        "NumberOfEmployees" as number_of_employees,

        -- booleans
        "IsDeleted" as is_deleted,

        -- timestamps
        "CreatedDate" as created_at,
        "SystemModstamp" as modified_at,

        -- lineage
        {{ build_started_at() }} as _merged_at

    from source
)

select * from renamed
