{#- One row per version of a user record known as of the build's date (not only the latest): dim_rep needs the
    history to credit a deal to the team its owner was in when it closed. -#}
with

source as (
    -- the same version exported twice is one version
    select distinct
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
        "SystemModstamp"
    -- from the drops exported on or before the as-of date, as latest_exported_version picks the other CRM objects
    from ({{ exported_as_of(source('raw', 'user')) }}) as exported
    where "SystemModstamp" < {{ as_of_end_at() }}
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
        "SystemModstamp" as modified_at

    from source
)

select * from renamed
