{#- Fiscal year and quarter of a date for a fiscal year that starts in `fiscal_year_start_month`. A fiscal year is
    named for the calendar year in which it ends (FY2025 starts in February 2024 when the year starts in February),
    as the compensation plans and quotas name it. -#}
{% macro fiscal_month_number(date_expression) -%}
    (({{ date_part_sql('month', date_expression) }} - {{ var('fiscal_year_start_month') }} + 12) % 12 + 1)
{%- endmacro %}

{% macro fiscal_year(date_expression) -%}
    ({{ date_part_sql('year', date_expression) }}
        + case when {{ var('fiscal_year_start_month') }} > 1
            and {{ date_part_sql('month', date_expression) }} >= {{ var('fiscal_year_start_month') }}
            then 1 else 0 end)
{%- endmacro %}

{% macro fiscal_quarter(date_expression) -%}
    (cast(floor(({{ fiscal_month_number(date_expression) }} - 1) / 3) as integer) + 1)
{%- endmacro %}
