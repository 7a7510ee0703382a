{#-
  Keep one row per key: the latest version known as of the build's date. Raw CRM tables hold every exported version
  of a record (each drop is an upsert), so staging picks the last one whose modification time is before the end of
  the as-of date; later versions are invisible to an earlier as-of date. Written with row_number() in a subquery
  rather than QUALIFY, which not every engine has.
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

{#- The latest version of each CRM record known as of the build's date: only drops exported on or before the as-of
    date count, then the last version by modification time (before `known_before`). Modification time alone is not
    enough: a drop that lands later can still bring a version modified before the as-of date's end (a record
    exported late, a backfill), and a build as of that date would change when it lands. -#}
{% macro latest_exported_version(relation, key, modified_at, known_before=none) -%}
    {{ latest_version('(' ~ exported_as_of(relation) ~ ')', key, modified_at, known_before) }}
{%- endmacro %}
