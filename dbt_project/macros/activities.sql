{#-
  The activities (`activity_id` of int_activities_unioned and fct_activity) that what changed since `build` (an
  incremental model's previous build, macros/incremental.sql) can change, appear in or vanish from: read by the two
  incremental activity models, to recompute those activities and, in their pre-hooks, to delete them first.

  An activity changes when a row it is made of changed (a call, a Task, a CRM Event, a calendar occurrence, the
  attendees of its event), when a row it looks up changed (the user behind an e-mail address, the contact behind an
  attendee's address: every address those records ever had, since the old one matters as much as the new one), or
  when the later as-of date makes it visible (a meeting that started since). A link between two sources moves with
  the rows at both ends, old and new (stg_crm__record_links): a call's Task, a calendar occurrence's CRM Event.
-#}
{% macro changed_activities(build) -%}
    {%- set since = previous_build_started_at(build) -%}
    {%- set visible_from = previous_as_of_end_at(build) -%}
    {%- set visible_to = as_of_end_at() -%}
    with

    changed_calls as (
        select call_id from {{ ref('stg_phone__calls') }}
        where _merged_at > {{ since }}
    ),

    changed_tasks as (
        select task_id from {{ ref('stg_crm__tasks') }}
        where _merged_at > {{ since }}
    ),

    -- the calls a changed Task logs, or logged in an earlier version
    calls_of_changed_tasks as (
        select link_value as call_id from {{ ref('stg_crm__record_links') }}
        where link = 'task_call' and record_id in (select changed_tasks.task_id from changed_tasks)
    ),

    changed_crm_events as (
        select event_id from {{ ref('stg_crm__events') }}
        where
            _merged_at > {{ since }}
            or (start_at >= {{ visible_from }} and start_at < {{ visible_to }})
    ),

    -- the calendar events a changed CRM Event was synced from, now or in an earlier version
    uids_of_changed_crm_events as (
        select link_value as calendar_uid from {{ ref('stg_crm__record_links') }}
        where
            link = 'event_calendar_uid'
            and record_id in (select changed_crm_events.event_id from changed_crm_events)
    ),

    changed_occurrences as (
        select
            occurrence_id,
            calendar_uid
        from {{ ref('stg_calendar__events') }}
        where
            _merged_at > {{ since }}
            or (start_at >= {{ visible_from }} and start_at < {{ visible_to }})
    ),

    -- every address a changed user or contact ever had
    changed_addresses as (
        select email from {{ ref('stg_crm__users') }}
        where user_id in (select users.user_id from {{ ref('stg_crm__users') }} as users where users._merged_at > {{ since }})
        union
        select link_value as email from {{ ref('stg_crm__record_links') }}
        where
            link = 'contact_email'
            and record_id in (
                select contacts.contact_id from {{ ref('stg_crm__contacts') }} as contacts
                where contacts._merged_at > {{ since }}
            )
    ),

    changed_uids as (
        select calendar_uid from changed_occurrences
        union
        select calendar_uid from uids_of_changed_crm_events
        union
        select calendar_uid from {{ ref('stg_calendar__attendees') }}
        where _merged_at > {{ since }} or email in (select changed_addresses.email from changed_addresses)
        union
        select calendar_uid from {{ ref('stg_calendar__events') }}
        where
            organizer_email in (select changed_addresses.email from changed_addresses)
            or mailbox_email in (select changed_addresses.email from changed_addresses)
    )

    select {{ dbt.concat(["'phone:'", "call_id"]) }} as activity_id from changed_calls
    union
    select {{ dbt.concat(["'phone:'", "call_id"]) }} as activity_id from calls_of_changed_tasks
    union
    select {{ dbt.concat(["'phone:'", "call_id"]) }} as activity_id from {{ ref('stg_phone__calls') }}
    where user_email in (select changed_addresses.email from changed_addresses)
    union
    select {{ dbt.concat(["'crm_task:'", "task_id"]) }} as activity_id from changed_tasks
    union
    -- a Task that logs a changed call: the call may now stand for it
    select {{ dbt.concat(["'crm_task:'", "task_id"]) }} as activity_id from {{ ref('stg_crm__tasks') }}
    where call_id in (select changed_calls.call_id from changed_calls)
    union
    select {{ dbt.concat(["'crm_event:'", "event_id"]) }} as activity_id from changed_crm_events
    union
    -- a CRM Event synced from a changed calendar event: the calendar may now stand for it
    select {{ dbt.concat(["'crm_event:'", "event_id"]) }} as activity_id from {{ ref('stg_crm__events') }}
    where calendar_uid in (select changed_occurrences.calendar_uid from changed_occurrences)
    union
    select {{ dbt.concat(["'calendar:'", "occurrence_id"]) }} as activity_id from {{ ref('stg_calendar__events') }}
    where calendar_uid in (select changed_uids.calendar_uid from changed_uids)
{%- endmacro %}

{#- The activities whose contact, account or deal a change since `build` can move (fct_activity's attribution):
    - those that name a changed contact, or dial a number a changed contact has or ever had;
    - those that name a deal moved to another account, re-dated, deleted or new (`moved_opportunities`), and every
      activity of the accounts such a deal was ever on, or of a changed account, through the account, its contacts
      and their numbers;
    - the activities of the account of a deal that only moved on, from the first time its open window can have
      moved: its first changed history row, or the first time it closed (a deal reopened stands open since). -#}
{% macro activities_reattributed(build) -%}
    {%- set since = previous_build_started_at(build) -%}
    with

    activities as (
        select
            activity_id,
            crm_who_id,
            crm_what_id,
            customer_number_e164,
            occurred_at
        from {{ ref('int_activities_unioned') }}
    ),

    changed_contacts as (
        select contact_id from {{ ref('stg_crm__contacts') }}
        where _merged_at > {{ since }}
    ),

    moved_deals as (
        {{ moved_opportunities(build) }}
    ),

    -- the deals that moved on, from when their open window can have moved
    moved_on_deals as (
        select
            history.opportunity_id,
            min(
                case
                    when closings.valid_from_at < history.changed_at then closings.valid_from_at
                    else history.changed_at
                end
            ) as changed_from
        from {{ ref('stg_crm__opportunity_history') }} as history
        left join {{ ref('int_opportunity_states_versioned') }} as closings
            on history.opportunity_id = closings.opportunity_id and closings.is_closed
        where
            history._merged_at > {{ since }}
            and history.opportunity_id not in (select moved_deals.opportunity_id from moved_deals)
        group by history.opportunity_id
    ),

    -- the accounts whose attribution can change, from when (null: for all time)
    account_changes as (
        select
            account_id,
            cast(null as {{ dbt.type_timestamp() }}) as changed_from
        from {{ ref('stg_crm__opportunity_versions') }}
        where opportunity_id in (select moved_deals.opportunity_id from moved_deals)
        union all
        select
            account_id,
            cast(null as {{ dbt.type_timestamp() }}) as changed_from
        from {{ ref('stg_crm__accounts') }}
        where _merged_at > {{ since }}
        union all
        select
            opportunities.account_id,
            moved_on_deals.changed_from
        from {{ ref('stg_crm__opportunities') }} as opportunities
        inner join moved_on_deals on opportunities.opportunity_id = moved_on_deals.opportunity_id
    ),

    changed_accounts as (
        select
            account_id,
            case when count(*) = count(changed_from) then min(changed_from) end as changed_from
        from account_changes
        group by account_id
    ),

    account_contacts as (
        select
            contacts.contact_id,
            changed_accounts.changed_from
        from {{ ref('stg_crm__contacts') }} as contacts
        inner join changed_accounts on contacts.account_id = changed_accounts.account_id
    ),

    account_numbers as (
        select
            links.link_value as number_e164,
            min(account_contacts.changed_from) as changed_from,
            count(*) = count(account_contacts.changed_from) as has_changed_from
        from {{ ref('stg_crm__record_links') }} as links
        inner join account_contacts on links.record_id = account_contacts.contact_id
        where links.link = 'contact_number'
        group by links.link_value
    )

    select activity_id from activities
    where
        crm_who_id in (select changed_contacts.contact_id from changed_contacts)
        or crm_what_id in (select moved_deals.opportunity_id from moved_deals)
        or customer_number_e164 in (
            select links.link_value from {{ ref('stg_crm__record_links') }} as links
            where
                links.link = 'contact_number'
                and links.record_id in (select changed_contacts.contact_id from changed_contacts)
        )
    union
    select activities.activity_id from activities
    inner join changed_accounts on activities.crm_what_id = changed_accounts.account_id
    where changed_accounts.changed_from is null or activities.occurred_at >= changed_accounts.changed_from
    union
    select activities.activity_id from activities
    inner join account_contacts on activities.crm_who_id = account_contacts.contact_id
    where account_contacts.changed_from is null or activities.occurred_at >= account_contacts.changed_from
    union
    select activities.activity_id from activities
    inner join account_numbers on activities.customer_number_e164 = account_numbers.number_e164
    where not account_numbers.has_changed_from or activities.occurred_at >= account_numbers.changed_from
{%- endmacro %}

{#- The activities an incremental build of int_activities_unioned recomputes; with `attributed`, those of
    fct_activity: the same, the union's rows rewritten since (by any build), and the reattributed ones. -#}
{% macro activities_to_recompute(build, attributed=false) -%}
    select activity_id from ({{ changed_activities(build) }}) as changed_sources
    {%- if attributed %}
    union
    select activity_id from {{ ref('int_activities_unioned') }}
    where _merged_at > {{ previous_build_started_at(build) }}
    union
    select activity_id from ({{ activities_reattributed(build) }}) as reattributed
    {%- endif %}
{%- endmacro %}

{#- The pre-hook of the incremental activity models: the activities about to be recomputed are deleted first, so
    that those that no longer stand for an activity (a Task deleted, a CRM Event now on the calendar) go. -#}
{% macro delete_activities_to_recompute(attributed=false) -%}
    {%- set build = incremental_build() -%}
    {%- if build.mode == 'incremental' -%}
        delete from {{ this }}
        where activity_id in ({{ activities_to_recompute(build, attributed) }})
    {%- endif -%}
{%- endmacro %}
