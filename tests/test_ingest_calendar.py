"""The calendar reader: the fast reader agrees with icalendar + recurring-ical-events, and bad input is set aside."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import icalendar
import pandas as pd
import pytest

from ingestion.ics import (
    ATTENDEE_SCHEMA,
    OCCURRENCE_SCHEMA,
    CalendarFileResult,
    Window,
    expand_files,
    read_calendar_file,
)

WINDOW = Window(dt.datetime(2023, 1, 1, tzinfo=dt.UTC), dt.datetime(2028, 1, 1, tzinfo=dt.UTC))


def calendar_files(world: Path) -> list[Path]:
    return sorted((world / "landing" / "calendar").glob("*/*.ics"))


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


def write_calendar(folder: Path, *events: str, timezones: str = "", name: str = "alice.ics") -> Path:
    """A VCALENDAR around the given VEVENT texts, written with CRLF line ends as RFC 5545 asks."""
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tests//EN", "X-WR-CALNAME:alice@example.com"]
    parts += [textwrap.dedent(block).strip() for block in (timezones, *events) if block]
    text = "\n".join(parts + ["END:VCALENDAR"]).replace("\n", "\r\n") + "\r\n"
    path = folder / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def line_of(path: Path, text: str) -> int:
    """1-based number of the first physical line that is exactly `text`."""
    return path.read_bytes().decode("utf-8").split("\r\n").index(text) + 1


@pytest.fixture(params=[True, False], ids=["fast", "reference"])
def fast(request: pytest.FixtureRequest) -> bool:
    return request.param


def read(path: Path, fast: bool, *, parser: str | None = None) -> CalendarFileResult:
    """Read with one reader and check that it is the reader that produced the rows."""
    result = read_calendar_file(path, WINDOW, fast=fast)
    assert result.parser == (parser or ("fast" if fast else "icalendar"))
    assert result.occurrences.schema == OCCURRENCE_SCHEMA and result.attendees.schema == ATTENDEE_SCHEMA
    return result


def assert_same_result(fast: CalendarFileResult, reference: CalendarFileResult) -> None:
    where = str(fast.path)
    assert fast.rejected == reference.rejected, where
    assert (fast.events_read, fast.events_loaded) == (reference.events_read, reference.events_loaded), where
    assert fast.quarantined == reference.quarantined, where
    assert fast.occurrences.equals(reference.occurrences), where
    assert fast.attendees.equals(reference.attendees), where


WEEKLY_IN_NEW_YORK = """
    BEGIN:VEVENT
    UID:weekly@example.com
    DTSTAMP:20240220T120000Z
    SEQUENCE:2
    DTSTART;TZID=America/New_York:20240301T090000
    DTEND;TZID=America/New_York:20240301T093000
    RRULE:FREQ=WEEKLY;COUNT=3
    SUMMARY:Pipeline review\\, weekly
    STATUS:CONFIRMED
    ORGANIZER;CN=Alice:mailto:Alice@Example.com
    ATTENDEE;CN="Lee, Bo";ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:BO@example.com
    ATTENDEE;CN=Cy:mailto:cy@example.com
    END:VEVENT
