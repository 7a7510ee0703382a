-- The floor of the transformation benchmark: marts.fct_activity and marts.mart_pipeline_summary computed straight
-- from raw.* by one hand-written DuckDB script, into the schema `floor`. Same rules as the dbt models (see the
-- model files for the reasons behind each rule); written the way DuckDB runs fastest: QUALIFY for "latest version
-- per key", ASOF joins for "the version in force at a time", generate_series for "every day a state held", no
-- views, and temporary tables only for what both facts read (the reps' history, the deals' history, the deals).
--
-- The project's vars are constants here: fiscal years start in February, the calendar starts on 2023-01-01, the
-- reporting currency is USD. The as-of date is the variable `as_of_date` when the caller set it, else the latest
-- export date the ingest loaded. The session is in UTC, as the dbt profile's: the date of a timestamp depends on it.

set TimeZone = 'UTC';
set variable as_of_date = coalesce(
    getvariable('as_of_date'),
    (
        select max(export_date) from raw.load_ledger
        where status = 'loaded'
    )
);
set variable as_of_end_at = cast(getvariable('as_of_date') + 1 as timestamptz);

create schema if not exists floor;

-- Every version of every user known as of the date: a rep's team and territory at any time.
create or replace temp table reps as
select
    "Id" as rep_id,
    lower("Email") as email,
    case when "Sales_Role__c" in ('SDR', 'AE', 'AM') then "ManagerId" else "Id" end as team_id,
    "Territory__c" as territory_id,
    case when row_number() over versions = 1 then "CreatedDate" else "SystemModstamp" end as valid_from_at,
    lead("SystemModstamp") over versions as valid_to_at
from (
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
    from raw.user
    where "SystemModstamp" < getvariable('as_of_end_at')
) as user_versions
window versions as (partition by "Id" order by "SystemModstamp");

-- Every OpportunityHistory change of a live deal and the interval it held, with the stage's flags.
create or replace temp table states as
with

opportunity_ids as (
    select "Id" as opportunity_id
    from raw.opportunity
    where "SystemModstamp" < getvariable('as_of_end_at')
    qualify
        row_number() over (partition by "Id" order by "SystemModstamp" desc, _load_id desc, _record_number desc) = 1
        and not "IsDeleted"
),

history as (
    -- the latest version of each change, whenever exported; a change made after the as-of date is not known
    select
        "Id" as opportunity_history_id,
        "OpportunityId" as opportunity_id,
        "StageName" as stage_name,
        case "ForecastCategory"
            when 'BestCase' then 'Best Case'
            when 'Forecast' then 'Commit'
            when 'MostLikely' then 'Most Likely'
            else "ForecastCategory"
        end as forecast_category,
        "Amount" as amount,
        "Probability" as probability,
        "CloseDate" as close_date,
        "CreatedDate" as changed_at
    from raw.opportunity_history
    qualify
        row_number() over (partition by "Id" order by "SystemModstamp" desc, _load_id desc, _record_number desc) = 1
        and "CreatedDate" < getvariable('as_of_end_at')
        and not "IsDeleted"
),

stages (stage_name, is_closed, is_won) as (
    values
    ('Prospecting', false, false),
    ('Qualification', false, false),
    ('Proposal', false, false),
    ('Closing', false, false),
    ('Closed Won', true, true),
    ('Closed Lost', true, false)
)

select
    history.opportunity_id,
    history.stage_name,
    coalesce(stages.is_closed, false) as is_closed,
    coalesce(stages.is_won, false) as is_won,
    history.amount,
    history.probability,
    history.forecast_category,
    history.close_date,
    coalesce(
        history.close_date > lag(history.close_date) over changes and not coalesce(stages.is_closed, false), false
    ) as is_close_date_push,
    -- a change in another stage than the one before starts a stage visit
    not coalesce(lag(history.stage_name) over changes = history.stage_name, false) as starts_visit,
    history.changed_at as valid_from_at,
    lead(history.changed_at) over changes as valid_to_at
from history
semi join opportunity_ids on history.opportunity_id = opportunity_ids.opportunity_id
left join stages on history.stage_name = stages.stage_name
window changes as (partition by history.opportunity_id order by history.changed_at, history.opportunity_history_id);

