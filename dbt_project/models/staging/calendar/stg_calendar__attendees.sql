{#- One row per attendee of a calendar event (by UID), as listed in the latest export on or before the as-of date
    that holds the event. An incremental build lists again the attendees of the events (UIDs) that new files hold,
    replacing the ones it had (unique_key: the event). -#}
{{ config(unique_key='calendar_uid') }}

with

source as (
    {{ exported_versions(source('raw', 'calendar_attendees'), 'uid') }}
),

latest_export as (
    select
        uid,
        max(_export_date) as export_date
    from source
    group by uid
),

attendees as (
    select distinct
        source.uid,
        lower(source.email) as email,
        source.common_name,
        source.role,
        source.participation_status
    from source
    inner join latest_export
        on source.uid = latest_export.uid and source._export_date = latest_export.export_date
),

renamed as (
    select
        -- ids
        uid as calendar_uid,

        -- strings
        email,
        common_name,
        role as attendee_role,
        participation_status,

        -- lineage
        {{ build_started_at() }} as _merged_at

    from attendees
)

select * from renamed
