{#-
  Keep one row per key: the latest version known as of the build's date. Raw CRM tables hold every exported version
  of a record (each drop is an upsert), so staging picks the last one; `known_before`, when given, leaves out the
  versions modified after it. Written with row_number() in a subquery rather than QUALIFY, which not every engine
  has.
-#}
{% macro latest_version(relation, key, modified_at, known_before=none) -%}
    select *
    from (
        select
            versions.*,
            row_number() over (
                partition by {{ key }}
                order by {{ modified_at }} desc, _load_id desc, _record_number desc
            ) as _version_rank
        from {{ relation }} as versions
        {%- if known_before is not none %}
        where {{ modified_at }} < {{ known_before }}
        {%- endif %}
    ) as ranked
    where _version_rank = 1
{%- endmacro %}

{#- Rows of `relation` from files exported on or before the as-of date, with the export date as `_export_date`.
    For sources without a modification time (calendar exports, reference files) the drop's date is when a row
    became known. -#}
{% macro exported_as_of(relation) -%}
    select
        exported.*,
        ledger.export_date as _export_date
    from {{ relation }} as exported
    inner join {{ source('raw', 'load_ledger') }} as ledger
        on exported._load_id = ledger.load_id
    where ledger.export_date <= {{ as_of_date() }}
{%- endmacro %}

{#-
  The versions of `relation` a staging model picks from: rows of files exported on or before the as-of date and,
  when `known_at` names a column, only those whose `known_at` is before the end of the as-of date (a change made, a
  call started: later ones are unknown as of the date, whenever they were exported).

  The one place staging is incremental. On an incremental build (macros/incremental.sql) it keeps only the records
  something new can change: those (by `changed_by`, the key by default) with a version in a file the model has not
  taken in yet, or with a version the later as-of date makes visible. Each of those records is then picked again
  from all its versions, so a late-arriving older version never wins over a newer one, whatever the order of the
  files, and the model's `unique_key` replaces the row it had.
-#}
{% macro exported_versions(relation, key, known_at=none, changed_by=none) -%}
    {%- set build = incremental_build() -%}
    {%- set changed_by = changed_by or key -%}
    {{ exported_as_of(relation) }}
    {%- if known_at %}
        and exported.{{ known_at }} < {{ as_of_end_at() }}
    {%- endif %}
    {%- if build.mode == 'incremental' %}
        and exported.{{ changed_by }} in (
            select changed.{{ changed_by }}
            from {{ relation }} as changed
            where changed._load_id in ({{ new_loads(build) }})
            {%- if known_at %}
                or (
                    changed.{{ known_at }} >= {{ previous_as_of_end_at(build) }}
                    and changed.{{ known_at }} < {{ as_of_end_at() }}
                )
            {%- endif %}
        )
    {%- endif %}
{%- endmacro %}

{#- The latest version of each record known as of the build's date (`exported_versions`), latest by `modified_at`,
    then by file and row. Modification time alone is not enough: a drop that lands later can still bring a version
    modified before the as-of date's end (a record exported late, a backfill), and a build as of that date would
    change when it lands. -#}
{% macro latest_exported_version(relation, key, modified_at, known_at=none, changed_by=none) -%}
    {{ latest_version('(' ~ exported_versions(relation, key, known_at, changed_by) ~ ')', key, modified_at) }}
{%- endmacro %}
