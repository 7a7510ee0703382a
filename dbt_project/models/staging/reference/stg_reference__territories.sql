with

source as (
    select *
    from (
        select
            exported.*,
            row_number() over (
                partition by territory_id order by _export_date desc, _load_id desc, _record_number desc
            ) as _version_rank
        from ({{ exported_as_of(source('raw', 'territories')) }}) as exported
    ) as ranked
    where _version_rank = 1
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
