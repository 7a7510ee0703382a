"""Suites on the forecast tables finance reads (written by `ml`, a later issue): intervals ordered p10 <= p50 <= p90.

The ML assets do not exist yet; `forecast_suite` is ready for them and tested on a table of the agreed shape.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.core import TableSuite, expect, table_batch


def forecast_suite(schema: str, table: str, id_columns: tuple[str, ...]) -> TableSuite:
    """Quantiles `p10`, `p50`, `p90` of a forecast table, ordered row by row."""
    return TableSuite(
        asset=(schema, table),
        description="Forecast intervals are ordered: p10 <= p50 <= p90.",
        batches=(
            table_batch(
                f"{schema}.{table}",
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
                ],
            ),
        ),
    )
