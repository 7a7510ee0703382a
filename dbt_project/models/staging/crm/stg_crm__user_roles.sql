with

source as (
    {{ latest_exported_version(source('raw', 'user_role'), '"Id"', '"SystemModstamp"', known_at='"SystemModstamp"') }}
),

renamed as (
    select
        -- ids
        "Id" as user_role_id,
        "ParentRoleId" as parent_role_id,

        -- strings
        "Name" as role_name,
        "DeveloperName" as developer_name,

        -- timestamps
        "SystemModstamp" as modified_at

    from source
)

select * from renamed
