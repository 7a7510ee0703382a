{#- One row per compensation plan and effective date: the row from the latest file exported on or before the
    as-of date. -#}
with

source as (
    {{ latest_version(
        '(' ~ exported_as_of(source('raw', 'compensation_plans')) ~ ')', 'plan_id, effective_from', '_export_date'
    ) }}
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
