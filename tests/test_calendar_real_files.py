"""Calendars in the shapes real clients write them, which icalendar reads: this project reads them too.

Each file is written by hand as Outlook/Exchange, Google or a careless client writes it: Windows time zone names
without VTIMEZONE, several VCALENDARs in one stream, an event without UID, DATE and DATE-TIME values mixed in one
event, a time zone no one can place.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import icalendar
import pytest
import recurring_ical_events

import ingestion.ics
from ingestion.calendar_ingest import CalendarWindowSettings, ingest_calendars
from ingestion.ics import (
    CANNOT_EXPAND,
    INVALID_VALUE,
    MISSING_DTSTART,
    MISSING_UID,
    NO_TIME_ZONE,
    PROBLEM_CODES,
    UNKNOWN_TIME_ZONE,
    CalendarFileResult,
    QuarantinedEvent,
    Window,
    read_calendar_file,
)

WINDOW = Window(dt.datetime(2023, 1, 1, tzinfo=dt.UTC), dt.datetime(2028, 1, 1, tzinfo=dt.UTC))
PYTHON_ERROR_TEXT = ("not supported between", "'datetime.", "Error:", "Traceback", "object has no attribute")

OUTLOOK_WITHOUT_VTIMEZONE = """
BEGIN:VCALENDAR
METHOD:PUBLISH
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
X-WR-CALNAME:ana.ortiz@sales.example.com
BEGIN:VEVENT
DESCRIPTION:\\n
RRULE:FREQ=WEEKLY;COUNT=4;BYDAY=TU
UID:040000008200E00074C5B7101A82E00800000000B0C1D2E3F4A5B601000000000000000
 010000000A1B2C3D4E5F60718293A4B5C6D7E8F90
SUMMARY:Pipeline review
DTSTART;TZID=Pacific Standard Time:20240305T090000
DTEND;TZID=Pacific Standard Time:20240305T100000
CLASS:PUBLIC
PRIORITY:5
DTSTAMP:20240220T120000Z
TRANSP:OPAQUE
STATUS:CONFIRMED
SEQUENCE:0
LOCATION:Microsoft Teams Meeting
X-MICROSOFT-CDO-BUSYSTATUS:BUSY
END:VEVENT
BEGIN:VEVENT
UID:040000008200E00074C5B7101A82E00800000000C1D2E3F4A5B6C701000000000000000
 010000000B2C3D4E5F60718293A4B5C6D7E8F9A01
SUMMARY:Forecast call with Berlin
DTSTART;TZID=W. Europe Standard Time:20240326T170000
DTEND;TZID=W. Europe Standard Time:20240326T173000
RRULE:FREQ=WEEKLY;COUNT=2
DTSTAMP:20240220T120000Z
ORGANIZER;CN=Jonas Weber:mailto:jonas.weber@sales.example.com
ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=Ana Ortiz:mailto:ana.ortiz
 @sales.example.com
