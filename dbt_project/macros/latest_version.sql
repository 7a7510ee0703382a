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
