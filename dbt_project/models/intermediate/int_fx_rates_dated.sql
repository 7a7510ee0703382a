{#- One row per currency and the interval a rate holds: a rate applies from its date until the next rate of the
    same currency, so a date without its own rate (a weekend, a late file) takes the last one published. The
    reporting currency converts to itself at 1. -#}
with

rates as (
    select * from {{ ref('stg_reference__fx_rates') }}
    where to_currency = '{{ var("reporting_currency") }}'
),

dated as (
    select
        from_currency as currency,
        rate,
        rate_date as valid_from_date,
        lead(rate_date) over (partition by from_currency order by rate_date) as valid_to_date
    from rates
)

select * from dated
union all
select
    '{{ var("reporting_currency") }}' as currency,
    cast(1 as {{ dbt.type_numeric() }}) as rate,
    cast('1900-01-01' as date) as valid_from_date,
    cast(null as date) as valid_to_date
