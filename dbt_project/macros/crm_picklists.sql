{#- The values of one CRM pick-list (`object`.`field`) and what each means, from the crm_picklists seed: the one
    place the warehouse's reading of a CRM's pick-lists is configured (docs/crm_values.md). -#}
{% macro crm_picklist(object, field) -%}
    select
        value,
        meaning
    from {{ ref('crm_picklists') }}
    where object = '{{ object }}' and field = '{{ field }}'
{%- endmacro %}
