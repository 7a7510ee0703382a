{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_activities_to_recompute() }}",
    meta={'new_rows': '_merged_at = {built_at}'},
) }}

{#- Every activity from the three sources, each counted once, before attribution. A call that the phone system
    recorded and the CRM logged as a Task (the Task's CallObject is the call id) is the phone record, with the
    Task's links (WhoId, WhatId); a meeting on a calendar that the CRM synced as an Event (External_Event_Id__c is
    the calendar UID) is the calendar occurrence, with the Event's links. What only the CRM holds stays a CRM row.

    Incremental: a build recomputes the activities that what changed since the previous one can reach
    (macros/activities.sql), after its pre-hook deleted them; those that no longer stand for an activity stay
    deleted. Rebuilt in full, it took 114.8 s of a 541.5 s bench-scale build. -#}
-- read only by an incremental build (macros/activities.sql):
-- depends_on: {{ ref('stg_crm__users') }}
-- depends_on: {{ ref('stg_crm__record_links') }}
{%- set build = incremental_build() %}
{%- set incremental = build.mode == 'incremental' %}

with

{% if incremental %}
    changed as (
        {{ activities_to_recompute(build) }}
    ),
{% endif %}

calls as (
    select * from {{ ref('stg_phone__calls') }}
    {% if incremental %}
        where {{ dbt.concat(["'phone:'", "call_id"]) }} in (select changed.activity_id from changed)
    {% endif %}
),

-- every call id, to tell which Tasks a call stands for
call_ids as (
    select call_id from {{ ref('stg_phone__calls') }}
),

tasks as (
    select * from {{ ref('stg_crm__tasks') }}
    where
        not is_deleted
        {% if incremental %}
            and (
                {{ dbt.concat(["'crm_task:'", "task_id"]) }} in (select changed.activity_id from changed)
                or call_id in (select calls.call_id from calls)
            )
        {% endif %}
),

-- what a Task's subtype or type means (call, email, task): the CRM's pick-lists, configured in the crm_picklists seed
task_subtypes as (
    {{ crm_picklist('Task', 'TaskSubtype') }}
),

task_types as (
    {{ crm_picklist('Task', 'Type') }}
),

-- the phone system's outcome for each CRM CallDisposition, and whether it is a connect
dispositions as (
    select * from {{ ref('call_dispositions') }}
),

task_changes as (
    -- the last change of the Tasks logged for each call, deleted ones included: a deletion changes the activity
    select
        call_id,
        max(modified_at) as modified_at
    from {{ ref('stg_crm__tasks') }}
    where
        call_id is not null
        {% if incremental %}
            and call_id in (select calls.call_id from calls)
        {% endif %}
    group by call_id
),

calendar_events as (
    select * from {{ ref('stg_calendar__events') }}
    where
        not is_all_day and start_at < {{ as_of_end_at() }}
        {% if incremental %}
            and {{ dbt.concat(["'calendar:'", "occurrence_id"]) }} in (select changed.activity_id from changed)
        {% endif %}
),

event_changes as (
    select
        calendar_uid,
        max(modified_at) as modified_at
    from {{ ref('stg_crm__events') }}
    where
        calendar_uid is not null
        {% if incremental %}
            and calendar_uid in (select calendar_events.calendar_uid from calendar_events)
        {% endif %}
    group by calendar_uid
),

crm_events as (
    select * from {{ ref('stg_crm__events') }}
    where
        not is_deleted
        {% if incremental %}
            and (
                {{ dbt.concat(["'crm_event:'", "event_id"]) }} in (select changed.activity_id from changed)
                or calendar_uid in (select calendar_events.calendar_uid from calendar_events)
            )
        {% endif %}
),

calendar_uids as (
    select distinct calendar_uid from {{ ref('stg_calendar__events') }}
    {% if incremental %}
        where calendar_uid in (select crm_events.calendar_uid from crm_events)
    {% endif %}
),

attendees as (
    select * from {{ ref('stg_calendar__attendees') }}
    {% if incremental %}
        where calendar_uid in (select calendar_events.calendar_uid from calendar_events)
    {% endif %}
),

users as (
    select
        rep_id,
        email
    from {{ ref('int_reps_versioned') }}
    where valid_to_at is null
),

contacts as (
    select
        contact_id,
        email
    from {{ ref('stg_crm__contacts') }}
    where not is_deleted and email is not null
),

external_attendees as (
    -- attendees who are not users of the CRM; the first one that is a known contact names the meeting's contact
    select
        attendees.calendar_uid,
        count(*) as external_attendee_count,
        min(contacts.contact_id) as contact_id
    from attendees
    left join users on attendees.email = users.email
    left join contacts on attendees.email = contacts.email
    where users.rep_id is null
    group by attendees.calendar_uid
),

phone_calls as (
    select
        {{ dbt.concat(["'phone:'", "calls.call_id"]) }} as activity_id,
        'call' as activity_type,
        'phone' as source_system,
        calls.call_id as source_record_id,
        tasks.task_id as crm_record_id,
        coalesce(tasks.owner_id, users.rep_id) as rep_id,
        tasks.who_id as crm_who_id,
        tasks.what_id as crm_what_id,
        calls.customer_number_e164,
        calls.direction,
        calls.started_at as occurred_at,
        calls.duration_seconds,
        calls.talk_seconds,
        calls.disposition as outcome,
        calls.is_connected,
        false as is_cancelled,
        -- a call between two extensions: a colleague, not a customer
        coalesce(calls.is_internal, false) as is_internal,
        -- when the activity last changed: the call, or the CRM Task that logged it
        coalesce(task_changes.modified_at, calls.started_at) as changed_at,
        {{ build_started_at() }} as _merged_at
    from calls
    left join tasks on calls.call_id = tasks.call_id
    left join task_changes on calls.call_id = task_changes.call_id
    left join users on calls.user_email = users.email
),

crm_calls_and_emails as (
    select
        {{ dbt.concat(["'crm_task:'", "tasks.task_id"]) }} as activity_id,
        case
            when task_subtypes.meaning = 'call' or task_types.meaning = 'call' then 'call'
            when task_subtypes.meaning = 'email' or task_types.meaning = 'email' then 'email'
            else 'task'
        end as activity_type,
        'crm' as source_system,
        tasks.task_id as source_record_id,
        tasks.task_id as crm_record_id,
        tasks.owner_id as rep_id,
        tasks.who_id as crm_who_id,
        tasks.what_id as crm_what_id,
        cast(null as {{ dbt.type_string() }}) as customer_number_e164,
        lower(tasks.call_type) as direction,
        tasks.created_at as occurred_at,
        tasks.call_duration_seconds as duration_seconds,
        case when dispositions.is_connected then tasks.call_duration_seconds end as talk_seconds,
        -- a disposition the seed does not list, or a task without one, keeps its own word
        coalesce(dispositions.outcome, lower(coalesce(tasks.call_disposition, tasks.task_status))) as outcome,
        case
            when tasks.call_disposition is not null then coalesce(dispositions.is_connected, false)
        end as is_connected,
        false as is_cancelled,
        false as is_internal,
        tasks.modified_at as changed_at,
        {{ build_started_at() }} as _merged_at
    from tasks
    left join call_ids on tasks.call_id = call_ids.call_id
    left join task_subtypes on tasks.task_subtype = task_subtypes.value
    left join task_types on tasks.task_type = task_types.value
    left join dispositions on tasks.call_disposition = dispositions.crm_call_disposition
    where
        call_ids.call_id is null
        and tasks.created_at < {{ as_of_end_at() }}
        {% if incremental %}
            and {{ dbt.concat(["'crm_task:'", "tasks.task_id"]) }} in (select changed.activity_id from changed)
        {% endif %}
),

calendar_meetings as (
    select
        {{ dbt.concat(["'calendar:'", "calendar_events.occurrence_id"]) }} as activity_id,
        'meeting' as activity_type,
        'calendar' as source_system,
        calendar_events.occurrence_id as source_record_id,
        crm_events.event_id as crm_record_id,
        coalesce(crm_events.owner_id, organizer.rep_id, mailbox_owner.rep_id) as rep_id,
        coalesce(crm_events.who_id, external_attendees.contact_id) as crm_who_id,
        crm_events.what_id as crm_what_id,
        cast(null as {{ dbt.type_string() }}) as customer_number_e164,
        cast(null as {{ dbt.type_string() }}) as direction,
        calendar_events.start_at as occurred_at,
        cast({{ dbt.datediff('calendar_events.start_at', 'calendar_events.end_at', 'second') }} as bigint)
            as duration_seconds,
        cast(null as bigint) as talk_seconds,
        case when calendar_events.is_cancelled then 'cancelled' else 'held' end as outcome,
        false as is_connected,
        calendar_events.is_cancelled,
        -- internal: nobody outside the company was invited and the CRM does not know it as a customer meeting
        coalesce(external_attendees.external_attendee_count, 0) = 0 and crm_events.event_id is null as is_internal,
        -- the latest export that holds the occurrence, or a later change of the CRM Event synced from it
        greatest(
            cast(calendar_events.exported_date as {{ dbt.type_timestamp() }}),
            coalesce(event_changes.modified_at, cast(calendar_events.exported_date as {{ dbt.type_timestamp() }}))
        ) as changed_at,
        {{ build_started_at() }} as _merged_at
    from calendar_events
    left join crm_events on calendar_events.calendar_uid = crm_events.calendar_uid
    left join users as organizer on calendar_events.organizer_email = organizer.email
    left join users as mailbox_owner on calendar_events.mailbox_email = mailbox_owner.email
    left join external_attendees on calendar_events.calendar_uid = external_attendees.calendar_uid
    left join event_changes on calendar_events.calendar_uid = event_changes.calendar_uid
),

crm_meetings as (
    select
        {{ dbt.concat(["'crm_event:'", "crm_events.event_id"]) }} as activity_id,
        'meeting' as activity_type,
        'crm' as source_system,
        crm_events.event_id as source_record_id,
        crm_events.event_id as crm_record_id,
        crm_events.owner_id as rep_id,
        crm_events.who_id as crm_who_id,
        crm_events.what_id as crm_what_id,
        cast(null as {{ dbt.type_string() }}) as customer_number_e164,
        cast(null as {{ dbt.type_string() }}) as direction,
        crm_events.start_at as occurred_at,
        cast(crm_events.duration_minutes * 60 as bigint) as duration_seconds,
        cast(null as bigint) as talk_seconds,
        'held' as outcome,
        false as is_connected,
        false as is_cancelled,
        false as is_internal,
        crm_events.modified_at as changed_at,
        {{ build_started_at() }} as _merged_at
    from crm_events
    left join calendar_uids as on_calendar
        on crm_events.calendar_uid = on_calendar.calendar_uid
    where
        on_calendar.calendar_uid is null
        and crm_events.start_at < {{ as_of_end_at() }}
        {% if incremental %}
            and {{ dbt.concat(["'crm_event:'", "crm_events.event_id"]) }} in (select changed.activity_id from changed)
        {% endif %}
)

select * from phone_calls
union all
select * from crm_calls_and_emails
union all
select * from calendar_meetings
union all
select * from crm_meetings
