"""Suites on the pipeline marts: deals, their stage visits, the daily pipeline, conversion and the summary.

dbt's tests keep the keys, not-nulls, accepted values and relationships of these tables; the rules here are the
ranges, the sequence of stage visits and the reconciliation of the daily pipeline with the deals.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.core import Batch, TableSuite, all_true, expect, non_negative, percent, positive, rate, table_batch

fct_opportunity = TableSuite(
    asset=("marts", "fct_opportunity"),
    description="Amounts, probabilities and durations of each deal.",
    batches=(
        table_batch(
            "marts.fct_opportunity",
            ["opportunity_id"],
            [
                non_negative("amount", "A deal's amount in its currency"),
                non_negative("amount_reporting", "A deal's amount in the reporting currency"),
                non_negative("weighted_amount_reporting", "A deal's weighted amount"),
                percent("probability", "A deal's probability"),
                positive("fx_rate", "The FX rate used"),
                non_negative("age_days", "A deal's age in days"),
                non_negative("days_in_current_stage", "Days in the current stage"),
                non_negative("close_date_push_count", "The number of close-date pushes"),
            ],
        ),
    ),
)

# Each visit against the next visit of the same deal: a negative gap is an overlap, a positive one a hole.
_VISIT_GAPS = """
select
    opportunity_id,
    visit_number,
    epoch(exited_at) - epoch(entered_at) as visit_seconds,
    epoch(lead(entered_at) over (partition by opportunity_id order by visit_number)) - epoch(exited_at)
        as seconds_to_next_visit
from marts.fct_opportunity_stage_history
"""

# Per deal: the visits start when the deal was created, follow each other without a hole, and end in one current
# visit (for a closed deal, the closed stage entered when it closed).
_DEAL_LIFE = """
with visits as (
    select
        opportunity_id,
        entered_at,
        exited_at,
        is_current,
        lead(entered_at) over (partition by opportunity_id order by visit_number) as next_entered_at,
        row_number() over (partition by opportunity_id order by visit_number desc) as from_last
    from marts.fct_opportunity_stage_history
),
per_deal as (
    select
        opportunity_id,
        min(entered_at) as first_entered_at,
        count(*) filter (where next_entered_at > exited_at) as holes,
        count(*) filter (where is_current) as current_visits,
        max(entered_at) filter (where from_last = 1) as last_entered_at,
        bool_or(from_last = 1 and is_current and exited_at is null) as ends_in_current_visit
    from visits
    group by opportunity_id
)
select
    deals.opportunity_id,
    coalesce(
        per_deal.first_entered_at = deals.created_at
        and per_deal.holes = 0
        and per_deal.current_visits = 1
        and per_deal.ends_in_current_visit
        and (not deals.is_closed or per_deal.last_entered_at = deals.closed_at),
        false
    ) as visits_cover_life
from marts.fct_opportunity as deals
left join per_deal on deals.opportunity_id = per_deal.opportunity_id
"""

fct_opportunity_stage_history = TableSuite(
    asset=("marts", "fct_opportunity_stage_history"),
    description="Stage visits of one deal follow each other without overlap and cover the deal's life.",
    requires=("marts.fct_opportunity",),
    batches=(
        Batch(
            "visit_sequence",
            _VISIT_GAPS,
            ("opportunity_id", "visit_number"),
            (
                expect(
                    "stage_visits_do_not_overlap",
                    gxe.ExpectColumnValuesToBeBetween,
                    "A deal's next stage visit starts no earlier than the previous one ends.",
                    column="seconds_to_next_visit",
                    min_value=0,
                ),
                non_negative("visit_seconds", "A stage visit's duration"),
            ),
        ),
        Batch(
            "deal_life",
            _DEAL_LIFE,
            ("opportunity_id",),
            (
                all_true(
                    "stage_visits_cover_deal_life",
                    "visits_cover_life",
                    "A deal's visits start at its creation, leave no hole and end in one current visit "
                    "(entered at the close, for a closed deal).",
                ),
            ),
        ),
    ),
)

# The latest day of the daily pipeline against the open deals of fct_opportunity, deal by deal.
_PIPELINE_RECONCILIATION = """
with latest_day as (
    select opportunity_id, amount_reporting
    from marts.fct_pipeline_daily
    where pipeline_date = (select max(pipeline_date) from marts.fct_pipeline_daily)
),
open_deals as (
    select opportunity_id, amount_reporting from marts.fct_opportunity where not is_closed
)
select
    coalesce(latest_day.opportunity_id, open_deals.opportunity_id) as opportunity_id,
    latest_day.opportunity_id is not null as in_pipeline_daily,
    open_deals.opportunity_id is not null as open_in_fct_opportunity,
    -- a deal without an amount, or in a currency without a rate yet, has no reporting amount on either side
    coalesce(latest_day.amount_reporting is not distinct from open_deals.amount_reporting, false) as reconciled
