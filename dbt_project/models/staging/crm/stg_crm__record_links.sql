{{ config(materialized='view') }}

{#- One row per value a link of a CRM record took in any exported version (record, link, value): the e-mail
    addresses and numbers of contacts, the call a Task logged, the calendar event an Event was synced from. The incremental activity models read it to find, for a changed record, what it
    pointed at before as well as now (macros/activities.sql). -#}
with

contact_emails as (
    select distinct
        "Id" as record_id,
        'contact_email' as link,
        lower("Email") as link_value
    from {{ source('raw', 'contact') }}
    where "Email" is not null
),

contact_numbers as (
    select distinct
        "Id" as record_id,
        'contact_number' as link,
        "Phone_e164" as link_value
    from {{ source('raw', 'contact') }}
    where "Phone_e164" is not null
    union
    select distinct
        "Id" as record_id,
        'contact_number' as link,
        "MobilePhone_e164" as link_value
    from {{ source('raw', 'contact') }}
    where "MobilePhone_e164" is not null
),

task_calls as (
    select distinct
        "Id" as record_id,
        'task_call' as link,
        "CallObject" as link_value
    from {{ source('raw', 'task') }}
    where "CallObject" is not null
),

event_calendar_uids as (
    select distinct
        "Id" as record_id,
        'event_calendar_uid' as link,
        "External_Event_Id__c" as link_value
    from {{ source('raw', 'event') }}
    where "External_Event_Id__c" is not null
)

select * from contact_emails
union all
select * from contact_numbers
union all
select * from task_calls
union all
select * from event_calendar_uids
