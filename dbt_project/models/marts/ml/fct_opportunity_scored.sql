{#- One row per open opportunity as of the as-of date: its latest win probability beside the CRM's, the expected
    value each implies, and the factors that moved the model. ML-weighted pipeline = sum of
    ml_weighted_amount_reporting; CRM-weighted = sum of crm_weighted_amount_reporting. -#}
with

opportunities as (
    select * from {{ ref('fct_opportunity') }}
    where status = 'open'
),

scores as (
    select * from {{ ref('stg_ml__win_probabilities') }}
),

latest_scores as (
    -- the latest scoring date of each deal, on or before the as-of date
    select *
    from (
        select
            scores.*,
            row_number() over (partition by opportunity_id order by scored_as_of_date desc) as recency
        from scores
    ) as ranked
    where recency = 1
)

select
    -- ids
    opportunities.opportunity_id,
    opportunities.owner_id,
    opportunities.team_id,
    opportunities.territory_id,
    latest_scores.model_version,

    -- attributes
    opportunities.stage_name,
    opportunities.forecast_category,
    opportunities.opportunity_type,
    opportunities.segment,
    latest_scores.model_kind,
    latest_scores.top_factors_up,
    latest_scores.top_factors_down,

    -- money
    opportunities.reporting_currency,
    opportunities.amount_reporting,
    opportunities.probability as crm_probability,
    opportunities.weighted_amount_reporting as crm_weighted_amount_reporting,
    latest_scores.p_win,
    cast(opportunities.amount_reporting * latest_scores.p_win as decimal(18, 2)) as ml_weighted_amount_reporting,

    -- dates
    opportunities.close_date,
    latest_scores.scored_as_of_date,
    latest_scores.training_cutoff,

    -- flags
    opportunities.is_pipeline_eligible
from opportunities
left join latest_scores on opportunities.opportunity_id = latest_scores.opportunity_id
