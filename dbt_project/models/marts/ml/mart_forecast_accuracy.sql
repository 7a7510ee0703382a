{#- One row per stored revenue forecast (forecast date, model version, period grain, period, level, group) beside
    the bookings that have landed in that period by the as-of date: once the period has ended, its error and whether
    the 80% interval held the actual. -#}
with

forecasts as (
    select * from {{ ref('stg_ml__revenue_forecasts') }}
),

bookings as (
    select * from {{ ref('fct_bookings') }}
    where booking_date <= {{ as_of_date() }}
),

bookings_by_group as (
    -- every booking once per level of the hierarchy, under the group it counts for there
    {{ rows_per_forecast_level('bookings', ['booking_date', 'amount_reporting']) }}
),

actuals as (
    select
        forecasts.forecast_date,
        forecasts.model_version,
        forecasts.period_grain,
        forecasts.period_start,
        forecasts.level,
        forecasts.group_id,
        coalesce(sum(bookings_by_group.amount_reporting), 0) as actual_booked
    from forecasts
    left join bookings_by_group
        on forecasts.level = bookings_by_group.level
            and forecasts.group_id = bookings_by_group.group_id
            and bookings_by_group.booking_date between forecasts.period_start and forecasts.period_end
    group by
        forecasts.forecast_date, forecasts.model_version, forecasts.period_grain, forecasts.period_start,
        forecasts.level, forecasts.group_id
),

compared as (
    select
        forecasts.*,
        actuals.actual_booked,
        forecasts.period_end < {{ as_of_date() }} as is_period_complete
    from forecasts
    inner join actuals
        on forecasts.forecast_date = actuals.forecast_date
            and forecasts.model_version = actuals.model_version
            and forecasts.period_grain = actuals.period_grain
            and forecasts.period_start = actuals.period_start
            and forecasts.level = actuals.level
            and forecasts.group_id = actuals.group_id
)

select
    -- ids
    {{ dbt.concat([
        "cast(forecast_date as varchar)", "'|'", "model_version", "'|'", "period_grain", "'|'", "cast(period_start as varchar)", "'|'",
        "level", "'|'", "group_id"
    ]) }} as forecast_id,
    group_id,
    model_version,

    -- attributes
    period_grain,
    level,
    currency,
    cast({{ dbt.datediff('forecast_date', 'period_start', 'day') }} as integer) as days_ahead,

    -- money
    cast(booked_to_date as decimal(18, 2)) as booked_to_date,
    cast(p10 as decimal(18, 2)) as p10,
    cast(p50 as decimal(18, 2)) as p50,
    cast(p90 as decimal(18, 2)) as p90,
    cast(actual_booked as decimal(18, 2)) as actual_booked,
    cast(case when is_period_complete then p50 - actual_booked end as decimal(18, 2)) as error,
    cast(case when is_period_complete then abs(p50 - actual_booked) end as decimal(18, 2)) as absolute_error,

    -- dates
    forecast_date,
    period_start,
    period_end,

    -- flags
    is_period_complete,
    case when is_period_complete then actual_booked between p10 and p90 end as is_within_80
from compared
