"""Suites on the activity marts: what a row rule cannot judge.

Row rules on the marts (keys, ranges, a call's talk time within its duration, the rep every customer-facing
activity needs) are dbt tests in `dbt_project/models/marts/`; here is the share of activities linked to a deal, an
aggregate that warns when the linking breaks.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.core import WARN, TableSuite, expect, table_batch

fct_activity = TableSuite(
    asset=("marts", "fct_activity"),
    description="Most activities are attributed to a deal.",
    batches=(
        table_batch(
            "marts.fct_activity",
            ["activity_id", "activity_type", "source_system"],
            [
                expect(
                    "attributed_share",
                    # a share is an aggregate: as a row rule with `mostly`, GX would list every unattributed row
                    gxe.ExpectColumnMeanToBeBetween,
                    "At least half of the activities are attributed to a deal (warns when the linking breaks).",
                    severity=WARN,
                    column="is_attributed",
                    min_value=0.5,
                ),
            ],
            derived={"is_attributed": "cast(attribution_rule <> 'unattributed' as integer)"},
        ),
    ),
)

SUITES = (fct_activity,)
