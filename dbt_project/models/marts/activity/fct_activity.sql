{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_activities_to_recompute(attributed=true) }}",
    meta={'new_rows': 'cast(occurred_at as date) > {previous_as_of_date}'},
) }}

{#- One row per activity (call, meeting, email, task) from the CRM, the calendars and the phone system, each counted
    once.

    Incremental: a build recomputes, after its pre-hook deleted them, the activities that what changed since the
    previous one can reach: those int_activities_unioned rewrote since, those the same changes can remove from it
    and those whose attribution a changed contact, account or deal can move (macros/activities.sql). -#}
-- read only by an incremental build (macros/activities.sql):
-- depends_on: {{ ref('stg_phone__calls') }}
-- depends_on: {{ ref('stg_crm__tasks') }}
-- depends_on: {{ ref('stg_crm__events') }}
-- depends_on: {{ ref('stg_calendar__events') }}
-- depends_on: {{ ref('stg_calendar__attendees') }}
-- depends_on: {{ ref('stg_crm__users') }}
-- depends_on: {{ ref('stg_crm__record_links') }}
-- depends_on: {{ ref('stg_crm__opportunity_versions') }}
-- depends_on: {{ ref('stg_crm__opportunities') }}
-- depends_on: {{ ref('stg_crm__opportunity_history') }}
-- depends_on: {{ ref('stg_crm__accounts') }}
-- depends_on: {{ ref('int_opportunity_states_versioned') }}
{%- set build = incremental_build() %}
{%- set incremental = build.mode == 'incremental' %}

with

{% if incremental %}
    changed as (
        {{ activities_to_recompute(build, attributed=true) }}
    ),
{% endif %}

activities as (
    select * from {{ ref('int_activities_unioned') }}
    {% if incremental %}
        where activity_id in (select changed.activity_id from changed)
    {% endif %}
),

contacts as (
    select
        contact_id,
        account_id,
        phone_e164,
        mobile_phone_e164
    from {{ ref('stg_crm__contacts') }}
    where not is_deleted
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
            mobile_phone_e164 as number_e164,
            contact_id
        from contacts
        where mobile_phone_e164 is not null
    ) as numbers
    group by number_e164
),

opportunities as (
    select
        opportunity_id,
        account_id,
        created_at,
        closed_at
    from {{ ref('fct_opportunity') }}
),

accounts as (
    select account_id from {{ ref('dim_account') }}
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
        activity_id,
        opportunity_id
    from (
        select
            with_contact.activity_id,
            opportunities.opportunity_id,
            row_number() over (
                partition by with_contact.activity_id
                order by opportunities.created_at desc, opportunities.opportunity_id asc
            ) as candidate_rank
        from with_contact
        inner join opportunities
            on with_contact.account_id = opportunities.account_id
                and with_contact.occurred_at >= opportunities.created_at
                and (opportunities.closed_at is null or with_contact.occurred_at <= opportunities.closed_at)
        where with_contact.linked_opportunity_id is null and not with_contact.is_internal
    ) as candidates
    where candidate_rank = 1
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
left join open_at_the_time on with_contact.activity_id = open_at_the_time.activity_id
