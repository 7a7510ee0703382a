{#- Every won deal of fct_opportunity has exactly one booking at its reporting amount, and every booking is a won
    deal. Each row is a deal that breaks this, with its bookings. -#}
{#- attached, for Dagster's asset check, to the bookings; it reads the deals too -#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_bookings'}}}) }}

with

bookings as (
    select
        opportunity_id,
        count(*) as bookings,
        sum(amount_reporting) as amount_reporting
    from {{ ref('fct_bookings') }}
    group by opportunity_id
),

won as (
    select
        opportunity_id,
        amount_reporting
    from {{ ref('fct_opportunity') }}
    where is_won
)

select
    coalesce(bookings.opportunity_id, won.opportunity_id) as opportunity_id,
    coalesce(bookings.bookings, 0) as bookings,
    won.opportunity_id is not null as won_in_fct_opportunity,
    bookings.amount_reporting as booked_amount_reporting,
    won.amount_reporting as won_amount_reporting
from bookings
full outer join won on bookings.opportunity_id = won.opportunity_id
-- a won deal without an amount (Salesforce allows it) is booked without one: NULL on both sides reconciles
where not coalesce(
    bookings.bookings = 1 and bookings.amount_reporting is not distinct from won.amount_reporting, false
)
