"""Suites on the marts finance reads: bookings, quota attainment and commissions.

dbt's tests keep the keys and relationships; the rules here are non-negative money, bookings that reconcile with
the won deals one by one, and pay that adds up.
"""

from __future__ import annotations

from expectations.core import Batch, TableSuite, all_true, non_negative, positive, table_batch

# Won deals of fct_opportunity against their bookings, deal by deal: one booking per won deal, same amount.
_BOOKINGS_RECONCILIATION = """
with bookings as (
    select opportunity_id, count(*) as bookings, sum(amount_reporting) as amount_reporting
    from marts.fct_bookings
    group by opportunity_id
),
won as (
    select opportunity_id, amount_reporting from marts.fct_opportunity where is_won
)
select
    coalesce(bookings.opportunity_id, won.opportunity_id) as opportunity_id,
    coalesce(bookings.bookings, 0) as bookings,
    won.opportunity_id is not null as won_in_fct_opportunity,
    -- a won deal without an amount (Salesforce allows it) is booked without one: NULL on both sides reconciles
    coalesce(
        bookings.bookings = 1 and bookings.amount_reporting is not distinct from won.amount_reporting, false
    ) as reconciled
from bookings
full outer join won on bookings.opportunity_id = won.opportunity_id
"""

fct_bookings = TableSuite(
    asset=("marts", "fct_bookings"),
    description="Bookings are non-negative and match the won deals of fct_opportunity one for one.",
    requires=("marts.fct_opportunity",),
    batches=(
        table_batch(
            "marts.fct_bookings",
            ["booking_id", "opportunity_id"],
            [
                non_negative("amount", "A booking's amount"),
                non_negative("amount_reporting", "A booking's reporting amount"),
                positive("fx_rate", "The FX rate used"),
            ],
        ),
        Batch(
            "won_deal_reconciliation",
            _BOOKINGS_RECONCILIATION,
            ("opportunity_id", "bookings", "won_in_fct_opportunity"),
            (
                all_true(
                    "bookings_reconcile_with_won_deals",
                    "reconciled",
                    "Every won deal has exactly one booking at its reporting amount, and every booking is a won deal.",
                ),
            ),
        ),
    ),
)

mart_quota_attainment = TableSuite(
    asset=("marts", "mart_quota_attainment"),
    description="Quotas, bookings against them and attainment are non-negative.",
    batches=(
        table_batch(
            "marts.mart_quota_attainment",
            ["quota_id", "owner_id", "fiscal_period"],
            [
                non_negative("quota_amount", "A quota"),
                non_negative("bookings_amount", "Bookings against a quota"),
                non_negative("attainment", "Quota attainment"),
                non_negative("won_deals", "Won deals"),
            ],
        ),
    ),
)

_PAY = ("base_amount", "commission_amount", "accelerator_amount", "total_pay_amount")

mart_commissions = TableSuite(
    asset=("marts", "mart_commissions"),
    description="Pay per rep and quarter: every part non-negative, and the total is the sum of its parts.",
    batches=(
        table_batch(
            "marts.mart_commissions",
            ["commission_id", "rep_id", "fiscal_period"],
            [
                *map(non_negative, _PAY),
                non_negative("attainment", "Quota attainment"),
                all_true("total_pay_adds_up", "adds_up", "Total pay is base + commission + accelerator, to the cent."),
            ],
            derived={
                "adds_up": "abs(total_pay_amount - (base_amount + commission_amount + accelerator_amount)) < 0.01"
            },
        ),
    ),
)

SUITES = (fct_bookings, mart_quota_attainment, mart_commissions)