END:VEVENT
END:VCALENDAR
"""

GOOGLE_TWO_CALENDARS = """
BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
METHOD:PUBLISH
X-WR-CALNAME:bo.lee@sales.example.com
X-WR-TIMEZONE:America/New_York
BEGIN:VEVENT
DTSTART;TZID=America/New_York:20240304T100000
DTEND;TZID=America/New_York:20240304T103000
RRULE:FREQ=DAILY;COUNT=3
DTSTAMP:20240301T080000Z
UID:5k2q9v1m3n7b8c4x6z0a1s2d3f@google.com
SUMMARY:Stand-up
STATUS:CONFIRMED
END:VEVENT
BEGIN:VEVENT
DTSTART:20240305T150000Z
DTEND:20240305T160000Z
DTSTAMP:20240301T080000Z
UID:7h8j9k0l1z2x3c4v5b6n7m8q9w@google.com
SUMMARY:Demo for Acme
END:VEVENT
END:VCALENDAR
BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
METHOD:PUBLISH
X-WR-CALNAME:Holidays in United States
X-WR-TIMEZONE:America/New_York
BEGIN:VEVENT
DTSTART;VALUE=DATE:20240527
DTEND;VALUE=DATE:20240528
DTSTAMP:20240301T080000Z
UID:20240527_holiday@google.com
SUMMARY:Memorial Day
END:VEVENT
END:VCALENDAR
"""

WITHOUT_UID = """
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Handwritten CRM sync//EN
X-WR-CALNAME:cy.dunn@sales.example.com
BEGIN:VEVENT
DTSTAMP:20240301T080000Z
DTSTART:20240305T150000Z
DTEND:20240305T160000Z
SUMMARY:Call with Initech
ATTENDEE;CN=Peter:mailto:peter@initech.example.org
END:VEVENT
BEGIN:VEVENT
UID:with-a-uid@crm.example.com
DTSTAMP:20240301T080000Z
DTSTART:20240306T150000Z
DTEND:20240306T160000Z
SUMMARY:Call with Globex
END:VEVENT
END:VCALENDAR
"""

MIXED_DATE_AND_DATE_TIME = """
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//macOS 14.3//EN
X-WR-CALNAME:dee.fox@sales.example.com
BEGIN:VEVENT
UID:offsite-days@example.com
DTSTAMP:20240301T080000Z
DTSTART;VALUE=DATE:20240305
DTEND;VALUE=DATE:20240306
RRULE:FREQ=DAILY;UNTIL=20240308T100000Z
SUMMARY:Sales offsite
END:VEVENT
BEGIN:VEVENT
UID:daily-sync@example.com
DTSTAMP:20240301T080000Z
DTSTART;TZID=Europe/Berlin:20240305T090000
DTEND;TZID=Europe/Berlin:20240305T093000
RRULE:FREQ=DAILY;COUNT=4
EXDATE;VALUE=DATE:20240306
SUMMARY:Daily sync
END:VEVENT
BEGIN:VEVENT
UID:quarterly@example.com
DTSTAMP:20240301T080000Z
DTSTART:20240305T140000Z
DTEND:20240305T150000Z
RRULE:FREQ=MONTHLY;UNTIL=20240605
SUMMARY:Monthly business review
END:VEVENT
END:VCALENDAR
"""

RDATE_AT_A_TIME_OF_DAY = """
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Handwritten CRM sync//EN
X-WR-CALNAME:dee.fox@sales.example.com
BEGIN:VEVENT
UID:extra-session@example.com
DTSTAMP:20240301T080000Z
DTSTART;VALUE=DATE:20240305
RRULE:FREQ=WEEKLY;COUNT=2
RDATE:20240320T090000Z,090000
SUMMARY:Training
END:VEVENT
BEGIN:VEVENT
UID:fine@example.com
DTSTAMP:20240301T080000Z
DTSTART:20240305T150000Z
DTEND:20240305T160000Z
END:VEVENT
END:VCALENDAR
"""

ON_MARS = """
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Handwritten CRM sync//EN
X-WR-CALNAME:eve.gray@sales.example.com
BEGIN:VEVENT
UID:olympus@example.com
DTSTAMP:20240301T080000Z
DTSTART;TZID=Mars/Olympus:20240305T090000
DTEND;TZID=Mars/Olympus:20240305T100000
SUMMARY:Site visit
END:VEVENT
BEGIN:VEVENT
UID:earth@example.com
DTSTAMP:20240301T080000Z
DTSTART:20240305T150000Z
DTEND:20240305T160000Z
END:VEVENT
END:VCALENDAR
"""

REAL_FILES = {
    "outlook_without_vtimezone": OUTLOOK_WITHOUT_VTIMEZONE,
    "google_two_calendars": GOOGLE_TWO_CALENDARS,
    "two_calendars_concatenated": "\n".join(
        line for line in GOOGLE_TWO_CALENDARS.splitlines() if not line.startswith("X-WR-TIMEZONE")
    ),
    "without_uid": WITHOUT_UID,
    "mixed_date_and_date_time": MIXED_DATE_AND_DATE_TIME,
    "rdate_at_a_time_of_day": RDATE_AT_A_TIME_OF_DAY,
    "on_mars": ON_MARS,
}


# a line without a colon at calendar level: icalendar raises on the whole file
NOT_A_CONTENT_LINE = GOOGLE_TWO_CALENDARS.replace("METHOD:PUBLISH", "Exported by a sync tool", 1)
CANNOT_READ_DETAIL = (
    "ValueError: Content line could not be parsed into parts: 'Exported by a sync tool': Invalid content line"
)


def write_ics(folder: Path, text: str, name: str = "mailbox.ics") -> Path:
    """The text as a client writes it: CRLF line ends, UTF-8."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text.strip().replace("\n", "\r\n") + "\r\n", encoding="utf-8", newline="")
    return path


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


