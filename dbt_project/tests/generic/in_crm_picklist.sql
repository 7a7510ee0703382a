{#- The column's values are among the values the crm_picklists seed configures for one pick-list of the CRM
    (`object`.`field`); `side` 'meaning' checks a translated column against the meanings instead. A CRM adds values to
    its pick-lists at will, so this test warns: each row it returns is a value to add to the seed, with the rows
    that hold it. -#}
{% test in_crm_picklist(model, column_name, object, field, side='value') %}
{{ config(severity='warn') }}
select
    {{ column_name }} as value_not_configured,
    count(*) as rows_with_it
from {{ model }}
where
    {{ column_name }} is not null
    and {{ column_name }} not in (select picklist.{{ side }} from ({{ crm_picklist(object, field) }}) as picklist)
group by {{ column_name }}
{% endtest %}
