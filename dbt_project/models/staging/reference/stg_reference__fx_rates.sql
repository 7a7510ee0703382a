{#- One row per currency and rate date: the rate from the latest file exported on or before the as-of date. -#}
with

source as (
    {{ latest_version(
        '(' ~ exported_as_of(source('raw', 'fx_rates')) ~ ')', 'rate_date, from_currency, to_currency', '_export_date'
    ) }}
),

renamed as (
    select
        -- strings
        from_currency,
        to_currency,

        -- numerics
        rate,

        -- dates
        rate_date,

        -- lineage: the file the row came from (an incremental build takes the rows of files new to it)
        _export_date,
        _loaded_at

    from source
)

select * from renamed