@pytest.fixture(params=[True, False], ids=["fast", "reference"])
def fast(request: pytest.FixtureRequest) -> bool:
    return request.param


def read(path: Path, fast: bool) -> CalendarFileResult:
    return read_calendar_file(path, WINDOW, fast=fast)


def starts_by_uid(result: CalendarFileResult) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    found: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for row in result.occurrences.to_pylist():
        found.setdefault(row["uid"], []).append((row["start_at"], row["end_at"]))
    return found


def assert_no_python_error_text(event: QuarantinedEvent) -> None:
    for fragment in PYTHON_ERROR_TEXT:
        assert fragment not in event.reason, event.reason


# Regression: real-file defect, the fast reader must keep giving the reference rows on the shapes below too.
@pytest.mark.parametrize("name", REAL_FILES)
def test_the_fast_reader_gives_the_reference_rows_for_files_from_real_clients(tmp_path: Path, name: str) -> None:
    path = write_ics(tmp_path, REAL_FILES[name])
    fast_result, reference = read(path, True), read(path, False)
    assert (fast_result.rejected, reference.rejected) == (None, None)
    assert (fast_result.events_read, fast_result.events_loaded) == (reference.events_read, reference.events_loaded)
    assert fast_result.quarantined == reference.quarantined
    assert fast_result.occurrences.equals(reference.occurrences)
    assert fast_result.attendees.equals(reference.attendees)


# Regression: a Google stream with two BEGIN:VCALENDAR blocks (valid RFC 5545) was rejected whole.
@pytest.mark.parametrize("with_x_wr_timezone", [True, False], ids=["google", "concatenated"])
def test_two_vcalendars_in_one_file_load_all_their_events(tmp_path: Path, fast: bool, with_x_wr_timezone: bool) -> None:
    text = GOOGLE_TWO_CALENDARS
    if not with_x_wr_timezone:
        text = "\n".join(line for line in text.splitlines() if not line.startswith("X-WR-TIMEZONE"))
    result = read(write_ics(tmp_path, text), fast)
    # X-WR-TIMEZONE, which Google writes, is left to the reference reader; otherwise the fast reader reads the stream
    assert result.rejected is None
    assert result.parser == ("fast" if fast and not with_x_wr_timezone else "icalendar")
    assert (result.events_read, result.events_loaded, result.quarantined) == (3, 3, [])
    assert starts_by_uid(result) == {
        "5k2q9v1m3n7b8c4x6z0a1s2d3f@google.com": [
            (utc(2024, 3, 4, 15), utc(2024, 3, 4, 15, 30)),
            (utc(2024, 3, 5, 15), utc(2024, 3, 5, 15, 30)),
            (utc(2024, 3, 6, 15), utc(2024, 3, 6, 15, 30)),
        ],
        "7h8j9k0l1z2x3c4v5b6n7m8q9w@google.com": [(utc(2024, 3, 5, 15), utc(2024, 3, 5, 16))],
        "20240527_holiday@google.com": [(utc(2024, 5, 27), utc(2024, 5, 28))],
    }
    assert set(result.occurrences.column("mailbox").to_pylist()) == {"bo.lee@sales.example.com"}


