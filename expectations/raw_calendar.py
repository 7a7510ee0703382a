"""Suites on the calendar exports as loaded: event occurrences after recurrence expansion, and their attendees.

The columns are the calendar reader's own (`ingestion/ics.py`), so they are stated here.
"""

from __future__ import annotations

from expectations.raw_common import RawTable

EVENT_COLUMNS = {
    "uid": "varchar",
    "recurrence_id": "timestamptz",
    "sequence": "integer",
    "summary": "varchar",
    "location": "varchar",
    "organizer_email": "varchar",
    "status": "varchar",
    "is_all_day": "boolean",
    "is_recurring": "boolean",
    "is_override": "boolean",
    "original_tzid": "varchar",
    "start_at": "timestamptz",
    "end_at": "timestamptz",
    "dtstamp": "timestamptz",
    "last_modified": "timestamptz",
    "mailbox": "varchar",
}
ATTENDEE_COLUMNS = {
    "uid": "varchar",
    "recurrence_id": "timestamptz",
    "email": "varchar",
    "common_name": "varchar",
    "role": "varchar",
    "participation_status": "varchar",
}

CALENDAR_EVENTS = RawTable(
    "calendar_events",
    ("uid", "recurrence_id", "mailbox"),
    columns=EVENT_COLUMNS,
    required={"uid": 1.0, "start_at": 1.0, "end_at": 1.0, "mailbox": 1.0, "organizer_email": 0.95},
    value_sets={"status": ("confirmed", "tentative", "cancelled")},
    freshness_of="calendar",
)
CALENDAR_ATTENDEES = RawTable(
    "calendar_attendees",
    ("uid", "recurrence_id", "email"),
    columns=ATTENDEE_COLUMNS,
    required={"uid": 1.0, "email": 0.99},
    volume=False,  # the ledger counts events per calendar file, not attendees
)
TABLES = (CALENDAR_EVENTS, CALENDAR_ATTENDEES)
