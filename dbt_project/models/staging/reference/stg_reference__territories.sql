{#- One row per territory: the row from the latest file exported on or before the as-of date. -#}
with

source as (
    {{ latest_version(
        '(' ~ exported_as_of(source('raw', 'territories')) ~ ')', 'territory_id', '_export_date'
    ) }}
),

renamed as (
    select
        -- ids
        territory_id,

        -- strings
        name as territory_name,
        region,
        segment

    from source
)

select * from renamed