-- One row per live deal as of the date: when it closed (it entered its closed stage), and its team and territory
-- (its owner's when it closed, or now).
create or replace temp table opportunities as
with

latest as (
    select
        "Id" as opportunity_id,
        "AccountId" as account_id,
        "OwnerId" as owner_id,
        "CurrencyIsoCode" as currency,
        "CreatedDate" as created_at
    from raw.opportunity
    where "SystemModstamp" < getvariable('as_of_end_at')
    qualify
        row_number() over (partition by "Id" order by "SystemModstamp" desc, _load_id desc, _record_number desc) = 1
        and not "IsDeleted"
),

account_territories as (
    select
        "Id" as account_id,
        "Territory__c" as territory_id
    from raw.account
    where "SystemModstamp" < getvariable('as_of_end_at')
    qualify row_number() over (partition by "Id" order by "SystemModstamp" desc, _load_id desc, _record_number desc) = 1
),

closings as (
    -- the last state decides whether the deal is closed; the last visit began at the latest visit start
    select
        opportunity_id,
        case
            when bool_or(is_closed and valid_to_at is null) then max(valid_from_at) filter (where starts_visit)
        end as closed_at
    from states
    group by opportunity_id
),

with_closing as (
    select
        latest.*,
        closings.closed_at,
        coalesce(closings.closed_at, getvariable('as_of_end_at')) as owner_at
    from latest
    left join closings on latest.opportunity_id = closings.opportunity_id
)

select
    with_closing.opportunity_id,
    with_closing.account_id,
    with_closing.owner_id,
    with_closing.currency,
    with_closing.created_at,
    with_closing.closed_at,
    owner_then.team_id,
    coalesce(owner_then.territory_id, account_territories.territory_id) as territory_id
from with_closing
asof left join reps as owner_then
    on with_closing.owner_id = owner_then.rep_id and with_closing.owner_at >= owner_then.valid_from_at
left join account_territories on with_closing.account_id = account_territories.account_id;

-- One row per activity from the CRM, the calendars and the phone system, each counted once, with its contact,
-- account and the deal it counts towards.
create or replace table floor.fct_activity as
with

calls as (
    select
        call_id,
        direction,
        lower(user_email) as user_email,
        case when direction = 'outbound' then to_number_e164 else from_number_e164 end as customer_number_e164,
        disposition,
        duration_seconds,
        talk_seconds,
        disposition = 'answered' as is_connected,
        started_at
    from raw.phone_calls
    qualify
        row_number() over (partition by call_id order by _loaded_at desc, _load_id desc, _record_number desc) = 1
        and started_at < getvariable('as_of_end_at')
),

tasks as (
    select
        "Id" as task_id,
        "OwnerId" as owner_id,
        "WhoId" as who_id,
        "WhatId" as what_id,
        "CallObject" as call_id,
        "Status" as task_status,
        "TaskSubtype" as task_subtype,
        "Type" as task_type,
        "CallType" as call_type,
        "CallDisposition" as call_disposition,
        "CallDurationInSeconds" as call_duration_seconds,
        "CreatedDate" as created_at
    from raw.task
    where "SystemModstamp" < getvariable('as_of_end_at')
    qualify
        row_number() over (partition by "Id" order by "SystemModstamp" desc, _load_id desc, _record_number desc) = 1
        and not "IsDeleted"
),

crm_events as (
    select
        "Id" as event_id,
        "OwnerId" as owner_id,
        "WhoId" as who_id,
        "WhatId" as what_id,
        "External_Event_Id__c" as calendar_uid,
        "DurationInMinutes" as duration_minutes,
        "StartDateTime" as start_at
    from raw.event
    where "SystemModstamp" < getvariable('as_of_end_at')
    qualify
        row_number() over (partition by "Id" order by "SystemModstamp" desc, _load_id desc, _record_number desc) = 1
        and not "IsDeleted"
),

calendar_events as (
    -- each occurrence as the latest export on or before the date holds it
    select
        md5(events.uid || '|' || coalesce(cast(events.recurrence_id as varchar), '')) as occurrence_id,
        events.uid as calendar_uid,
        lower(events.organizer_email) as organizer_email,
        lower(events.mailbox) as mailbox_email,
        events.is_all_day,
        events.status = 'cancelled' as is_cancelled,
        events.start_at,
        events.end_at
    from raw.calendar_events as events
    inner join raw.load_ledger as ledger on events._load_id = ledger.load_id
    where ledger.export_date <= getvariable('as_of_date')
    qualify row_number() over (
            partition by events.uid, events.recurrence_id
            order by ledger.export_date desc, events.dtstamp desc, events.mailbox asc
        ) = 1
),

attendees as (
    -- each event's attendees as its latest export on or before the date lists them
    select distinct
        uid as calendar_uid,
        email,
        common_name,
        role,
        participation_status
    from (
        select
            attendees.uid,
            lower(attendees.email) as email,
            attendees.common_name,
            attendees.role,
            attendees.participation_status
        from raw.calendar_attendees as attendees
        inner join raw.load_ledger as ledger on attendees._load_id = ledger.load_id
        where ledger.export_date <= getvariable('as_of_date')
        qualify ledger.export_date = max(ledger.export_date) over (partition by attendees.uid)
    ) as latest_export
),

users as (
    select
        rep_id,
        email
    from reps
    where valid_to_at is null
),

contacts as (
    select
        "Id" as contact_id,
        "AccountId" as account_id,
        lower("Email") as email,
        "Phone_e164" as phone_e164,
        "MobilePhone_e164" as mobile_phone_e164
    from raw.contact
    where "SystemModstamp" < getvariable('as_of_end_at')
    qualify
        row_number() over (partition by "Id" order by "SystemModstamp" desc, _load_id desc, _record_number desc) = 1
        and not "IsDeleted"
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

activities as (
    -- a call the CRM logged as a Task is the phone record with the Task's links
    select
        'phone:' || calls.call_id as activity_id,
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
        false as is_internal
    from calls
    left join tasks on calls.call_id = tasks.call_id
    left join users on calls.user_email = users.email

    union all

    -- what the CRM logged without a call record: emails, tasks, calls made outside the phone system
    select
        'crm_task:' || tasks.task_id as activity_id,
        case
            when tasks.task_subtype = 'Call' or tasks.task_type = 'Call' then 'call'
            when tasks.task_subtype = 'Email' or tasks.task_type = 'Email' then 'email'
            else 'task'
        end as activity_type,
        'crm' as source_system,
        tasks.task_id as source_record_id,
        tasks.task_id as crm_record_id,
        tasks.owner_id as rep_id,
        tasks.who_id as crm_who_id,
        tasks.what_id as crm_what_id,
        cast(null as varchar) as customer_number_e164,
        lower(tasks.call_type) as direction,
        tasks.created_at as occurred_at,
        tasks.call_duration_seconds as duration_seconds,
        case when tasks.call_disposition = 'Connected' then tasks.call_duration_seconds end as talk_seconds,
        case tasks.call_disposition
            when 'Connected' then 'answered'
            when 'Left Voicemail' then 'voicemail'
            when 'No Answer' then 'no_answer'
            when 'Busy' then 'busy'
            when 'Failed' then 'failed'
            else lower(coalesce(tasks.call_disposition, tasks.task_status))
        end as outcome,
        tasks.call_disposition = 'Connected' as is_connected,
        false as is_cancelled,
        false as is_internal
    from tasks
    anti join calls on tasks.call_id = calls.call_id
    where tasks.created_at < getvariable('as_of_end_at')

    union all

    -- a meeting the CRM synced from a calendar is the calendar occurrence with the Event's links
    select
        'calendar:' || calendar_events.occurrence_id as activity_id,
        'meeting' as activity_type,
        'calendar' as source_system,
        calendar_events.occurrence_id as source_record_id,
        crm_events.event_id as crm_record_id,
        coalesce(crm_events.owner_id, organizer.rep_id, mailbox_owner.rep_id) as rep_id,
        coalesce(crm_events.who_id, external_attendees.contact_id) as crm_who_id,
        crm_events.what_id as crm_what_id,
        cast(null as varchar) as customer_number_e164,
        cast(null as varchar) as direction,
        calendar_events.start_at as occurred_at,
        date_diff('second', calendar_events.start_at, calendar_events.end_at) as duration_seconds,
        cast(null as bigint) as talk_seconds,
        case when calendar_events.is_cancelled then 'cancelled' else 'held' end as outcome,
        false as is_connected,
        calendar_events.is_cancelled,
        -- internal: nobody outside the company was invited and the CRM does not know it as a customer meeting
        coalesce(external_attendees.external_attendee_count, 0) = 0 and crm_events.event_id is null as is_internal
    from calendar_events
    left join crm_events on calendar_events.calendar_uid = crm_events.calendar_uid
    left join users as organizer on calendar_events.organizer_email = organizer.email
    left join users as mailbox_owner on calendar_events.mailbox_email = mailbox_owner.email
    left join external_attendees on calendar_events.calendar_uid = external_attendees.calendar_uid
    where not calendar_events.is_all_day and calendar_events.start_at < getvariable('as_of_end_at')

    union all

    -- a meeting only the CRM holds
    select
        'crm_event:' || crm_events.event_id as activity_id,
        'meeting' as activity_type,
        'crm' as source_system,
        crm_events.event_id as source_record_id,
        crm_events.event_id as crm_record_id,
        crm_events.owner_id as rep_id,
        crm_events.who_id as crm_who_id,
        crm_events.what_id as crm_what_id,
        cast(null as varchar) as customer_number_e164,
        cast(null as varchar) as direction,
        crm_events.start_at as occurred_at,
        cast(crm_events.duration_minutes * 60 as bigint) as duration_seconds,
        cast(null as bigint) as talk_seconds,
        'held' as outcome,
        false as is_connected,
        false as is_cancelled,
        false as is_internal
    from crm_events
    anti join calendar_events on crm_events.calendar_uid = calendar_events.calendar_uid
    where crm_events.start_at < getvariable('as_of_end_at')
),

contact_numbers as (
    -- a number two contacts share names the first of them
    select
        number_e164,
        min(contact_id) as contact_id
    from (
        select
            phone_e164 as number_e164,
            contact_id
        from contacts
        where phone_e164 is not null
        union all
        select
            mobile_phone_e164,
            contact_id
        from contacts
        where mobile_phone_e164 is not null
    ) as numbers
    group by number_e164
),

accounts as (
    -- every account known as of the date, deleted or not
    select distinct "Id" as account_id
    from raw.account
    where "SystemModstamp" < getvariable('as_of_end_at')
),

with_contact as (
    select
        activities.*,
        coalesce(who_contact.contact_id, number_contact.contact_id) as contact_id,
        coalesce(
            what_opportunity.account_id, what_account.account_id, who_contact.account_id, number_contact.account_id
        ) as account_id,
        what_opportunity.opportunity_id as linked_opportunity_id
    from activities
    left join contacts as who_contact on activities.crm_who_id = who_contact.contact_id
    left join contact_numbers on activities.customer_number_e164 = contact_numbers.number_e164
    left join contacts as number_contact on contact_numbers.contact_id = number_contact.contact_id
    left join opportunities as what_opportunity on activities.crm_what_id = what_opportunity.opportunity_id
    left join accounts as what_account on activities.crm_what_id = what_account.account_id
),

open_at_the_time as (
    -- the account's deal that was open when the activity happened; the most recently created one when several were
    select
        with_contact.activity_id,
        opportunities.opportunity_id
    from with_contact
    inner join opportunities
        on with_contact.account_id = opportunities.account_id
            and with_contact.occurred_at >= opportunities.created_at
            and (opportunities.closed_at is null or with_contact.occurred_at <= opportunities.closed_at)
    where with_contact.linked_opportunity_id is null and not with_contact.is_internal
    qualify row_number() over (
            partition by with_contact.activity_id
            order by opportunities.created_at desc, opportunities.opportunity_id asc
        ) = 1
)

select
    with_contact.activity_id,
    with_contact.activity_type,
    with_contact.source_system,
    with_contact.source_record_id,
    with_contact.crm_record_id,
    with_contact.rep_id,
    with_contact.contact_id,
    with_contact.account_id,
    coalesce(with_contact.linked_opportunity_id, open_at_the_time.opportunity_id) as opportunity_id,
    case
        when with_contact.linked_opportunity_id is not null then 'crm_link'
        when open_at_the_time.opportunity_id is not null then 'account_open_opportunity'
        else 'unattributed'
    end as attribution_rule,
    with_contact.direction,
    with_contact.occurred_at,
    cast(with_contact.occurred_at as date) as occurred_date,
    cast(with_contact.duration_seconds as bigint) as duration_seconds,
    cast(with_contact.talk_seconds as bigint) as talk_seconds,
    with_contact.outcome,
    coalesce(with_contact.is_connected, false) as is_connected,
    with_contact.is_cancelled,
    with_contact.is_internal,
    not with_contact.is_internal as is_customer_facing
from with_contact
left join open_at_the_time on with_contact.activity_id = open_at_the_time.activity_id;

-- One row per as-of day, team, territory, stage and forecast category: each deal counted in the state it stood in
-- at the end of the day, with quarter-to-date flows and the team's coverage.
create or replace table floor.mart_pipeline_summary as
with

state_days as (
    -- open states hold until the day before the next change; a closed state only for the rest of its quarter
    select
        opportunity_id,
        stage_name,
        forecast_category,
        is_closed,
        is_won,
        probability,
        close_date,
        amount,
        cast(valid_from_at as date) as first_day,
        case
            when is_closed
                then least(
                        -- the quarter is known from the calendar's first day on, as dim_date's
                        case
                            when cast(valid_from_at as date) >= date '2023-01-01'
                                then cast(
                                        date_trunc('quarter', cast(valid_from_at as date) - interval 1 month)
                                        + interval 4 month - interval 1 day as date
                                    )
                        end,
                        coalesce(cast(valid_to_at as date) - 1, getvariable('as_of_date'))
                    )
            when valid_to_at is null then getvariable('as_of_date')
            else cast(valid_to_at as date) - 1
        end as last_day
    from states
),

first_pushes as (
    -- the first day in each fiscal quarter a deal's expected close date moved later
    select
        opportunity_id,
        cast(date_trunc('quarter', cast(valid_from_at as date) - interval 1 month) + interval 1 month as date)
            as fiscal_quarter_start_date,
        min(cast(valid_from_at as date)) as first_push_date
    from states
    where is_close_date_push and cast(valid_from_at as date) >= date '2023-01-01'
    group by all
),

fx_rates as (
    -- each currency's rate to USD from the latest file on or before the date; a rate holds until the next one
    select
        rates.from_currency as currency,
        rates.rate,
        rates.rate_date as valid_from_date
    from raw.fx_rates as rates
    inner join raw.load_ledger as ledger on rates._load_id = ledger.load_id
    where ledger.export_date <= getvariable('as_of_date')
    qualify row_number() over (
            partition by rates.rate_date, rates.from_currency, rates.to_currency
            order by ledger.export_date desc, rates._load_id desc, rates._record_number desc
        ) = 1 and rates.to_currency = 'USD'
    union all
    -- the type dbt's numeric gives the reporting currency's rate, which sets the scale of every amount below
    select
        'USD' as currency,
        cast(1 as decimal(28, 6)) as rate,
        date '1900-01-01' as valid_from_date
),

quotas as (
    select
        owner_id as team_id,
        period_start as period_start_date,
        sum(quota_amount) as quota_amount
    from (
        select
            quotas.owner_id,
            quotas.quota_type,
            quotas.period_start,
            quotas.quota_amount
        from raw.quotas as quotas
        inner join raw.load_ledger as ledger on quotas._load_id = ledger.load_id
        where ledger.export_date <= getvariable('as_of_date')
        qualify row_number() over (
                partition by quotas.quota_id
                order by ledger.export_date desc, quotas._load_id desc, quotas._record_number desc
            ) = 1
    ) as latest_quotas
    where quota_type = 'team'
    group by all
),

days as (
    select
        state_days.*,
        cast(day_start as date) as as_of_date,
        cast(day_start + interval 1 day as timestamptz) as day_end_at
    from state_days,
        generate_series(
            greatest(state_days.first_day, date '2023-01-01'), state_days.last_day, interval 1 day
        ) as series (day_start)
),

deal_days as (
    select
        days.as_of_date,
        cast(date_trunc('quarter', days.as_of_date - interval 1 month) + interval 1 month as date)
            as fiscal_quarter_start_date,
        cast(date_trunc('quarter', days.as_of_date - interval 1 month) + interval 4 month - interval 1 day as date)
            as fiscal_quarter_end_date,
        days.opportunity_id,
        days.stage_name,
        days.forecast_category,
        days.is_closed,
        days.is_won,
        days.probability,
        days.close_date,
        days.amount,
        days.day_end_at,
        opportunities.currency,
        opportunities.owner_id,
        cast(opportunities.created_at as date) as created_date,
        -- the rule of fct_opportunity.is_pipeline_eligible, applied to the deal as it stood that day
        days.is_closed or coalesce(
            days.amount > 0 and days.close_date is not null and days.forecast_category <> 'Omitted', false
        ) as is_counted,
        opportunities.team_id as team_id_now,
        opportunities.territory_id as territory_id_now
    from days
    inner join opportunities on days.opportunity_id = opportunities.opportunity_id
),

valued as (
    select
        deal_days.*,
        deal_days.amount * fx_rates.rate as amount_reporting,
        first_pushes.first_push_date is not null and first_pushes.first_push_date <= deal_days.as_of_date as is_pushed,
        coalesce(rep_then.team_id, deal_days.team_id_now) as team_id,
        coalesce(rep_then.territory_id, deal_days.territory_id_now) as territory_id
    from deal_days
    asof left join fx_rates
        on deal_days.currency = fx_rates.currency and deal_days.as_of_date >= fx_rates.valid_from_date
    asof left join reps as rep_then
        on deal_days.owner_id = rep_then.rep_id and deal_days.day_end_at > rep_then.valid_from_at
    left join first_pushes
        on deal_days.opportunity_id = first_pushes.opportunity_id
            and deal_days.fiscal_quarter_start_date = first_pushes.fiscal_quarter_start_date
),

summarized as (
    select
        as_of_date,
        fiscal_quarter_start_date,
        team_id,
        territory_id,
        stage_name,
        forecast_category,
        sum(case when not is_closed and is_counted then 1 else 0 end) as open_count,
        sum(case when not is_closed and is_counted then amount_reporting else 0 end) as open_amount,
        sum(case when not is_closed and is_counted then amount_reporting * probability / 100 else 0 end)
            as weighted_amount,
        sum(case when not is_closed and is_counted and close_date <= fiscal_quarter_end_date
                then amount_reporting
            else 0
        end) as closing_this_quarter_amount,
        sum(case when created_date >= fiscal_quarter_start_date then 1 else 0 end) as created_count,
        sum(case when created_date >= fiscal_quarter_start_date then amount_reporting else 0 end) as created_amount,
        sum(case when is_won then 1 else 0 end) as won_count,
        sum(case when is_won then amount_reporting else 0 end) as won_amount,
        sum(case when is_closed and not is_won then 1 else 0 end) as lost_count,
        sum(case when is_closed and not is_won then amount_reporting else 0 end) as lost_amount,
        sum(case when is_pushed and not is_closed then 1 else 0 end) as pushed_count,
        sum(case when is_pushed and not is_closed then amount_reporting else 0 end) as pushed_amount
    from valued
    group by all
),

with_team as (
    select
        *,
        sum(closing_this_quarter_amount) over team_day as team_pipeline_this_quarter_amount,
        sum(won_amount) over team_day as team_bookings_to_date_amount
    from summarized
    window team_day as (partition by as_of_date, team_id)
)

select
    md5(
        cast(with_team.as_of_date as varchar) || '|' || coalesce(with_team.team_id, '') || '|'
        || coalesce(with_team.territory_id, '') || '|' || with_team.stage_name || '|'
        || coalesce(with_team.forecast_category, '')
    ) as pipeline_summary_id,
    with_team.as_of_date,
    with_team.team_id,
    with_team.territory_id,
    with_team.stage_name,
    with_team.forecast_category,
    cast(with_team.open_count as integer) as open_count,
    cast(with_team.open_amount as decimal(18, 2)) as open_amount,
    cast(with_team.weighted_amount as decimal(18, 2)) as weighted_amount,
    cast(with_team.created_count as integer) as created_count,
    cast(with_team.created_amount as decimal(18, 2)) as created_amount,
    cast(with_team.won_count as integer) as won_count,
    cast(with_team.won_amount as decimal(18, 2)) as won_amount,
    cast(with_team.lost_count as integer) as lost_count,
    cast(with_team.lost_amount as decimal(18, 2)) as lost_amount,
    cast(with_team.pushed_count as integer) as pushed_count,
    cast(with_team.pushed_amount as decimal(18, 2)) as pushed_amount,
    cast(with_team.closing_this_quarter_amount as decimal(18, 2)) as closing_this_quarter_amount,
    cast(with_team.team_pipeline_this_quarter_amount as decimal(18, 2)) as coverage_numerator_amount,
    cast(quotas.quota_amount - with_team.team_bookings_to_date_amount as decimal(18, 2))
        as coverage_denominator_amount,
    case
        when quotas.quota_amount - with_team.team_bookings_to_date_amount > 0
            then cast(with_team.team_pipeline_this_quarter_amount as double)
                / (quotas.quota_amount - with_team.team_bookings_to_date_amount)
    end as coverage_ratio,
    cast(quotas.quota_amount as decimal(18, 2)) as team_quota_amount,
    cast(with_team.team_bookings_to_date_amount as decimal(18, 2)) as team_bookings_to_date_amount
from with_team
left join quotas
    on with_team.team_id = quotas.team_id and with_team.fiscal_quarter_start_date = quotas.period_start_date;
