{{ config(unique_key='contact_id') }}

with

source as (
    {{ latest_exported_version(source('raw', 'contact'), '"Id"', '"SystemModstamp"', known_at='"SystemModstamp"') }}
),

renamed as (
    select
        -- ids
        "Id" as contact_id,
        "AccountId" as account_id,
        "OwnerId" as owner_id,

        -- strings
        "FirstName" as first_name,
        "LastName" as last_name,
        lower("Email") as email,
        "Phone_e164" as phone_e164,
        "MobilePhone_e164" as mobile_phone_e164,
        "Title" as title,
        "MailingCountry" as mailing_country,
        "LeadSource" as lead_source,

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
