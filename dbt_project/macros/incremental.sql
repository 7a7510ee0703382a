{#-
  Incremental builds. An incremental model recomputes only the rows that what changed since its previous build can
  reach; the result is the table a full rebuild would give, row for row (tests/test_warehouse_consistency.py).

  What a build knows of the previous one: `incremental_builds` (in the target schema) holds, per incremental model,
  the as-of date and the start of the last `dbt build` (dbt's `run_started_at`) that built it; the on-run-end hook
  writes it. From there:

  - A raw row is new to a model when its file finished loading (raw.load_ledger.finished_at) after the previous
    build started, or its drop is dated after the previous as-of date: a drop exported late, or a file re-sent,
    counts as much as the day's drop. A build holds the warehouse's one write lock from before it reads anything
    until it ends, so a file that finished before the build started was seen by it and one that finished after it
    was not.
  - A version that the later as-of date makes visible (modified, created or started after the end of the previous
    as-of date) is new too.
  - Staging and intermediate rows carry `_merged_at`, the start of the build that wrote them: a downstream model
    takes the upstream rows written after its own previous build, whichever build wrote them.
  - An as-of date earlier than the previous one, a model without a recorded build, or `--full-refresh` rebuild the
    model in full (the project's pre-hook empties the table first). A change of seeds, vars or model code needs
    `--full-refresh`: no watermark sees it.
-#}

{#- Where the builds are recorded. -#}
{% macro incremental_builds_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier='incremental_builds')) }}
{%- endmacro %}

{#- on-run-start: the table of builds, made once. -#}
{% macro create_incremental_builds() -%}
    create schema if not exists {{ target.schema }};
    create table if not exists {{ incremental_builds_relation() }} (
        model {{ dbt.type_string() }},
        as_of_date date,
        built_at {{ dbt.type_timestamp() }}
    )
{%- endmacro %}

{#- on-run-end: each incremental model this invocation built records the as-of date and the build's start. A model
    that failed keeps its previous record, so that its next build takes in everything since. -#}
{% macro record_incremental_builds(results) -%}
    {%- set built = [] -%}
    {%- for result in results -%}
        {%- if result.node.resource_type == 'model' and result.status == 'success'
            and result.node.config.materialized == 'incremental' -%}
            {%- do built.append(result.node.schema ~ '.' ~ result.node.alias) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if built -%}
        delete from {{ incremental_builds_relation() }}
        where model in ('{{ built | join("', '") }}');
        insert into {{ incremental_builds_relation() }} (model, as_of_date, built_at)
        values
        {%- for model in built %}
            ('{{ model }}', {{ as_of_date() }}, {{ build_started_at() }}){{ ',' if not loop.last }}
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- The start of this `dbt build`, as a timestamp literal: what `_merged_at` holds and `incremental_builds` records.
    Lineage only, like raw's `_loaded_at`: no figure depends on it. -#}
{% macro build_started_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The recorded build of `relation`: {'as_of_date': 'YYYY-MM-DD', 'built_at': 'YYYY-MM-DD HH:MM:SS.ffffff'}, or
    none when there is none (or no table of builds yet, as in `dbt compile` on a fresh warehouse). -#}
{% macro previous_build(relation) -%}
    {%- set builds = incremental_builds_relation() -%}
    {%- set exists = run_query(
        "select count(*) from information_schema.tables where table_schema = '" ~ builds.schema
        ~ "' and table_name = '" ~ builds.identifier ~ "'"
    ) -%}
    {%- if exists.rows[0][0] == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = run_query(
        "select cast(as_of_date as " ~ dbt.type_string() ~ "), cast(built_at as " ~ dbt.type_string() ~ ") from "
        ~ builds ~ " where model = '" ~ relation.schema ~ "." ~ relation.identifier ~ "'"
    ) -%}
    {%- if found.rows | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return({'as_of_date': found.rows[0][0], 'built_at': found.rows[0][1]}) }}
{%- endmacro %}

{#- How this model is built now: {'mode': 'full'} (a new table or --full-refresh), {'mode': 'rebuild'} (incremental,
    but the table cannot be brought forward: no recorded build, or an earlier as-of date than the one it holds), or
    {'mode': 'incremental', 'as_of_date': ..., 'built_at': ...} with the previous build's as-of date and start. -#}
{% macro incremental_build(relation=none) -%}
    {%- if relation is none -%}
        {%- if not is_incremental() -%}
            {{ return({'mode': 'full'}) }}
        {%- endif -%}
        {%- set relation = this -%}
    {%- endif -%}
    {%- set previous = previous_build(relation) -%}
    {%- if previous is none or as_of_date_value() < previous.as_of_date -%}
        {{ return({'mode': 'rebuild'}) }}
    {%- endif -%}
    {{ return({'mode': 'incremental', 'as_of_date': previous.as_of_date, 'built_at': previous.built_at}) }}
{%- endmacro %}

{#- The previous build's as-of date, its end and its start, as SQL literals (incremental mode only). -#}
{% macro previous_as_of_date(build) -%}
    cast('{{ build.as_of_date }}' as date)
{%- endmacro %}

{% macro previous_as_of_end_at(build) -%}
    cast({{ dbt.dateadd('day', 1, previous_as_of_date(build)) }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro previous_build_started_at(build) -%}
    cast('{{ build.built_at }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The project's pre-hook: a model rebuilt in incremental mode starts from an empty table. -#}
{% macro empty_table_to_rebuild() -%}
    {%- if incremental_build().mode == 'rebuild' -%}
        delete from {{ this }}
    {%- endif -%}
{%- endmacro %}

{#- The raw files a model has not taken in yet: loaded after its previous build started, or dated after its previous
    as-of date, and exported on or before this build's. -#}
{% macro new_loads(build) -%}
    select load_id
    from {{ source('raw', 'load_ledger') }}
    where
        status = 'loaded'
        and export_date <= {{ as_of_date() }}
        and (
            finished_at > {{ previous_build_started_at(build) }}
            or export_date > {{ previous_as_of_date(build) }}
        )
{%- endmacro %}

{#-
  Data tests on an incremental model check, in a `dbt build` that built it incrementally, only the rows that build
  wrote; a full or rebuilding build, or `dbt test` on its own, checks every row. The model says which rows are new
  in its `meta.new_rows`, a filter where `{built_at}` stands for this build's start and `{previous_as_of_date}` for
  the previous build's as-of date. dbt renders a test's `where` config when it parses the project, without the
  project's macros, so the filter is added here, in dbt's own hook for `where`, when the test runs.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set filters = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do filters.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set new_rows = new_rows_filter() -%}
    {%- if new_rows -%}
        {%- do filters.append('(' ~ new_rows ~ ')') -%}
    {%- endif -%}
    {%- if filters -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ filters | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}

{#- The filter of the rows the running `dbt build` wrote to the model the current test is attached to, or '' when
    the test is to check every row. -#}
{% macro new_rows_filter() -%}
    {%- if not execute or flags.WHICH != 'build' or flags.FULL_REFRESH -%}
        {{ return('') }}
    {%- endif -%}
    {%- set attached = model.get('attached_node') -%}
    {%- set node = graph.nodes.get(attached) if attached else none -%}
    {%- if node is none or node.config.materialized != 'incremental' or attached not in selected_resources -%}
        {{ return('') }}
    {%- endif -%}
    {%- set new_rows = node.config.meta.get('new_rows') -%}
    {%- if not new_rows -%}
        {{ return('') }}
    {%- endif -%}
    {%- set relation = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
    {%- set build = incremental_build(relation) -%}
    {%- if build.mode != 'incremental' -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(new_rows
        | replace('{built_at}', build_started_at())
        | replace('{previous_as_of_date}', previous_as_of_date(build))) }}
{%- endmacro %}
