"""Suites on the activity marts: every activity, the rep-day counts and the rep performance rollup.

dbt's tests keep the keys, accepted values and relationships; the rules here are the ranges, that customer-facing
activity always has a rep, and that the per-rep counts add up.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.core import WARN, TableSuite, expect, non_negative, rate, table_batch

fct_activity = TableSuite(
    asset=("marts", "fct_activity"),
    description="Every customer-facing activity has a rep; durations are sane.",
    batches=(
        table_batch(
            "marts.fct_activity",
            ["activity_id", "activity_type", "source_system"],
            [
                expect(
                    "customer_facing_activity_has_rep",
                    gxe.ExpectColumnValuesToNotBeNull,
                    "Every customer-facing activity (not internal) is credited to a rep.",
                    # a warning, not a stop: a calendar or call export can land before the CRM users that name its
                    # reps (a team connecting one source at a time), and a mailbox may belong to no CRM user
                    severity=WARN,
                    column="rep_id",
                ),
            ],
            name="customer_facing",
            where="is_customer_facing",
        ),
        table_batch(
            "marts.fct_activity",
            ["activity_id", "activity_type", "source_system"],
            [
                non_negative("duration_seconds", "An activity's duration"),
                non_negative("talk_seconds", "A call's talk time"),
                expect(
                    "talk_within_duration",
                    gxe.ExpectColumnValuesToBeBetween,
                    "A call's talk time is no longer than the call.",
                    column="talk_beyond_call_seconds",
                    max_value=0,
                ),
                expect(
                    "attributed_share",
                    # a share is an aggregate: as a row rule with `mostly`, GX would list every unattributed row
                    gxe.ExpectColumnMeanToBeBetween,
                    "At least half of the activities are attributed to a deal (warns when the linking breaks).",
                    severity="warn",
                    column="is_attributed",
                    min_value=0.5,
                ),
            ],
            derived={
                # a difference judged by a range: GX's column-pair rule is several times slower on large frames
                "talk_beyond_call_seconds": "talk_seconds - duration_seconds",
                "is_attributed": "cast(attribution_rule <> 'unattributed' as integer)",
            },
        ),
    ),
)

fct_rep_daily_activity = TableSuite(
    asset=("marts", "fct_rep_daily_activity"),
    description="Per rep and day: counts non-negative, connects within dials, connect rate in [0, 1].",
    batches=(
        table_batch(
            "marts.fct_rep_daily_activity",
            ["rep_day_id", "rep_id", "activity_date"],
            [
                rate("connect_rate", "A rep-day's connect rate"),
                non_negative("dials", "Dials"),
                non_negative("calls", "Calls"),
                non_negative("talk_seconds", "Talk time"),
                non_negative("meetings_held", "Meetings held"),
                non_negative("emails", "E-mails"),
                expect(
                    "connects_within_dials",
                    gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                    "A rep connects on no more calls than dialled.",
                    column_A="dials",
                    column_B="connects",
                    or_equal=True,
                ),
            ],
        ),
    ),
)

_PERFORMANCE_AMOUNTS = ("bookings_amount", "quota_amount", "average_deal_size", "pipeline_created_amount")

mart_rep_performance = TableSuite(
    asset=("marts", "mart_rep_performance"),
    description="Rep, team and territory performance per month and quarter: rates in [0, 1], amounts non-negative.",
    batches=(
        table_batch(
            "marts.mart_rep_performance",
            ["rep_performance_id", "period_type", "level", "member_id"],
            [
                rate("win_rate_by_count", "Win rate by count"),
                rate("win_rate_by_value", "Win rate by value"),
                non_negative("attainment", "Quota attainment"),
                non_negative("sales_cycle_days", "Sales cycle"),
                *map(non_negative, _PERFORMANCE_AMOUNTS),
                non_negative("bookings_count", "Bookings"),
                non_negative("activity_count", "Activities"),
            ],
        ),
    ),
)

SUITES = (fct_activity, fct_rep_daily_activity, mart_rep_performance)
