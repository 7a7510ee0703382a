{#- The column's values lie within [min_value, max_value] (either bound may be left out; `inclusive=false` makes
    both bounds strict); a null passes, since whether a value may be missing is a not_null test's question. Each
    row returned is a value out of range (dbt_utils' accepted_range, which cannot be installed here). -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
{%- set above = '>=' if inclusive else '>' -%}
{%- set below = '<=' if inclusive else '<' -%}
select {{ column_name }} as value_out_of_range
from {{ model }}
where
    {{ column_name }} is not null
    and not (
        true
        {%- if min_value is not none %} and {{ column_name }} {{ above }} {{ min_value }}{% endif %}
        {%- if max_value is not none %} and {{ column_name }} {{ below }} {{ max_value }}{% endif %}
    )
{% endtest %}
