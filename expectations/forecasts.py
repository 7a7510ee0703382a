"""Suites on the forecast tables finance reads, written by the ML assets (`ml/forecast.py`): intervals ordered
p10 <= p50 <= p90, no negative amount, and the levels of the sales hierarchy adding up to the company.

These are ERROR audits: a forecast that fails one is not published (finance keeps the last good publication).
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.core import ERROR, Batch, TableSuite, expect, table_batch

FORECAST_ID = ("forecast_date", "model_version", "period_grain", "period_start", "level", "group_id")
AMOUNTS = ("booked_to_date", "open_pipeline_expected", "new_pipeline_expected", "p10")
# the sum of a level's groups may differ from the company's total by rounding only: 1 part in a million
LEVELS_ADD_UP_TOLERANCE = 1e-6


def forecast_suite(schema: str = "ml", table: str = "revenue_forecast", id_columns=FORECAST_ID) -> TableSuite:
    """Quantiles ordered row by row, no negative amount, and each level's groups summing to the company row."""
    relation = f"{schema}.{table}"
    levels_sql = f"""
select forecast_date, model_version, period_grain, period_start, level, level_total, company_total,
    abs(level_total - company_total) / greatest(abs(company_total), 1) as relative_gap
from (
    select forecast_date, model_version, period_grain, period_start, level,
        sum(booked_to_date + open_pipeline_expected + new_pipeline_expected) as level_total
    from {relation} group by all
) as levels
inner join (
    select forecast_date, model_version, period_grain, period_start,
        booked_to_date + open_pipeline_expected + new_pipeline_expected as company_total
    from {relation} where level = 'company'
) as company using (forecast_date, model_version, period_grain, period_start)
"""
    return TableSuite(
        asset=(schema, table),
        description="Forecast intervals are ordered (p10 <= p50 <= p90), no amount is negative, and every level of "
        "the sales hierarchy adds up to the company.",
        batches=(
            table_batch(
                relation,
                id_columns,
                [
                    expect(
                        "p10_at_most_p50",
                        gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                        "The 10th percentile is not above the median.",
                        column_A="p50",
                        column_B="p10",
                        or_equal=True,
                    ),
                    expect(
                        "p50_at_most_p90",
                        gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                        "The median is not above the 90th percentile.",
                        column_A="p90",
                        column_B="p50",
                        or_equal=True,
                    ),
                    *(
                        expect(
                            f"{amount}_not_negative",
                            gxe.ExpectColumnValuesToBeBetween,
                            f"{amount} is never negative: bookings are not.",
                            column=amount,
                            min_value=0,
                        )
                        for amount in AMOUNTS
                    ),
                ],
            ),
            Batch(
                "levels",
                levels_sql,
                ("forecast_date", "model_version", "period_grain", "period_start", "level"),
                (
                    expect(
                        "levels_add_up",
                        gxe.ExpectColumnValuesToBeBetween,
                        "The groups of every level (team, territory, rep) add up to the company's expected bookings "
                        "(booked + open pipeline + new pipeline), to rounding.",
                        severity=ERROR,
                        column="relative_gap",
                        max_value=LEVELS_ADD_UP_TOLERANCE,
                    ),
                ),
            ),
        ),
    )


SUITES = (forecast_suite(),)
