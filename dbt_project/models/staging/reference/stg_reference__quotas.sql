{#- One row per quota: the row from the latest file exported on or before the as-of date. -#}
with

source as (
    {{ latest_version(
        '(' ~ exported_as_of(source('raw', 'quotas')) ~ ')', 'quota_id', '_export_date'
    ) }}
),

renamed as (
    select
        -- ids
        quota_id,
        owner_id,

        -- strings
        quota_type,
        fiscal_period,
        currency,

        -- numerics
        quota_amount,

        -- dates
        period_start as period_start_date,
        period_end as period_end_date,

        -- lineage: the file the row came from (an incremental build takes the rows of files new to it)
        _export_date,
        _loaded_at

    from source
)

select * from renamed
