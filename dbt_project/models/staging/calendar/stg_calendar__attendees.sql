{#- One row per attendee of a calendar event (by UID), as listed in the latest export on or before the as-of date
    that holds the event. -#}
with

source as (
    {{ exported_as_of(source('raw', 'calendar_attendees')) }}
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
        participation_status

    from attendees
)

select * from renamed
