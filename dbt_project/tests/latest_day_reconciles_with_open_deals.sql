{#- On the latest day, the daily pipeline holds exactly the open deals of fct_opportunity, at the same reporting
    amount. Each row is a deal on one side only, or at two amounts. -#}
{#- attached, for Dagster's asset check, to the daily pipeline; it reads the deals too -#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_pipeline_daily'}}}) }}

with

latest_day as (
    select
        opportunity_id,
        amount_reporting
    from {{ ref('fct_pipeline_daily') }}
    where pipeline_date = (select max(pipeline_date) from {{ ref('fct_pipeline_daily') }})
),

open_deals as (
    select
        opportunity_id,
        amount_reporting
    from {{ ref('fct_opportunity') }}
    where not is_closed
)

select
    coalesce(latest_day.opportunity_id, open_deals.opportunity_id) as opportunity_id,
    latest_day.opportunity_id is not null as in_pipeline_daily,
    open_deals.opportunity_id is not null as open_in_fct_opportunity,
    latest_day.amount_reporting as pipeline_daily_amount_reporting,
    open_deals.amount_reporting as fct_opportunity_amount_reporting
from latest_day
full outer join open_deals on latest_day.opportunity_id = open_deals.opportunity_id
-- a deal without an amount, or in a currency without a rate yet, has no reporting amount on either side
where not coalesce(latest_day.amount_reporting is not distinct from open_deals.amount_reporting, false)
