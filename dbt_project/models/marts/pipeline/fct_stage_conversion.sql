{#- Cohort (month the deal was created) by open stage. A deal reached a stage when it visited it or any later
    one; it advanced when it reached the next open stage or was won. -#}
with

opportunities as (
    select * from {{ ref('fct_opportunity') }}
),

visits as (
    select * from {{ ref('fct_opportunity_stage_history') }}
),

stages as (
    select * from {{ ref('int_opportunity_stages_resolved') }}
    where not is_closed and is_defined
),

furthest as (
    select
        opportunity_id,
        max(case when not is_closed then stage_order end) as furthest_open_stage_order
    from visits
    group by opportunity_id
),

deals as (
    select
        opportunities.opportunity_id,
        cast({{ dbt.date_trunc('month', 'opportunities.created_date') }} as date) as cohort_month,
        opportunities.is_won,
        opportunities.status = 'lost' as is_lost,
        furthest.furthest_open_stage_order
    from opportunities
    inner join furthest on opportunities.opportunity_id = furthest.opportunity_id
),

reached as (
    select
        deals.cohort_month,
        stages.stage_name,
        stages.stage_order,
        deals.opportunity_id,
        deals.is_won,
        deals.is_lost,
        deals.furthest_open_stage_order > stages.stage_order or deals.is_won as has_advanced,
        deals.furthest_open_stage_order = stages.stage_order and deals.is_lost as is_lost_here
    from deals
    inner join stages
        on deals.furthest_open_stage_order >= stages.stage_order or deals.is_won
),

days_in_stage as (
    select
        cast({{ dbt.date_trunc('month', 'opportunities.created_date') }} as date) as cohort_month,
        visits.stage_name,
        {{ median_sql('visits.days_in_stage') }} as median_days_in_stage
    from visits
    inner join opportunities on visits.opportunity_id = opportunities.opportunity_id
    where not visits.is_current and not visits.is_closed
    group by cast({{ dbt.date_trunc('month', 'opportunities.created_date') }} as date), visits.stage_name
),

counted as (
    select
        cohort_month,
        stage_name,
        stage_order,
        count(*) as entered_count,
        sum(case when has_advanced then 1 else 0 end) as advanced_count,
        sum(case when is_won then 1 else 0 end) as won_count,
        sum(case when is_lost_here then 1 else 0 end) as lost_count
    from reached
    group by cohort_month, stage_name, stage_order
)

select
    counted.cohort_month,
    counted.stage_name,
    cast(counted.stage_order as integer) as stage_order,
    cast(counted.entered_count as integer) as entered_count,
    cast(counted.advanced_count as integer) as advanced_count,
    cast(counted.won_count as integer) as won_count,
    cast(counted.lost_count as integer) as lost_count,
    cast({{ safe_ratio('counted.advanced_count', 'counted.entered_count') }} as double) as conversion_rate,
    cast(days_in_stage.median_days_in_stage as double) as median_days_in_stage
from counted
left join days_in_stage
    on counted.cohort_month = days_in_stage.cohort_month and counted.stage_name = days_in_stage.stage_name
