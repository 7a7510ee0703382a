{#- One row per version of a user record known as of the build's date (not only the latest): dim_rep needs the
    history to credit a deal to the team its owner was in when it closed. -#}
{{ config(unique_key='user_id') }}

with

source as (
    -- the same version exported twice is one version, known since the first drop and load that held it
    select
        "Id",
        "Username",
        "Name",
        "Email",
        "Title",
        "UserRoleId",
        "ManagerId",
        "IsActive",
        "TimeZoneSidKey",
        "Country",
        "Sales_Role__c",
        "Segment__c",
        "Region__c",
        "Territory__c",
        "Pod__c",
        "Hire_Date__c",
        "Termination_Date__c",
        "CreatedDate",
        "SystemModstamp",
        min(_export_date) as _export_date,
        min(_loaded_at) as _loaded_at
    -- the versions known as of the date, as latest_exported_version picks the other CRM objects; on an incremental
    -- build, every version of the users something new can change (unique_key: they replace the ones held)
    from ({{ exported_versions(source('raw', 'user'), '"Id"', known_at='"SystemModstamp"') }}) as exported
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19
),

renamed as (
    select
        -- ids
        "Id" as user_id,
        "UserRoleId" as user_role_id,
        "ManagerId" as manager_id,
        "Territory__c" as territory_id,

        -- strings
        "Username" as username,
        "Name" as user_name,
        lower("Email") as email,
        "Title" as title,
        "Sales_Role__c" as sales_role,
        "Segment__c" as segment,
        "Region__c" as region,
        "Pod__c" as pod,
        "TimeZoneSidKey" as time_zone,
        "Country" as country,

        -- booleans
        "IsActive" as is_active,

        -- dates and timestamps
        "Hire_Date__c" as hire_date,
        "Termination_Date__c" as termination_date,
        "CreatedDate" as created_at,
        "SystemModstamp" as modified_at,

        -- lineage: the first drop and load that held the version, and the build that merged it
        _export_date,
        _loaded_at,
        {{ build_started_at() }} as _merged_at

    from source
)

select * from renamed
