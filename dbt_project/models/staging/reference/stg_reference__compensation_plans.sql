with

source as (
    select *
    from (
        select
            exported.*,
            row_number() over (
                partition by plan_id, effective_from
                order by _export_date desc, _load_id desc, _record_number desc
            ) as _version_rank
        from ({{ exported_as_of(source('raw', 'compensation_plans')) }}) as exported
    ) as ranked
    where _version_rank = 1
),

renamed as (
    select
        -- ids
        plan_id,

        -- strings
        role as sales_role,
        currency,

        -- numerics
        base_salary_annual,
        commission_rate,
        accelerator_threshold,
        accelerator_multiplier,

        -- dates
        effective_from as effective_from_date

    from source
)

select * from renamed
