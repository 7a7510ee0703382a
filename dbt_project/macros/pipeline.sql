{#- The one statement of which deals count as open pipeline, read by fct_opportunity, fct_pipeline_daily and
    mart_pipeline_summary: an amount above zero, a close date and a forecast category other than Omitted (a rep's
    way of saying the deal will not close). `is_closed`, when given, leaves closed deals out; a model whose rows
    are open deal-days already passes none. Never null: a deal with a part missing does not count. -#}
{% macro is_pipeline_eligible(amount, close_date, forecast_category, is_closed=none) -%}
    coalesce(
        {% if is_closed is not none %}not {{ is_closed }} and {% endif %}{{ amount }} > 0
        and {{ close_date }} is not null
        and {{ forecast_category }} <> 'Omitted',
        false
    )
{%- endmacro %}
