{#- One row per quota: an owner (a rep, or a manager for their team) and a fiscal quarter. Bookings count won deals
    that closed in the quarter up to the as-of date, credited to the rep who owned them, or to the team the owner
    was in when they closed. -#}
with

quotas as (
    select * from {{ ref('stg_reference__quotas') }}
),

bookings as (
    select * from {{ ref('fct_bookings') }}
),

credits as (
    -- each booking counts for its owner and for the owner's team at close; joined on equality, since an OR of the
    -- two made the join a nested loop (75 s at bench scale)
    select
        rep_id as owner_id,
        'individual' as quota_type,
        booking_date,
        booking_id,
        amount_reporting
    from bookings
    union all
    select
        team_id as owner_id,
        'team' as quota_type,
        booking_date,
        booking_id,
        amount_reporting
    from bookings
    where team_id is not null
),

credited as (
    select
        quotas.quota_id,
        sum(credits.amount_reporting) as bookings_amount,
        count(credits.booking_id) as won_deals
    from quotas
    inner join credits
        on quotas.owner_id = credits.owner_id
            and quotas.quota_type = credits.quota_type
            and quotas.period_start_date <= credits.booking_date
            and quotas.period_end_date >= credits.booking_date
    group by quotas.quota_id
)

select
    quotas.quota_id,
    quotas.owner_id,
    quotas.quota_type,
    quotas.fiscal_period,
    quotas.period_start_date,
    quotas.period_end_date,
    quotas.currency,
    cast(quotas.quota_amount as decimal(18, 2)) as quota_amount,
    cast(coalesce(credited.bookings_amount, 0) as decimal(18, 2)) as bookings_amount,
    cast(coalesce(credited.won_deals, 0) as integer) as won_deals,
    cast({{ safe_ratio('coalesce(credited.bookings_amount, 0)', 'quotas.quota_amount') }} as double) as attainment,
    cast(quotas.quota_amount - coalesce(credited.bookings_amount, 0) as decimal(18, 2)) as remaining_quota_amount,
    quotas.period_end_date <= {{ as_of_date() }} as is_period_complete
from quotas
left join credited on quotas.quota_id = credited.quota_id
where quotas.period_start_date <= {{ as_of_date() }}