from latest_day
full outer join open_deals on latest_day.opportunity_id = open_deals.opportunity_id
"""

_DAILY_NUMBERS = ("amount", "amount_reporting", "weighted_amount_reporting", "probability")

fct_pipeline_daily = TableSuite(
    asset=("marts", "fct_pipeline_daily"),
    description="Daily open pipeline: non-negative amounts, and the latest day equals the open deals.",
    requires=("marts.fct_opportunity",),
    batches=(
        table_batch(
            "marts.fct_pipeline_daily",
            ["pipeline_date", "opportunity_id"],
            [
                non_negative("amount", "An open deal's amount on a day"),
                non_negative("amount_reporting", "An open deal's reporting amount on a day"),
                non_negative("weighted_amount_reporting", "An open deal's weighted amount on a day"),
                percent("probability", "An open deal's probability on a day"),
            ],
            derived={column: f"cast({column} as double)" for column in _DAILY_NUMBERS},
        ),
        Batch(
            "latest_day_reconciliation",
            _PIPELINE_RECONCILIATION,
            ("opportunity_id", "in_pipeline_daily", "open_in_fct_opportunity"),
            (
                all_true(
                    "latest_day_reconciles_with_open_deals",
                    "reconciled",
                    "On the latest day, the daily pipeline holds exactly the open deals of fct_opportunity, "
                    "at the same reporting amount.",
                ),
            ),
        ),
    ),
)

fct_stage_conversion = TableSuite(
    asset=("marts", "fct_stage_conversion"),
    description="Conversion rates and counts per cohort month and stage.",
    batches=(
        table_batch(
            "marts.fct_stage_conversion",
            ["cohort_month", "stage_name"],
            [
                rate("conversion_rate", "A stage's conversion"),
                non_negative("entered_count", "Deals entering a stage"),
                non_negative("advanced_count", "Deals advancing from a stage"),
                non_negative("median_days_in_stage", "The median days in a stage"),
                expect(
                    "advanced_at_most_entered",
                    gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                    "No more deals advance from a stage than entered it.",
                    column_A="entered_count",
                    column_B="advanced_count",
                    or_equal=True,
                ),
            ],
        ),
    ),
)

_SUMMARY_AMOUNTS = (
    "open_amount",
    "weighted_amount",
    "created_amount",
    "won_amount",
    "lost_amount",
    "pushed_amount",
    "closing_this_quarter_amount",
    "coverage_numerator_amount",
)

mart_pipeline_summary = TableSuite(
    asset=("marts", "mart_pipeline_summary"),
    description="Pipeline per day, team, territory, stage and forecast category: amounts, counts and coverage.",
    batches=(
        table_batch(
            "marts.mart_pipeline_summary",
            ["pipeline_summary_id"],
            [
                *map(non_negative, _SUMMARY_AMOUNTS),
                non_negative("open_count", "Open deals"),
                non_negative("coverage_ratio", "Pipeline coverage (null once the quota is booked)"),
            ],
        ),
    ),
)

SUITES = (
    fct_opportunity,
    fct_opportunity_stage_history,
    fct_pipeline_daily,
    fct_stage_conversion,
    mart_pipeline_summary,
)