"""


# ---------------------------------------------------------------------------------------------------------- agreement


@pytest.mark.slow
@pytest.mark.parametrize("world_fixture", ["tiny_world", "tiny_faulty_world"])
def test_the_fast_reader_gives_the_reference_rows_for_every_file_of_a_world(
    world_fixture: str, request: pytest.FixtureRequest
) -> None:
    world: Path = request.getfixturevalue(world_fixture)
    files = calendar_files(world)
    assert len(files) > 100
    for path in files:
        fast_result = read_calendar_file(path, WINDOW)
        reference_result = read_calendar_file(path, WINDOW, fast=False)
        assert fast_result.parser == "fast", f"{path} fell back to the reference reader"
        assert reference_result.parser == "icalendar"
        assert_same_result(fast_result, reference_result)


EDGE_CASES = [
    # monthly on the first Monday and the last Friday, an RDATE and a date EXDATE on a timed series
    """
    BEGIN:VEVENT
    UID:monthly@x
    DTSTART;TZID=Europe/Berlin:20240105T170000
    DURATION:PT45M
    RRULE:FREQ=MONTHLY;BYDAY=1MO,-1FR;UNTIL=20241231T230000Z
    RDATE;TZID=Europe/Berlin:20240320T080000
    EXDATE;VALUE=DATE:20240405
    END:VEVENT
    """,
    # an override moved out of the window, one moved into it, and one whose master is not in the file
    """
    BEGIN:VEVENT
    UID:daily@x
    DTSTART:20240226T233000Z
    DTEND:20240227T003000Z
    RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=12
    END:VEVENT
    """,
    """
    BEGIN:VEVENT
    UID:daily@x
    RECURRENCE-ID:20240301T233000Z
    DTSTART:20250301T233000Z
    DTEND:20250302T003000Z
    END:VEVENT
    """,
    """
    BEGIN:VEVENT
    UID:daily@x
    RECURRENCE-ID:20240228T233000Z
    DTSTART:20240305T090000Z
    END:VEVENT
    """,
    """
    BEGIN:VEVENT
    UID:orphan@x
    RECURRENCE-ID;TZID=Asia/Kolkata:20240310T100000
    DTSTART;TZID=Asia/Kolkata:20240311T100000
    DTEND;TZID=Asia/Kolkata:20240311T110000
    END:VEVENT
    """,
    # an all-day series every other week until a date, and a meeting in the hour repeated when DST ends
    """
    BEGIN:VEVENT
    UID:offsite@x
    DTSTART;VALUE=DATE:20240227
    DTEND;VALUE=DATE:20240228
    RRULE:FREQ=WEEKLY;INTERVAL=2;UNTIL=20240409
    END:VEVENT
    """,
    """
    BEGIN:VEVENT
    UID:fallback-hour@x
    DTSTART;TZID=America/Chicago:20241103T013000
    DTEND;TZID=America/Chicago:20241103T023000
    END:VEVENT
    """,
]


@pytest.mark.parametrize(
    "window",
    [WINDOW, Window(utc(2024, 2, 28), utc(2024, 3, 11, 5)), Window(utc(2024, 3, 1, 0, 15), utc(2024, 3, 1, 0, 15))],
    ids=["five years", "two weeks", "an instant"],
)
def test_the_fast_reader_gives_the_reference_rows_for_recurrence_edge_cases(tmp_path: Path, window: Window) -> None:
    path = write_calendar(tmp_path, *EDGE_CASES)
    fast_result = read_calendar_file(path, window)
    assert fast_result.parser == "fast"
    assert fast_result.occurrences.num_rows > 0
    assert_same_result(fast_result, read_calendar_file(path, window, fast=False))


def test_the_latest_export_of_each_uid_expands_to_the_simulator_truth(tiny_world: Path) -> None:
    latest: dict[str, set[tuple[str, str]]] = {}
    for path in calendar_files(tiny_world):  # drop folders sort by date: a later export replaces an earlier one
        exported = {str(event["UID"]) for event in icalendar.Calendar.from_ical(path.read_bytes()).walk("VEVENT")}
        found: dict[str, set[tuple[str, str]]] = {uid: set() for uid in exported}
        for row in read_calendar_file(path, WINDOW).occurrences.select(["uid", "start_at"]).to_pylist():
            found[row["uid"]].add((row["uid"], row["start_at"].strftime("%Y-%m-%dT%H:%M:%SZ")))
        latest.update(found)
    truth = pd.read_csv(tiny_world / "truth/calendar_occurrences.csv", dtype=str, keep_default_na=False)
    assert len(truth) > 1000
    assert set().union(*latest.values()) == set(zip(truth.uid, truth.start_at, strict=True))


# ---------------------------------------------------------------------------------------------------------- behaviour


def test_a_weekly_meeting_keeps_its_local_time_across_the_change_to_daylight_saving(tmp_path: Path, fast: bool) -> None:
    result = read(write_calendar(tmp_path, WEEKLY_IN_NEW_YORK), fast)
    rows = result.occurrences.to_pylist()
    assert [row["start_at"] for row in rows] == [utc(2024, 3, 1, 14), utc(2024, 3, 8, 14), utc(2024, 3, 15, 13)]
    assert [row["end_at"] - row["start_at"] for row in rows] == [dt.timedelta(minutes=30)] * 3
    assert [row["recurrence_id"] for row in rows] == [row["start_at"] for row in rows]
    first = rows[0]
    assert first["uid"] == "weekly@example.com" and first["summary"] == "Pipeline review, weekly"
    assert (first["organizer_email"], first["status"], first["sequence"]) == ("alice@example.com", "confirmed", 2)
    assert (first["original_tzid"], first["mailbox"], first["dtstamp"]) == (
        "America/New_York",
        "alice@example.com",
        utc(2024, 2, 20, 12),
    )
    assert first["is_recurring"] and not first["is_override"] and not first["is_all_day"]


def test_attendees_are_one_row_per_attendee_of_each_event_with_rfc_defaults(tmp_path: Path, fast: bool) -> None:
    result = read(write_calendar(tmp_path, WEEKLY_IN_NEW_YORK), fast)
    assert result.attendees.to_pylist() == [
        {
            "record_number": 1,
            "uid": "weekly@example.com",
            "recurrence_id": None,
            "email": "bo@example.com",
            "common_name": "Lee, Bo",
            "role": "REQ-PARTICIPANT",
            "participation_status": "ACCEPTED",
        },
        {
            "record_number": 1,
            "uid": "weekly@example.com",
            "recurrence_id": None,
            "email": "cy@example.com",
            "common_name": "Cy",
            "role": "REQ-PARTICIPANT",
            "participation_status": "NEEDS-ACTION",
        },
    ]


def test_an_exdate_removes_the_occurrence_it_names(tmp_path: Path, fast: bool) -> None:
    skipped = WEEKLY_IN_NEW_YORK.replace("RRULE:", "EXDATE;TZID=America/New_York:20240308T090000\n    RRULE:")
    rows = read(write_calendar(tmp_path, skipped), fast).occurrences.to_pylist()
    assert [row["start_at"] for row in rows] == [utc(2024, 3, 1, 14), utc(2024, 3, 15, 13)]


MOVED = """
    BEGIN:VEVENT
    UID:weekly@example.com
    DTSTAMP:20240220T120000Z
    SEQUENCE:3
    RECURRENCE-ID;TZID=America/New_York:20240308T090000
    DTSTART;TZID=America/New_York:20240308T113000
    DTEND;TZID=America/New_York:20240308T120000
    SUMMARY:Pipeline review (moved)
    STATUS:{status}
    ATTENDEE;PARTSTAT=DECLINED:mailto:cy@example.com
    END:VEVENT
