{#- A deal's next stage visit starts no earlier than the previous one ends: each row is a visit that the deal's
    next visit overlaps. -#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_opportunity_stage_history'}}}) }}

with

visits as (
    select
        opportunity_id,
        visit_number,
        exited_at,
        lead(entered_at) over (partition by opportunity_id order by visit_number) as next_entered_at
    from {{ ref('fct_opportunity_stage_history') }}
)

select
    opportunity_id,
    visit_number,
    exited_at,
    next_entered_at
from visits
where next_entered_at < exited_at
