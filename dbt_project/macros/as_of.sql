{#-
  The "today" of a build. Every model that needs one calls these macros, and nothing reads the wall clock, so a
  build as of a date gives the same rows whenever it runs.

  `--vars '{as_of_date: 2025-03-31}'` sets it. Without it, the default is the latest export date among the files
  the ingest loaded (raw.load_ledger): a drop dated D holds everything up to the end of D. The ledger is named
  directly rather than through source(), so that unit tests (which set the var) need no ledger fixture.
-#}
{% macro as_of_date() -%}
    cast('{{ as_of_date_value() }}' as date)
{%- endmacro %}

{#- The as-of date as a 'YYYY-MM-DD' string, for macros that compare it (macros/incremental.sql). -#}
{% macro as_of_date_value() -%}
    {%- set configured = var('as_of_date', none) -%}
    {%- if configured -%}
        {{ return(configured | string) }}
    {%- elif execute -%}
        {%- set ledger = api.Relation.create(database=target.database, schema='raw', identifier='load_ledger') -%}
        {%- set result = run_query("select max(export_date) from " ~ ledger ~ " where status = 'loaded'") -%}
        {%- set latest = result.columns[0].values()[0] if result and result.rows | length > 0 else none -%}
        {%- if latest is none -%}
            {{ exceptions.raise_compiler_error("as_of_date is not set and raw.load_ledger has no loaded file: run the ingest first or pass --vars '{as_of_date: YYYY-MM-DD}'") }}
        {%- endif -%}
        {{ return(latest | string) }}
    {%- else -%}
        {{ return('1900-01-01') }}
    {%- endif -%}
{%- endmacro %}

{#- The first instant after the as-of date, in UTC: rows that happened before it are known as of the date. -#}
{% macro as_of_end_at() -%}
    cast({{ dbt.dateadd('day', 1, as_of_date()) }} as {{ dbt.type_timestamp() }})
{%- endmacro %}
