{{ config(unique_key='event_id') }}

with

source as (
    {{ latest_exported_version(source('raw', 'event'), '"Id"', '"SystemModstamp"', known_at='"SystemModstamp"') }}
),

renamed as (
    select
        -- ids
        "Id" as event_id,
        "OwnerId" as owner_id,
        "WhoId" as who_id,
        "WhatId" as what_id,
        -- the calendar UID when the meeting was synced from a calendar
        "External_Event_Id__c" as calendar_uid,

        -- strings
        "Subject" as subject,
        "Location" as event_location,
        "Type" as event_type,

        -- numerics
        "DurationInMinutes" as duration_minutes,

        -- booleans
        "IsAllDayEvent" as is_all_day,
        "IsDeleted" as is_deleted,

        -- dates and timestamps
        "StartDateTime" as start_at,
        "EndDateTime" as end_at,
        "CreatedDate" as created_at,
        "SystemModstamp" as modified_at,

        -- lineage
        {{ build_started_at() }} as _merged_at

    from source
)

select * from renamed
