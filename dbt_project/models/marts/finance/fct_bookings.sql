{#- One row per won deal (a booking), credited to the deal's owner and the team and territory the owner was in when
    it closed, in the fiscal period of its close date, in deal and reporting currency (FX of the close date). -#}
with

won as (
    select * from {{ ref('fct_opportunity') }}
    where is_won
),

dates as (
    select * from {{ ref('dim_date') }}
)

select
    won.opportunity_id as booking_id,
    won.opportunity_id,
    won.account_id,
    won.owner_id as rep_id,
    won.team_id,
    won.territory_id,
    won.sourced_by_id,
    won.opportunity_type,
    won.segment,
    won.region,
    won.close_date as booking_date,
    won.closed_at,
    dates.fiscal_year,
    dates.fiscal_quarter,
    dates.fiscal_quarter_label as fiscal_period,
    dates.fiscal_quarter_start_date,
    won.currency,
    won.amount,
    won.reporting_currency,
    won.fx_rate,
    won.amount_reporting
from won
left join dates on won.close_date = dates.date_day