"""


def test_a_recurrence_id_override_moves_the_occurrence_it_replaces(tmp_path: Path, fast: bool) -> None:
    path = write_calendar(tmp_path, WEEKLY_IN_NEW_YORK, MOVED.format(status="TENTATIVE"))
    result = read(path, fast)
    rows = result.occurrences.to_pylist()
    assert [(row["start_at"], row["is_override"]) for row in rows] == [
        (utc(2024, 3, 1, 14), False),
        (utc(2024, 3, 15, 13), False),
        (utc(2024, 3, 8, 16, 30), True),
    ]
    moved = rows[2]
    assert (moved["record_number"], moved["line"]) == (2, line_of(path, "BEGIN:VEVENT") + 13)
    assert moved["recurrence_id"] == utc(2024, 3, 8, 14)
    assert (moved["summary"], moved["status"], moved["sequence"]) == ("Pipeline review (moved)", "tentative", 3)
    declined = [row for row in result.attendees.to_pylist() if row["record_number"] == 2]
    assert [(row["email"], row["recurrence_id"], row["participation_status"]) for row in declined] == [
        ("cy@example.com", utc(2024, 3, 8, 14), "DECLINED")
    ]


def test_a_cancelled_override_is_kept_and_marked_cancelled(tmp_path: Path, fast: bool) -> None:
    path = write_calendar(tmp_path, WEEKLY_IN_NEW_YORK, MOVED.format(status="CANCELLED"))
    rows = read(path, fast).occurrences.to_pylist()
    assert [(row["start_at"], row["status"]) for row in rows] == [
        (utc(2024, 3, 1, 14), "confirmed"),
        (utc(2024, 3, 15, 13), "confirmed"),
        (utc(2024, 3, 8, 16, 30), "cancelled"),
    ]


def test_a_cancelled_single_meeting_is_kept_and_marked_cancelled(tmp_path: Path, fast: bool) -> None:
    cancelled = """
        BEGIN:VEVENT
        UID:call@example.com
        DTSTAMP:20240220T120000Z
        DTSTART:20240305T150000Z
        DTEND:20240305T153000Z
        STATUS:CANCELLED
        END:VEVENT
    """
    rows = read(write_calendar(tmp_path, cancelled), fast).occurrences.to_pylist()
    assert [(row["start_at"], row["end_at"], row["status"]) for row in rows] == [
        (utc(2024, 3, 5, 15), utc(2024, 3, 5, 15, 30), "cancelled")
    ]
    assert rows[0]["original_tzid"] == "UTC" and rows[0]["recurrence_id"] is None and not rows[0]["is_recurring"]


def test_an_all_day_event_runs_from_midnight_utc_to_the_exclusive_end_date(tmp_path: Path, fast: bool) -> None:
    all_day = """
        BEGIN:VEVENT
        UID:offsite@example.com
        DTSTAMP:20240220T120000Z
        DTSTART;VALUE=DATE:20240312
        DTEND;VALUE=DATE:20240314
        SUMMARY:Customer offsite
        TRANSP:TRANSPARENT
        END:VEVENT
    """
    rows = read(write_calendar(tmp_path, all_day), fast).occurrences.to_pylist()
    assert [(row["start_at"], row["end_at"]) for row in rows] == [(utc(2024, 3, 12), utc(2024, 3, 14))]
    assert rows[0]["is_all_day"] and rows[0]["original_tzid"] is None


def test_duration_or_its_rfc_default_gives_the_end_when_there_is_no_dtend(tmp_path: Path, fast: bool) -> None:
    events = [
        "BEGIN:VEVENT\nUID:a@x\nDTSTART:20240305T150000Z\nDURATION:PT1H15M\nEND:VEVENT",
        "BEGIN:VEVENT\nUID:b@x\nDTSTART;TZID=Europe/Berlin:20240305T090000\nEND:VEVENT",
        "BEGIN:VEVENT\nUID:c@x\nDTSTART;VALUE=DATE:20240305\nEND:VEVENT",
    ]
    rows = read(write_calendar(tmp_path, *events), fast).occurrences.to_pylist()
    assert [(row["uid"], row["start_at"], row["end_at"]) for row in rows] == [
        ("a@x", utc(2024, 3, 5, 15), utc(2024, 3, 5, 16, 15)),
        ("b@x", utc(2024, 3, 5, 8), utc(2024, 3, 5, 8)),
        ("c@x", utc(2024, 3, 5), utc(2024, 3, 6)),
    ]


def test_a_time_zone_that_is_not_an_iana_name_goes_to_the_reference_reader(tmp_path: Path, fast: bool) -> None:
    custom_zone = """
        BEGIN:VTIMEZONE
        TZID:Custom Zone
        BEGIN:STANDARD
        DTSTART:19700101T000000
        TZOFFSETFROM:+0530
        TZOFFSETTO:+0530
        TZNAME:CZT
        END:STANDARD
        END:VTIMEZONE
    """
    meeting = """
        BEGIN:VEVENT
        UID:custom@example.com
        DTSTAMP:20240220T120000Z
        DTSTART;TZID=Custom Zone:20240305T090000
        DTEND;TZID=Custom Zone:20240305T100000
        RRULE:FREQ=DAILY;COUNT=2
        END:VEVENT
    """
    result = read(write_calendar(tmp_path, meeting, timezones=custom_zone), fast, parser="icalendar")
    rows = result.occurrences.to_pylist()
    assert [row["start_at"] for row in rows] == [utc(2024, 3, 5, 3, 30), utc(2024, 3, 6, 3, 30)]
    assert rows[0]["original_tzid"] == "Custom Zone"


# ---------------------------------------------------------------------------------------------------------- bad input


def test_a_floating_dtstart_is_quarantined_because_it_has_no_time_zone(tmp_path: Path, fast: bool) -> None:
    floating = "BEGIN:VEVENT\nUID:floating@x\nDTSTART:20240105T160000\nDTEND:20240105T170000\nEND:VEVENT"
    path = write_calendar(tmp_path, WEEKLY_IN_NEW_YORK, floating)
    result = read(path, fast)
    assert (result.events_read, result.events_loaded) == (2, 1)
    [event] = result.quarantined
    assert (event.record_number, event.line) == (2, line_of(path, "UID:floating@x") - 1)
    assert event.reason == "DTSTART 20240105T160000 has no time zone (floating time), so it cannot be placed in UTC"
    assert event.raw_text.splitlines()[0] == "BEGIN:VEVENT" and event.raw_text.splitlines()[-1] == "END:VEVENT"
    assert set(result.occurrences.column("uid").to_pylist()) == {"weekly@example.com"}


def test_a_bad_dtstart_value_is_quarantined_naming_the_value_and_the_other_events_load(
    tmp_path: Path, fast: bool
) -> None:
    broken = "BEGIN:VEVENT\nUID:broken@x\nDTSTART;TZID=Europe/London:2024-13-45T99\nEND:VEVENT"
    path = write_calendar(tmp_path, broken, WEEKLY_IN_NEW_YORK)
    result = read(path, fast)
    [event] = result.quarantined
    assert (event.record_number, event.line) == (1, line_of(path, "UID:broken@x") - 1)
    assert event.reason == "DTSTART '2024-13-45T99' is not a valid date-time"
    assert result.occurrences.num_rows == 3 and set(result.occurrences.column("record_number").to_pylist()) == {2}


def test_a_vevent_never_closed_rejects_the_file_naming_its_line(tmp_path: Path, fast: bool) -> None:
    unclosed = "BEGIN:VEVENT\nUID:unclosed@x\nDTSTART:20240105T160000Z"
    path = write_calendar(tmp_path, unclosed, WEEKLY_IN_NEW_YORK)
    result = read(path, fast)
    begin = line_of(path, "UID:unclosed@x") - 1
    assert result.rejected == f"BEGIN:VEVENT at line {begin} is never closed by END:VEVENT"
    assert (result.events_read, result.occurrences.num_rows, result.attendees.num_rows) == (0, 0, 0)


def test_an_empty_file_is_rejected(tmp_path: Path, fast: bool) -> None:
    path = tmp_path / "empty.ics"
    path.write_bytes(b"")
    assert read(path, fast).rejected == "file is empty"


def test_a_file_that_is_not_utf8_is_rejected_naming_the_byte_and_line(tmp_path: Path, fast: bool) -> None:
    path = write_calendar(tmp_path, WEEKLY_IN_NEW_YORK)
    path.write_bytes(path.read_bytes().replace(b"Pipeline", b"Pip\xe9line"))
    assert read(path, fast).rejected == "file is not valid UTF-8: byte 0xe9 at line 12 cannot be decoded"


def test_a_file_that_is_not_icalendar_is_rejected(tmp_path: Path, fast: bool) -> None:
    path = tmp_path / "notes.ics"
    path.write_text("Subject,Start\nPipeline review,2024-03-01\n", encoding="utf-8")
    assert read(path, fast).rejected == "not an iCalendar file: line 1 is 'Subject,Start', not BEGIN:VCALENDAR"


def test_the_planted_calendar_faults_are_quarantined_or_rejected_and_nothing_else(tiny_faulty_world: Path) -> None:
    manifest = pd.read_csv(tiny_faulty_world / "truth/faults.csv", dtype=str, keep_default_na=False)
    faults = manifest[manifest.source == "calendar"]
    assert set(faults.fault_type) == {"broken_vevent", "timestamp_without_zone"}
    landing = tiny_faulty_world / "landing"
    results = {
        str(result.path.relative_to(landing)): result
        for result in expand_files(calendar_files(tiny_faulty_world), WINDOW)
    }

    def is_unclosed(fault: pd.Series) -> bool:  # the manifest gives the BEGIN:VEVENT line of an unclosed event
        lines = (landing / fault.file).read_bytes().decode("utf-8").split("\r\n")
        return lines[int(fault.line) - 1] == "BEGIN:VEVENT"

    unclosed = faults[faults.apply(is_unclosed, axis=1)]
    assert len(unclosed), "the tiny faulty world has an unclosed VEVENT"
    rejected = {name: result.rejected for name, result in results.items() if result.rejected}
    assert rejected == {
        fault.file: f"BEGIN:VEVENT at line {fault.line} is never closed by END:VEVENT"
        for fault in unclosed.itertuples()
    }

    expected = {
        (fault.file, fault.record_id, int(fault.line)) for fault in faults.itertuples() if fault.file not in rejected
    }
    found = set()
    for name, result in results.items():
        for event in result.quarantined:
            unfolded = event.raw_text.replace("\n ", "")
            uid = next(line[4:] for line in unfolded.splitlines() if line.startswith("UID:"))
            fault_line = next(line for file, record, line in expected if (file, record) == (name, uid))
            assert event.line <= fault_line < event.line + len(event.raw_text.splitlines())
            found.add((name, uid, fault_line))
    assert found == expected


def test_expanding_on_two_workers_gives_the_one_worker_results_in_input_order(tiny_faulty_world: Path) -> None:
    files = calendar_files(tiny_faulty_world)[::-1]  # not in any order the workers could guess
    one = list(expand_files(files, WINDOW, workers=1))
    two = list(expand_files(files, WINDOW, workers=2))
    assert [result.path for result in two] == files
    for single, parallel in zip(one, two, strict=True):
        assert single.parser == parallel.parser
        assert_same_result(parallel, single)
