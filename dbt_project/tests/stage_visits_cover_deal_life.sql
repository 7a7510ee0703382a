{#- A deal's stage visits start when it was created, follow each other without a hole, and end in one current
    visit (for a closed deal, the closed stage entered when it closed). Each row is a deal of fct_opportunity
    whose visits do not, with what is wrong. -#}
{#- attached, for Dagster's asset check, to the visits; it reads the deals too -#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_opportunity_stage_history'}}}) }}

with

visits as (
    select
        opportunity_id,
        entered_at,
        exited_at,
        is_current,
        lead(entered_at) over (partition by opportunity_id order by visit_number) as next_entered_at,
        row_number() over (partition by opportunity_id order by visit_number desc) as from_last
    from {{ ref('fct_opportunity_stage_history') }}
),

per_deal as (
    select
        opportunity_id,
        min(entered_at) as first_entered_at,
        sum(case when next_entered_at > exited_at then 1 else 0 end) as holes,
        sum(case when is_current then 1 else 0 end) as current_visits,
        max(case when from_last = 1 then entered_at end) as last_entered_at,
        max(case when from_last = 1 and is_current and exited_at is null then 1 else 0 end) = 1
            as ends_in_current_visit
    from visits
    group by opportunity_id
),

deals as (
    select
        opportunity_id,
        created_at,
        closed_at,
        is_closed
    from {{ ref('fct_opportunity') }}
)

select
    deals.opportunity_id,
    deals.created_at,
    per_deal.first_entered_at,
    per_deal.holes,
    per_deal.current_visits,
    per_deal.ends_in_current_visit,
    deals.closed_at,
    per_deal.last_entered_at
from deals
left join per_deal on deals.opportunity_id = per_deal.opportunity_id
where not coalesce(
    per_deal.first_entered_at = deals.created_at
    and per_deal.holes = 0
    and per_deal.current_visits = 1
    and per_deal.ends_in_current_visit
    and (not deals.is_closed or per_deal.last_entered_at = deals.closed_at),
    false
)
