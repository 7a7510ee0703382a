{#- No two rows share the same values of `columns`: the grain of a model keyed by several columns (dbt_utils'
    unique_combination_of_columns, which cannot be installed here). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows_with_these_values
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
