{#- Open deals without an amount: Salesforce allows them (early-stage deals often have none), so they load, count
    as deals and stay out of every value metric (pipeline, weighted pipeline, bookings, win rates by value). A
    warning names them so that the team can fill the amounts in the CRM. -#}
{{ config(severity='warn') }}

select
    opportunity_id,
    owner_id,
    stage_name,
    close_date
from {{ ref('fct_opportunity') }}
where status = 'open' and amount is null
