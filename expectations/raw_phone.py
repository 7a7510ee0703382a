"""Suites on the phone system's call-detail records (`raw.phone_calls`)."""

from __future__ import annotations

from expectations.raw_common import RawTable

PHONE_CALLS = RawTable(
    "phone_calls",
    ("call_id",),
    null_rates={"to_number_e164": 0.95, "from_number_e164": 0.95, "user_email": 0.9},
    freshness_of="phone",
)
TABLES = (PHONE_CALLS,)
