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

{#- Join one row per day from `first_day` to `last_day` (dates, inclusive) as `<alias>.date_day`.
    The default joins dim_date on the interval; DuckDB unnests a generated series instead, which expands the
    bench-scale deal states into days ten times faster (0.9 s against 9.6 s for 31.7 million deal-days). -#}
{% macro join_days(first_day, last_day, alias='days') -%}
    {{ return(adapter.dispatch('join_days')(first_day, last_day, alias)) }}
{%- endmacro %}

{% macro default__join_days(first_day, last_day, alias) -%}
    inner join {{ ref('dim_date') }} as {{ alias }}
        on {{ alias }}.date_day >= {{ first_day }} and {{ alias }}.date_day <= {{ last_day }}
{%- endmacro %}

{% macro duckdb__join_days(first_day, last_day, alias) -%}
    cross join unnest(
        generate_series(cast({{ first_day }} as date), cast({{ last_day }} as date), interval 1 day)
    ) as {{ alias }}_series (day_at)
    cross join lateral (select cast({{ alias }}_series.day_at as date) as date_day) as {{ alias }}
{%- endmacro %}
