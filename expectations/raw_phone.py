"""Suites on the phone system's call-detail records (`raw.phone_calls`) and the numbers remembered from them."""

from __future__ import annotations

from expectations.raw_common import DAY_SECONDS, RawTable

DISPOSITIONS = ("answered", "no_answer", "busy", "voicemail", "failed")

PHONE_CALLS = RawTable(
    "phone_calls",
    ("call_id",),
    required={
        "call_id": 1.0,
        "started_at": 1.0,
        "to_number_e164": 0.95,
        "from_number_e164": 0.95,
        "user_email": 0.9,
    },
    value_sets={"direction": ("inbound", "outbound"), "disposition": DISPOSITIONS},
    ranges={"duration_seconds": (0, DAY_SECONDS), "talk_seconds": (0, DAY_SECONDS)},
    not_after_export=("started_at",),
    freshness_of="phone",
)
TABLES = (PHONE_CALLS,)
