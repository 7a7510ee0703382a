{#- Small helpers for what dbt's cross-database macros do not cover; each has the ANSI form as its default. -#}

{#- true when every value is true -#}
{% macro bool_and_sql(expression) -%}
    {{ return(adapter.dispatch('bool_and_sql')(expression)) }}
{%- endmacro %}

{% macro default__bool_and_sql(expression) -%}
    (min(case when {{ expression }} then 1 else 0 end) = 1)
{%- endmacro %}

{#- median of a numeric expression -#}
{% macro median_sql(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{#- days between two timestamps, with the fraction of a day -#}
{% macro days_between(start_at, end_at) -%}
    ({{ dbt.datediff(start_at, end_at, 'second') }} / 86400.0)
{%- endmacro %}

{#- a ratio that is null when the denominator is zero or null, never a division error -#}
{% macro safe_ratio(numerator, denominator) -%}
    (cast({{ numerator }} as double precision) / nullif({{ denominator }}, 0))
{%- endmacro %}

{#- a part of a date (year, month, day) by ANSI extract; dbt has no cross-database macro for it -#}
{% macro date_part_sql(part, expression) -%}
    extract({{ part }} from {{ expression }})
{%- endmacro %}

{#- day of the week, 0 = Sunday to 6 = Saturday -#}
{% macro day_of_week_sql(expression) -%}
    {{ return(adapter.dispatch('day_of_week_sql')(expression)) }}
{%- endmacro %}

{% macro default__day_of_week_sql(expression) -%}
    extract(dow from {{ expression }})
{%- endmacro %}
