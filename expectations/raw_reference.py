"""Suites on the reference files: FX rates, quotas, territories and compensation plans.

Reference files are replaced rather than appended, so their volume is not judged; the FX rates' freshness stands
for the source's.
"""

from __future__ import annotations

from expectations.raw_common import RawTable

TABLES = (
    RawTable("fx_rates", ("rate_date", "from_currency", "to_currency"), volume=False, freshness_of="reference"),
    RawTable("quotas", ("quota_id",), volume=False),
    RawTable("territories", ("territory_id",), volume=False),
    RawTable("compensation_plans", ("plan_id",), volume=False),
)