# Regression: Outlook/Exchange exports name Windows zones ("Pacific Standard Time") without a VTIMEZONE.
def test_a_windows_time_zone_without_vtimezone_gives_the_utc_times_icalendar_gives(tmp_path: Path, fast: bool) -> None:
    path = write_ics(tmp_path / "windows", OUTLOOK_WITHOUT_VTIMEZONE)
    iana_text = OUTLOOK_WITHOUT_VTIMEZONE.replace("Pacific Standard Time", "America/Los_Angeles")
    iana = write_ics(tmp_path / "iana", iana_text.replace("W. Europe Standard Time", "Europe/Berlin"))
    result = read(path, fast)
    assert result.parser == ("fast" if fast else "icalendar") and result.quarantined == []
    assert starts_by_uid(result) == starts_by_uid(read(iana, fast))

    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    expected = sorted(
        (event["DTSTART"].dt.astimezone(dt.UTC), event["DTEND"].dt.astimezone(dt.UTC))
        for event in recurring_ical_events.of(calendar).between(WINDOW.start, WINDOW.end)
    )
    assert sorted(pair for pairs in starts_by_uid(result).values() for pair in pairs) == expected
    # across both daylight-saving changes (US on 10 March, Europe on 31 March): 9:00 is 17:00, then 16:00 UTC
    assert [start for start, _ in sorted(expected)][:2] == [utc(2024, 3, 5, 17), utc(2024, 3, 12, 16)]
    assert set(result.occurrences.column("original_tzid").to_pylist()) == {
        "Pacific Standard Time",
        "W. Europe Standard Time",
    }


# Regression: an unknown TZID was quarantined with a vague reason and no trace of what the library said.
def test_a_time_zone_no_one_can_place_is_quarantined_with_a_sentence_a_code_and_the_library_text_in_detail(
    tmp_path: Path, fast: bool
) -> None:
    assert icalendar.timezone.tzp.timezone("Mars/Olympus") is None  # icalendar cannot place it either
    result = read(write_ics(tmp_path, ON_MARS), fast)
    assert (result.events_read, result.events_loaded) == (2, 1)
    [event] = result.quarantined
    assert (event.code, event.property, event.uid) == (UNKNOWN_TIME_ZONE, "DTSTART", "olympus@example.com")
    assert event.reason.startswith("DTSTART 20240305T090000 names the time zone 'Mars/Olympus', which is neither")
    assert "cannot be placed in UTC" in event.reason
    assert event.detail == "ZoneInfoNotFoundError: 'No time zone found with key Mars/Olympus'"
    assert "ZoneInfoNotFoundError" not in event.reason and "No time zone found" not in event.reason
    assert_no_python_error_text(event)
    assert result.occurrences.column("uid").to_pylist() == ["earth@example.com"]


# Regression: an event without UID loaded with a NULL uid, and the blocking uid check stopped the pipeline.
def test_an_event_without_uid_is_quarantined_and_never_loads_with_a_null_uid(tmp_path: Path, fast: bool) -> None:
    result = read(write_ics(tmp_path, WITHOUT_UID), fast)
    assert (result.events_read, result.events_loaded) == (2, 1)
    [event] = result.quarantined
    assert (event.code, event.property, event.uid, event.record_number) == (MISSING_UID, "UID", None, 1)
    assert event.reason.startswith("VEVENT has no UID, so it cannot be told apart")
    assert None not in result.occurrences.column("uid").to_pylist()
    assert result.occurrences.column("uid").to_pylist() == ["with-a-uid@crm.example.com"]
    assert result.attendees.num_rows == 0  # the attendee of the quarantined event is not loaded either


