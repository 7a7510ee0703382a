{#- Every row of `relation` once per level of the sales hierarchy a revenue forecast is made at (dbt var
    forecast_levels: level -> the column naming the level's group, none for the company), as `level` and
    `group_id`, followed by `columns`. -#}
{% macro rows_per_forecast_level(relation, columns) -%}
    {%- for level, column in var('forecast_levels').items() %}
    select
        '{{ level }}' as level,
        {{ column if column else "'company'" }} as group_id,
        {{ columns | join(', ') }}
    from {{ relation }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
