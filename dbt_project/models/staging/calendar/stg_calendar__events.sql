{#- One row per calendar event occurrence as last exported on or before the as-of date. Each mailbox's export holds
    its whole calendar, so one occurrence appears in every export of every mailbox that holds it; the latest export
    that holds it wins (an occurrence that later exports no longer hold keeps its last known state). An incremental
    build picks again every occurrence of the events (UIDs) that new files hold. -#}
{{ config(unique_key='occurrence_id') }}

with

source as (
    {{ exported_versions(source('raw', 'calendar_events'), 'uid') }}
),

latest as (
    select *
    from (
        select
            source.*,
            row_number() over (
                partition by uid, recurrence_id
                order by _export_date desc, dtstamp desc, mailbox asc, _load_id desc, _record_number desc
            ) as _version_rank
        from source
    ) as ranked
    where _version_rank = 1
),

renamed as (
    select
        -- ids
        {{ dbt.hash(dbt.concat(["uid", "'|'", "coalesce(cast(recurrence_id as " ~ dbt.type_string() ~ "), '')"])) }}
            as occurrence_id,
        uid as calendar_uid,
        recurrence_id,

        -- strings
        summary,
        location,
        lower(organizer_email) as organizer_email,
        lower(mailbox) as mailbox_email,
        status as event_status,
        original_tzid,

        -- numerics
        sequence as sequence_number,

        -- booleans
        is_all_day,
        is_recurring,
        is_override,
        status = 'cancelled' as is_cancelled,

        -- dates and timestamps
        start_at,
        end_at,
        _export_date as exported_date,

        -- lineage
        {{ build_started_at() }} as _merged_at

    from latest
)

select * from renamed