# Regression: an event without UID reached raw.calendar_events with a NULL uid through the ingest.
def test_an_event_without_uid_never_reaches_raw_calendar_events_and_the_ledger_reconciles(tmp_path: Path) -> None:
    drop = tmp_path / "landing" / "calendar" / "2024-03-01"
    for name, text in REAL_FILES.items():
        write_ics(drop, text, f"{name}.ics")
    write_ics(drop, NOT_A_CONTENT_LINE, "not_a_content_line.ics")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        ingest_calendars(con, tmp_path / "landing", CalendarWindowSettings(workers=1))
        assert con.execute("select count(*) from raw.calendar_events where uid is null").fetchone() == (0,)
        assert con.execute("select count(*) from raw.calendar_attendees where uid is null").fetchone() == (0,)
        ledger = con.execute(
            "select path, status, rows_read, rows_loaded, rows_quarantined from raw.load_ledger "
            "where status = 'loaded' order by path"
        ).fetchall()
        assert len(ledger) == len(REAL_FILES)
        assert all(read_ == loaded + quarantined for _, _, read_, loaded, quarantined in ledger)
        rejected = con.execute("select path, reason, detail from raw.load_ledger where status = 'rejected'").fetchall()
        quarantined = con.execute(
            "select _source_file, record_id, problems, columns, reason, detail from quarantine.calendar_events "
            "order by _source_file"
        ).fetchall()
    assert [row[:4] for row in quarantined] == [
        ("calendar/2024-03-01/on_mars.ics", "olympus@example.com", [UNKNOWN_TIME_ZONE], ["DTSTART"]),
        ("calendar/2024-03-01/rdate_at_a_time_of_day.ics", "extra-session@example.com", [INVALID_VALUE], ["RDATE"]),
        ("calendar/2024-03-01/without_uid.ics", None, [MISSING_UID], ["UID"]),
    ]
    assert quarantined[0][5] == "ZoneInfoNotFoundError: 'No time zone found with key Mars/Olympus'"
    for *_, reason, _ in quarantined:
        assert not any(fragment in reason for fragment in PYTHON_ERROR_TEXT), reason
    [(path, reason, detail)] = rejected
    assert path == "calendar/2024-03-01/not_a_content_line.ics"
    assert reason.startswith("icalendar cannot read the file") and detail == CANNOT_READ_DETAIL


# Regression: a file icalendar could not read was rejected with icalendar's error text as the reason.
def test_a_file_icalendar_cannot_read_is_rejected_with_a_sentence_and_the_library_text_in_detail(
    tmp_path: Path, fast: bool
) -> None:
    result = read(write_ics(tmp_path, NOT_A_CONTENT_LINE), fast)
    assert result.rejected == (
        "icalendar cannot read the file, so none of its events can be loaded; check that it is a whole export"
    )
    assert result.detail == CANNOT_READ_DETAIL


# Regression: events mixing DATE and DATE-TIME (a DATE DTSTART with a DATE-TIME UNTIL, a DATE EXDATE on a timed
# series) must load exactly as recurring-ical-events expands them, never with Python error text as a reason.
def test_an_event_mixing_date_and_date_time_values_loads_as_recurring_ical_events_expands_it(
    tmp_path: Path, fast: bool
) -> None:
    path = write_ics(tmp_path, MIXED_DATE_AND_DATE_TIME)
    result = read(path, fast)
    assert result.rejected is None and result.quarantined == []
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    expected: dict[str, list[dt.datetime]] = {}
    for occurrence in recurring_ical_events.of(calendar).between(WINDOW.start, WINDOW.end):
        start = occurrence["DTSTART"].dt
        start = start.astimezone(dt.UTC) if isinstance(start, dt.datetime) else utc(start.year, start.month, start.day)
        expected.setdefault(str(occurrence["UID"]), []).append(start)
    found = {uid: [start for start, _ in pairs] for uid, pairs in starts_by_uid(result).items()}
    assert found == {uid: sorted(starts) for uid, starts in expected.items()}
    assert len(found["offsite-days@example.com"]) == 4 and len(found["daily-sync@example.com"]) == 3


