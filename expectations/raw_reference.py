"""Suites on the reference files: FX rates, quotas, territories and compensation plans."""

from __future__ import annotations

from expectations.raw_common import RawTable
from expectations.raw_crm import CURRENCIES

TABLES = (
    RawTable(
        "fx_rates",
        ("rate_date", "from_currency", "to_currency"),
        required={"rate_date": 1.0, "rate": 1.0},
        value_sets={"from_currency": CURRENCIES, "to_currency": CURRENCIES},
        ranges={"rate": (0.01, 100)},
        volume=False,
        freshness_of="reference",
    ),
    RawTable(
        "quotas",
        ("quota_id",),
        required={"quota_id": 1.0, "owner_id": 1.0, "quota_amount": 1.0},
        value_sets={"quota_type": ("individual", "team"), "currency": CURRENCIES},
        ranges={"quota_amount": (0, None)},
        volume=False,
    ),
    RawTable("territories", ("territory_id",), required={"territory_id": 1.0}, volume=False),
    RawTable(
        "compensation_plans",
        ("plan_id",),
        required={"plan_id": 1.0, "role": 1.0},
        ranges={"commission_rate": (0, 1), "accelerator_multiplier": (1, 5)},
        volume=False,
    ),
)
