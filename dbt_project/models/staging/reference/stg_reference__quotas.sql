with

source as (
    select *
    from (
        select
            exported.*,
            row_number() over (
                partition by quota_id order by _export_date desc, _load_id desc, _record_number desc
            ) as _version_rank
        from ({{ exported_as_of(source('raw', 'quotas')) }}) as exported
    ) as ranked
    where _version_rank = 1
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
        period_end as period_end_date

    from source
)

select * from renamed
