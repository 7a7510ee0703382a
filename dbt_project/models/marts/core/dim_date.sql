{{ config(materialized='table') }}

with

days as (
    {{ dbt.date_spine(
        'day',
        "cast('" ~ var('calendar_start_date') ~ "' as date)",
        dbt.dateadd('day', 366, as_of_date()),
    ) }}
),

typed as (
    select cast(date_day as date) as date_day from days
),

fiscal as (
    select
        date_day,
        {{ fiscal_year('date_day') }} as fiscal_year,
        {{ fiscal_quarter('date_day') }} as fiscal_quarter,
        {{ fiscal_month_number('date_day') }} as fiscal_month,
        cast({{ dbt.dateadd(
            'month',
            '-1 * ((' ~ fiscal_month_number('date_day') ~ ' - 1) % 3)',
            dbt.date_trunc('month', 'date_day'),
        ) }} as date) as fiscal_quarter_start_date
    from typed
)

select
    date_day,
    cast({{ date_part_sql('year', 'date_day') }} as integer) as calendar_year,
    cast({{ date_part_sql('month', 'date_day') }} as integer) as calendar_month,
    cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
    cast({{ day_of_week_sql('date_day') }} as integer) as day_of_week,
    cast(fiscal_year as integer) as fiscal_year,
    cast(fiscal_quarter as integer) as fiscal_quarter,
    cast(fiscal_month as integer) as fiscal_month,
    {{ dbt.concat(["'FY'", "cast(fiscal_year as " ~ dbt.type_string() ~ ")", "'-Q'",
        "cast(fiscal_quarter as " ~ dbt.type_string() ~ ")"]) }} as fiscal_quarter_label,
    fiscal_quarter_start_date,
    cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 3, 'fiscal_quarter_start_date')) }} as date)
        as fiscal_quarter_end_date,
    cast({{ dbt.datediff('fiscal_quarter_start_date', 'date_day', 'day') }} + 1 as integer) as day_of_fiscal_quarter,
    -- Monday to Friday; public holidays are not modelled
    {{ day_of_week_sql('date_day') }} not in (0, 6) as is_business_day,
    date_day = {{ as_of_date() }} as is_as_of_date
from fiscal
