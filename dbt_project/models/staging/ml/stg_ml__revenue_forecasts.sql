{#- One row per stored revenue forecast: forecast date, period (month or fiscal quarter), level of the sales
    hierarchy and group (ml.revenue_forecast, written by the Dagster asset ml/revenue_forecast), made on or before
    the as-of date. -#}
with

source as (
    select * from {{ source('ml', 'revenue_forecast') }}
    where forecast_date <= {{ as_of_date() }}
),

renamed as (
    select
        -- ids
        group_id,
        model_version,

        -- strings
        period_grain,
        level,
        currency,

        -- numerics
        booked_to_date,
        open_pipeline_expected,
        new_pipeline_expected,
        p10,
        p50,
        p90,

        -- dates
        forecast_date,
        period_start,
        period_end

    from source
)

select * from renamed
