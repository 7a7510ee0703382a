{#- The column's timestamp is not later than the export date of the file its row came in (`raw.load_ledger`), with a
    day of grace: timestamps are UTC and an export date is the exporter's local day. For a raw table's column that
    the loader does not check against the export itself. -#}
{% test not_after_export(model, column_name) %}
select
    rows.{{ column_name }} as value_after_export,
    ledger.export_date,
    rows._source_file
from {{ model }} as rows
inner join {{ source('raw', 'load_ledger') }} as ledger on rows._load_id = ledger.load_id
where rows.{{ column_name }} > {{ dbt.dateadd('day', 1, 'ledger.export_date') }}
{% endtest %}
