"""Suites on the calendar exports as loaded: event occurrences after recurrence expansion, and their attendees.

The calendar reader (`ingestion/ics.py`) owns the columns and quarantines an event without a UID or a start, so
what is left to watch is the share of events with an organizer, the volume and the freshness.
"""

from __future__ import annotations

from expectations.raw_common import RawTable

CALENDAR_EVENTS = RawTable(
    "calendar_events",
    ("uid", "recurrence_id", "mailbox"),
    null_rates={"organizer_email": 0.95},
    freshness_of="calendar",
)
CALENDAR_ATTENDEES = RawTable(
    "calendar_attendees",
    ("uid", "recurrence_id", "email"),
    null_rates={"email": 0.99},
    volume=False,  # the ledger counts events per calendar file, not attendees
)
TABLES = (CALENDAR_EVENTS, CALENDAR_ATTENDEES)
