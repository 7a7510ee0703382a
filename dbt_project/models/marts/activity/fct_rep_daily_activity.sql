{#- Rep by day (UTC): what each rep did, from customer-facing activities. Dials are outbound calls; a call is
    connected when the phone system (or the CRM, for calls only the CRM logged) says it was answered. Calls between
    two extensions (is_internal) are not customer-facing, so they are neither dials, connects nor calls. -#}
with

activities as (
    select * from {{ ref('fct_activity') }}
    where is_customer_facing and rep_id is not null
),

daily as (
    select
        rep_id,
        occurred_date as activity_date,
        sum(case when activity_type = 'call' and direction = 'outbound' then 1 else 0 end) as dials,
        sum(case when activity_type = 'call' and direction = 'outbound' and is_connected then 1 else 0 end)
            as connects,
        sum(case when activity_type = 'call' then 1 else 0 end) as calls,
        sum(case when activity_type = 'call' then coalesce(talk_seconds, 0) else 0 end) as talk_seconds,
        sum(case when activity_type = 'meeting' and not is_cancelled then 1 else 0 end) as meetings_held,
        sum(case when activity_type = 'meeting' and is_cancelled then 1 else 0 end) as meetings_cancelled,
        sum(case when activity_type = 'email' then 1 else 0 end) as emails,
        count(distinct account_id) as accounts_touched
    from activities
    group by rep_id, occurred_date
)

select
    {{ dbt.hash(dbt.concat(["rep_id", "'|'", "cast(activity_date as " ~ dbt.type_string() ~ ")"])) }}
        as rep_day_id,
    rep_id,
    activity_date,
    cast(dials as integer) as dials,
    cast(connects as integer) as connects,
    cast({{ safe_ratio('connects', 'dials') }} as double) as connect_rate,
    cast(calls as integer) as calls,
    cast(talk_seconds as bigint) as talk_seconds,
    cast(meetings_held as integer) as meetings_held,
    cast(meetings_cancelled as integer) as meetings_cancelled,
    cast(emails as integer) as emails,
    cast(accounts_touched as integer) as accounts_touched
from daily
