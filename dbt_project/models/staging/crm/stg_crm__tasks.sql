{{ config(unique_key='task_id') }}

with

source as (
    {{ latest_exported_version(source('raw', 'task'), '"Id"', '"SystemModstamp"', known_at='"SystemModstamp"') }}
),

renamed as (
    select
        -- ids
        "Id" as task_id,
        "OwnerId" as owner_id,
        "WhoId" as who_id,
        "WhatId" as what_id,
        -- the phone system's call id when the task was logged from a call record
        "CallObject" as call_id,

        -- strings
        "Subject" as subject,
        "Status" as task_status,
        "TaskSubtype" as task_subtype,
        "Type" as task_type,
        "CallType" as call_type,
        "CallDisposition" as call_disposition,

        -- numerics
        "CallDurationInSeconds" as call_duration_seconds,

        -- booleans
        "IsDeleted" as is_deleted,

        -- dates and timestamps
        "ActivityDate" as activity_date,
        "CreatedDate" as created_at,
        "SystemModstamp" as modified_at,

        -- lineage
        {{ build_started_at() }} as _merged_at

    from source
)

select * from renamed
