{#- One row per open opportunity per scoring date: the served model's win probability (ml.win_probability, written
    by the Dagster asset ml/win_probability), on or before the as-of date. -#}
with

source as (
    select * from {{ source('ml', 'win_probability') }}
    where as_of_date <= {{ as_of_date() }}
),

renamed as (
    select
        -- ids
        opportunity_id,
        model_version,

        -- strings
        model_kind,
        top_factors_up,
        top_factors_down,

        -- numerics
        p_win,

        -- dates
        as_of_date as scored_as_of_date,
        training_cutoff

    from source
)

select * from renamed
