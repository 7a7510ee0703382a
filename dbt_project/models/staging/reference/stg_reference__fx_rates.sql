{#- One row per currency and rate date: the rate from the latest file exported on or before the as-of date. -#}
with

source as (
    select *
    from (
        select
            exported.*,
            row_number() over (
                partition by rate_date, from_currency, to_currency
                order by _export_date desc, _load_id desc, _record_number desc
            ) as _version_rank
        from ({{ exported_as_of(source('raw', 'fx_rates')) }}) as exported
    ) as ranked
    where _version_rank = 1
),

renamed as (
    select
        -- strings
        from_currency,
        to_currency,

        -- numerics
        rate,

        -- dates
        rate_date

    from source
)

select * from renamed
