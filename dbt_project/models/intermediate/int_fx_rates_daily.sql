{#- One row per currency and day of dim_date: the rate that applies that day (int_fx_rates_dated). The facts join
    this on (currency, day): an equality join, where a join on the rate's date interval made every fact row meet
    every rate of its currency (a bench-scale fct_pipeline_daily build spent minutes there). -#}
select
    dates.date_day as rate_date,
    rates.currency,
    rates.rate
from {{ ref('dim_date') }} as dates
inner join {{ ref('int_fx_rates_dated') }} as rates
    on
        dates.date_day >= rates.valid_from_date
        and (rates.valid_to_date is null or dates.date_day < rates.valid_to_date)
