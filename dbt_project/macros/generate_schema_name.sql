{#- Models land in the schema they name (`staging`, `intermediate`, `marts`), as DESIGN.md lays the warehouse out,
    not in dbt's default `<target schema>_<custom schema>`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