# Regression: an RDATE written as a time of day made recurring-ical-events fail, and the quarantine reason was
# "'<' not supported between instances of 'datetime.datetime' and 'datetime.time'".
def test_an_rdate_at_a_time_of_day_is_quarantined_with_a_sentence_and_no_python_error_text(
    tmp_path: Path, fast: bool
) -> None:
    result = read(write_ics(tmp_path, RDATE_AT_A_TIME_OF_DAY), fast)
    assert (result.events_read, result.events_loaded) == (2, 1)
    [event] = result.quarantined
    assert (event.code, event.property, event.uid) == (INVALID_VALUE, "RDATE", "extra-session@example.com")
    assert event.reason.startswith("RDATE ") and "is a time of day without a date" in event.reason
    assert_no_python_error_text(event)
    assert result.occurrences.column("uid").to_pylist() == ["fine@example.com"]


# Regression: when recurring-ical-events raised, its error text became the quarantine reason.
def test_a_series_recurring_ical_events_cannot_expand_is_quarantined_with_a_sentence_and_the_error_in_detail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expand = recurring_ical_events.of

    def failing_on_one_series(calendar: icalendar.Calendar, *args: object, **kwargs: object) -> object:
        if any(event.get("UID") == "daily-sync@example.com" for event in calendar.walk("VEVENT")):
            raise TypeError("'<' not supported between instances of 'datetime.datetime' and 'datetime.time'")
        return expand(calendar, *args, **kwargs)

    monkeypatch.setattr(ingestion.ics.recurring_ical_events, "of", failing_on_one_series)
    result = read(write_ics(tmp_path, MIXED_DATE_AND_DATE_TIME), fast=False)
    [event] = result.quarantined
    assert (event.code, event.property, event.uid) == (CANNOT_EXPAND, None, "daily-sync@example.com")
    assert event.reason.startswith("recurring-ical-events cannot expand the events with UID daily-sync@example.com")
    assert event.detail == "TypeError: '<' not supported between instances of 'datetime.datetime' and 'datetime.time'"
    assert_no_python_error_text(event)
    assert set(result.occurrences.column("uid").to_pylist()) == {"offsite-days@example.com", "quarterly@example.com"}


# Regression: calendar_ingest guessed the problem code and property by parsing the reason text.
def test_the_problem_codes_and_properties_come_from_fields_of_the_quarantined_event(tmp_path: Path, fast: bool) -> None:
    events = [
        "BEGIN:VEVENT\nUID:no-start@x\nSUMMARY:Lunch\nEND:VEVENT",
        "BEGIN:VEVENT\nUID:floating@x\nDTSTART:20240305T090000\nEND:VEVENT",
        "BEGIN:VEVENT\nUID:bad-end@x\nDTSTART:20240305T090000Z\nDTEND:20240399T100000Z\nEND:VEVENT",
        "BEGIN:VEVENT\nUID:mars@x\nDTSTART;TZID=Mars/Olympus:20240305T090000\nEND:VEVENT",
        "BEGIN:VEVENT\nDTSTART:20240305T090000Z\nEND:VEVENT",
    ]
    text = "\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tests//EN", *events, "END:VCALENDAR"])
    result = read(write_ics(tmp_path, text), fast)
    found = [(event.code, event.property, event.uid) for event in result.quarantined]
    assert found == [
        (MISSING_DTSTART, "DTSTART", "no-start@x"),
        (NO_TIME_ZONE, "DTSTART", "floating@x"),
        (INVALID_VALUE, "DTEND", "bad-end@x"),
        (UNKNOWN_TIME_ZONE, "DTSTART", "mars@x"),
        (MISSING_UID, "UID", None),
    ]
    assert {event.code for event in result.quarantined} <= set(PROBLEM_CODES)
    [bad_end] = [event for event in result.quarantined if event.code == INVALID_VALUE]
    assert bad_end.detail and "20240399T100000Z" in bad_end.detail  # icalendar's own words, kept apart
    for event in result.quarantined:
        assert_no_python_error_text(event)
