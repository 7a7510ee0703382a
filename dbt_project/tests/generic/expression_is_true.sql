{#- `expression` holds on every row: a rule between columns of one row (total pay is the sum of its parts, a call
    talks no longer than it lasts). A row where it is false is returned; a row where it is null (a part missing)
    passes, as in dbt_utils' expression_is_true, which cannot be installed here. -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
