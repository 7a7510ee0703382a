"""iCalendar (RFC 5545) exports, one file per mailbox, read into warehouse rows: occurrences in a window, attendees.

Two readers give the same rows. The reference reader is `icalendar` with `recurring-ical-events`: it is the ground
truth and the fallback. It parses about 2,000 events and expands about 2,800 occurrences per second per core, far
from the 20,000 occurrences per second a full reload needs, so the fast reader parses only the properties the
warehouse uses with `str` methods, takes time zones from `zoneinfo` and expands RRULEs with `dateutil`, following
`recurring-ical-events` step by step (wall-clock expansion in the DTSTART zone, inclusive UNTIL in UTC, EXDATE and
RECURRENCE-ID matched on both the UTC and the local time, overlap with the window). Whatever it does not handle
exactly like the reference (a VTIMEZONE whose TZID is not an IANA name, an RRULE part it does not know, DATE and
DATE-TIME values mixed in one event, RANGE=THISANDFUTURE, an RDATE period, an alarm, a line it cannot split) sends the
whole file to the reference reader: it never guesses.
On the demo world (5,155 files, 126,458 occurrences, 2 CPUs, `expand_files` with two workers) the reference reader
gives about 3,500 occurrences per second and the fast reader about 30,000, with no file falling back.

What icalendar reads, both readers read:
- a file may hold several VCALENDARs one after another (RFC 5545 allows it; some clients stream several calendars
  into one export). Each is expanded on its own, so a series is the VEVENTs of one UID within one VCALENDAR; the
  mailbox is the first X-WR-CALNAME of the file, else the file name.
- a TZID without a VTIMEZONE is resolved by icalendar's own lookup (`icalendar.timezone.tzp.timezone`): an IANA
  name, a Windows name such as "W. Europe Standard Time" through icalendar's Windows table, or a vendor-prefixed
  name. The fast reader asks the same function, so both place the event identically.

Both readers share the checks that decide what is bad input, so they agree on it, and each quarantined event carries
a problem `code` and the `property` at fault as fields, a `reason` that is a sentence of ours, and the library's own
error text apart in `detail`: a VEVENT without DTSTART or UID, whose DTSTART, DTEND or RECURRENCE-ID is not a date or
date-time or is a floating time, whose TZID neither icalendar nor the file can place, with an RDATE that is a time of
day, or that recurring-ical-events cannot expand, is quarantined and the rest of the file loads; a file that is
empty, not UTF-8, not iCalendar or structurally broken (a BEGIN:VEVENT never closed) is rejected whole.
"""

from __future__ import annotations

import datetime as dt
import functools
import multiprocessing
import os
import re
import zoneinfo
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import icalendar
import pyarrow as pa
import recurring_ical_events
from dateutil import rrule as dateutil_rrule

FAST, REFERENCE = "fast", "icalendar"

_TIMESTAMP = pa.timestamp("us", tz="UTC")
OCCURRENCE_SCHEMA = pa.schema(
    [
        ("record_number", pa.int32()),
        ("line", pa.int32()),
        ("uid", pa.string()),
        ("recurrence_id", _TIMESTAMP),
        ("sequence", pa.int32()),
        ("summary", pa.string()),
        ("location", pa.string()),
        ("organizer_email", pa.string()),
        ("status", pa.string()),
        ("is_all_day", pa.bool_()),
        ("is_recurring", pa.bool_()),
        ("is_override", pa.bool_()),
        ("original_tzid", pa.string()),
        ("start_at", _TIMESTAMP),
        ("end_at", _TIMESTAMP),
        ("dtstamp", _TIMESTAMP),
        ("last_modified", _TIMESTAMP),
        ("mailbox", pa.string()),
    ]
)
ATTENDEE_SCHEMA = pa.schema(
    [
        ("record_number", pa.int32()),
        ("uid", pa.string()),
        ("recurrence_id", _TIMESTAMP),
        ("email", pa.string()),
        ("common_name", pa.string()),
        ("role", pa.string()),
        ("participation_status", pa.string()),
    ]
)


@dataclass(frozen=True)
class Window:
    """Occurrences overlapping [start, end) are read; both ends are tz-aware (they are compared in UTC)."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window ends must be tz-aware datetimes")
        if self.end < self.start:
            raise ValueError("window ends before it starts")


# What can be wrong with one VEVENT; `QuarantinedEvent.code` is one of these, and the reason is built from it.
MISSING_DTSTART = "missing_dtstart"
MISSING_UID = "missing_uid"
REPEATED_PROPERTY = "repeated_property"
INVALID_VALUE = "invalid_value"
NO_TIME_ZONE = "no_time_zone"  # a floating time: no TZID and no Z
UNKNOWN_TIME_ZONE = "unknown_time_zone"  # a TZID that neither icalendar nor the file's VTIMEZONEs can place
CANNOT_EXPAND = "cannot_expand"  # recurring-ical-events fails on the series
PROBLEM_CODES = (
    MISSING_DTSTART,
    MISSING_UID,
    REPEATED_PROPERTY,
    INVALID_VALUE,
    NO_TIME_ZONE,
    UNKNOWN_TIME_ZONE,
    CANNOT_EXPAND,
)


@dataclass
class QuarantinedEvent:
    """A VEVENT left out of the load: what is wrong as fields, and the reason a person reads."""

    record_number: int  # 1-based index of the VEVENT in the file
    line: int  # 1-based physical line of its BEGIN:VEVENT
    raw_text: str  # its physical lines, BEGIN to END, joined with "\n"
    reason: str  # a sentence of ours, never a library's error text
    code: str  # one of PROBLEM_CODES
    property: str | None  # the property at fault ("DTSTART", "UID", ...); None when it is the whole series
    uid: str | None  # its UID as written, None when it has none
    detail: str | None = None  # the library's own error text behind the reason, for debugging


class _Problem(NamedTuple):
    code: str
    property: str | None
    reason: str
    detail: str | None = None


@dataclass
class CalendarFileResult:
    """What one file gave: occurrence and attendee rows, quarantined events, or why the whole file was rejected."""

    path: Path
    parser: str  # "fast" or "icalendar"
    events_read: int
    events_loaded: int
    quarantined: list[QuarantinedEvent]
    occurrences: pa.Table
    attendees: pa.Table
    rejected: str | None = None
    detail: str | None = None  # the library's own error text behind `rejected`, for debugging


def read_calendar_file(path: Path, window: Window, *, fast: bool = True) -> CalendarFileResult:
    """Occurrences in `window` and attendees of one .ics file; bad events are quarantined, never raised.

    With `fast`, the fast reader is tried first and the file goes to the reference reader when it meets something
    it does not handle; `parser` says which reader produced the rows.
    """
    [result] = _read_chunk([Path(path)], window, fast).results()
    return result


def expand_files(
    paths: Sequence[Path], window: Window, *, workers: int | None = None, fast: bool = True
) -> Iterator[CalendarFileResult]:
    """`read_calendar_file` over many files on `workers` processes, yielding results in the order of `paths`.

    This process is one of the workers: it reads the earliest chunk of paths that no pool process has started, so
    that the second or so that a spawned process needs to import pyarrow and icalendar is not lost. Pool processes
    send back one occurrence and one attendee table per chunk, which the results slice without copying: pickling two
    small tables per file costs more than reading the file. At most a few chunks per worker are in flight, so a large
    world streams through in bounded memory. `workers=1` reads in this process only.
    """
    paths = [Path(path) for path in paths]
    workers = workers or os.cpu_count() or 1
    size = max(1, min(32, len(paths) // (workers * 8)))
    chunks = iter([paths[start : start + size] for start in range(0, len(paths), size)])
    if workers == 1 or len(paths) <= size:
        for chunk in chunks:
            yield from _read_chunk(chunk, window, fast).results()
        return
    context = multiprocessing.get_context("spawn")  # no fork: callers may hold threads (DuckDB, Dagster)
    pool = ProcessPoolExecutor(workers - 1, mp_context=context)
    try:
        in_flight: deque[_Pending] = deque()

        def submit() -> None:
            chunk = next(chunks, None)
            if chunk is not None:
                in_flight.append(_Pending(chunk, pool.submit(_read_chunk, chunk, window, fast)))

        for _ in range(workers * 4):
            submit()
        while in_flight:
            first = in_flight[0]
            if first.done is None and not first.future.done():
                idle = (pending for pending in in_flight if pending.done is None and pending.future.cancel())
                stolen = next(idle, None)
                if stolen is not None:
                    stolen.done = _read_chunk(stolen.chunk, window, fast)
                    continue
            in_flight.popleft()
            submit()
            yield from (first.done or first.future.result()).results()
    finally:
        pool.shutdown(cancel_futures=True)


@dataclass
class _Pending:
    chunk: list[Path]
    future: Future[_Chunk]
    done: _Chunk | None = None  # read by this process after the pool had not started it


@dataclass
class _FileRows:
    """One file's result before its rows become Arrow columns."""

    path: Path
    parser: str
    events_read: int
    quarantined: list[QuarantinedEvent]
    occurrences: list[tuple[object, ...]]
    attendees: list[tuple[object, ...]]
    rejected: str | None = None
    detail: str | None = None


@dataclass
class _Chunk:
    """The results of several files, their rows in one occurrence and one attendee table (cheap to pickle)."""

    files: list[_FileRows]  # with empty row lists
    counts: list[tuple[int, int]]  # occurrence and attendee rows of each file
    occurrences: pa.Table
    attendees: pa.Table

    def results(self) -> list[CalendarFileResult]:
        results, occurrence_offset, attendee_offset = [], 0, 0
        for file, (occurrence_count, attendee_count) in zip(self.files, self.counts, strict=True):
            results.append(
                CalendarFileResult(
                    path=file.path,
                    parser=file.parser,
                    events_read=file.events_read,
                    events_loaded=file.events_read - len(file.quarantined),
                    quarantined=file.quarantined,
                    occurrences=self.occurrences.slice(occurrence_offset, occurrence_count),
                    attendees=self.attendees.slice(attendee_offset, attendee_count),
                    rejected=file.rejected,
                    detail=file.detail,
                )
            )
            occurrence_offset += occurrence_count
            attendee_offset += attendee_count
        return results


def _read_chunk(paths: list[Path], window: Window, fast: bool) -> _Chunk:
    files = [_read_file(path, window, fast) for path in paths]
    occurrences = [row for file in files for row in file.occurrences]
    attendees = [row for file in files for row in file.attendees]
    counts = [(len(file.occurrences), len(file.attendees)) for file in files]
    for file in files:
        file.occurrences, file.attendees = [], []
    return _Chunk(files, counts, _table(occurrences, OCCURRENCE_SCHEMA), _table(attendees, ATTENDEE_SCHEMA))


def _read_file(path: Path, window: Window, fast: bool) -> _FileRows:
    text, problem = _decode(path.read_bytes())
    if problem is not None:
        return _rejected(path, FAST if fast else REFERENCE, problem)
    if fast:
        try:
            return _read_fast(path, text, window)
        except (_Fallback, ArithmeticError, ValueError):  # the last two: dates at the ends of the calendar
            pass
    return _read_reference(path, text, window)


# ---------------------------------------------------------------------------------------------------------------------
# shared by both readers: decoding, structure, reasons, rows


class _Fallback(Exception):
    """The fast reader met something it does not handle exactly like the reference reader."""


class _Quarantine(Exception):
    """One VEVENT cannot be loaded, for `problem`."""

    def __init__(self, problem: _Problem) -> None:
        super().__init__(problem.reason)
        self.problem = problem


def _decode(data: bytes) -> tuple[str, str | None]:
    if not data.strip():
        return "", "file is empty"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return "", f"file is not valid UTF-8: byte 0x{data[error.start]:02x} at line {line} cannot be decoded"
    return text.removeprefix("\ufeff"), None


class _LogicalLine(NamedTuple):
    first: int  # 1-based physical line where it starts
    last: int  # 1-based physical line where it ends
    text: str  # unfolded


def _logical_lines(text: str) -> list[_LogicalLine]:
    """Unfolded content lines as `icalendar` reads them: CRLF or LF ends a line, a leading space or tab continues
    the previous one (across blank lines), blank lines are skipped."""
    lines: list[_LogicalLine] = []
    for number, physical in enumerate(text.split("\n"), start=1):
        physical = physical.removesuffix("\r")
        if physical[:1] in (" ", "\t") and physical and lines:
            previous = lines[-1]
            lines[-1] = _LogicalLine(previous.first, number, previous.text + physical[1:])
        elif physical:
            lines.append(_LogicalLine(number, number, physical))
    return lines


def _begin_or_end(line: str) -> tuple[str, str] | None:
    """("BEGIN" or "END", component name) for a BEGIN/END line, compared without case as icalendar does."""
    name, separator, value = line.partition(":")
    keyword = name.split(";", 1)[0].strip().upper()
    if separator and keyword in ("BEGIN", "END"):
        return keyword, value.strip().upper()
    return None


def _structure_problem(lines: list[_LogicalLine]) -> str | None:
    """Why the components of a file do not nest into VCALENDARs one after another, or None when they do."""
    if not lines:
        return "file is empty"
    first = _begin_or_end(lines[0].text)
    if first != ("BEGIN", "VCALENDAR"):
        return f"not an iCalendar file: line {lines[0].first} is {lines[0].text[:40]!r}, not BEGIN:VCALENDAR"
    stack: list[tuple[str, int]] = []
    closed = False
    for line in lines:
        marker = _begin_or_end(line.text)
        if closed:
            if marker == ("BEGIN", "VCALENDAR"):
                closed = False
                stack.append(("VCALENDAR", line.first))
                continue
            if line.text.split(":", 1)[0].split(";", 1)[0].strip().upper() != "X-COMMENT":
                return f"line {line.first} comes after END:VCALENDAR"
            continue
        if marker is None:
            continue
        keyword, component = marker
        if keyword == "BEGIN":
            if component == "VCALENDAR" and stack:
                return f"BEGIN:VCALENDAR at line {line.first} is inside another component"
            if component == "VEVENT" and any(name == "VEVENT" for name, _ in stack):
                opened = next(number for name, number in reversed(stack) if name == "VEVENT")
                return f"BEGIN:VEVENT at line {opened} is never closed by END:VEVENT"
            stack.append((component, line.first))
            continue
        if not any(name == component for name, _ in stack):
            return f"END:{component} at line {line.first} has no matching BEGIN:{component}"
        name, opened = stack[-1]
        if name != component:
            return f"BEGIN:{name} at line {opened} is never closed by END:{name}"
        stack.pop()
        closed = not stack
    if stack:
        name, opened = stack[-1]
        return f"BEGIN:{name} at line {opened} is never closed by END:{name}"
    return None


class _Span(NamedTuple):
    line: int
    raw_text: str


def _vevent_spans(text: str, lines: list[_LogicalLine]) -> list[_Span]:
    """BEGIN:VEVENT line and raw text of each VEVENT of a structurally sound file, in file order."""
    physical = text.split("\n")
    spans, begin = [], None
    for line in lines:
        marker = _begin_or_end(line.text)
        if marker == ("BEGIN", "VEVENT"):
            begin = line.first
        elif marker == ("END", "VEVENT") and begin is not None:
            raw = "\n".join(p.removesuffix("\r") for p in physical[begin - 1 : line.last])
            spans.append(_Span(begin, raw))
            begin = None
    return spans


def _invalid_value(name: str, value: str, value_type: str | None, detail: str | None = None) -> _Problem:
    kind = "date" if value_type == "DATE" else "date-time"
    return _Problem(INVALID_VALUE, name, f"{name} {value!r} is not a valid {kind}", detail)


def _without_zone(name: str, value: str, tzid: str | None) -> _Problem:
    """A date-time that cannot be placed in UTC: floating, or in a zone no one can place."""
    if not tzid:
        reason = f"{name} {value} has no time zone (floating time), so it cannot be placed in UTC"
        return _Problem(NO_TIME_ZONE, name, reason)
    reason = (
        f"{name} {value} names the time zone {tzid!r}, which is neither a time zone name icalendar knows (IANA or "
        "Windows) nor defined by a VTIMEZONE in the file, so it cannot be placed in UTC; export the calendar with "
        "its time zones or in UTC"
    )
    return _Problem(UNKNOWN_TIME_ZONE, name, reason, _unknown_zone_detail(tzid))


def _unknown_zone_detail(tzid: str) -> str:
    """What zoneinfo says of a TZID icalendar could not place (icalendar itself leaves such a time floating)."""
    try:
        zoneinfo.ZoneInfo(tzid)
    except Exception as error:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError, OSError: all are the answer
        return f"{type(error).__name__}: {error}"
    return f"icalendar.timezone.tzp.timezone({tzid!r}) returned None"


# Why an event without UID is quarantined rather than given an id derived from its content: staging keeps the latest
# export of each UID, and a derived id changes when the meeting is moved or renamed, so every re-export would add
# another meeting instead of replacing it, silently; set aside with its reason, the event stays visible.
_NO_UID = _Problem(
    MISSING_UID,
    "UID",
    "VEVENT has no UID, so it cannot be told apart from other events or matched to itself in later exports; "
    "give it a UID (RFC 5545 requires one) in the calendar client and export again",
)
_NO_DTSTART = _Problem(MISSING_DTSTART, "DTSTART", "VEVENT has no DTSTART, so it cannot be placed in time")


def _cannot_expand(uid: str, error: Exception) -> _Problem:
    reason = (
        f"recurring-ical-events cannot expand the events with UID {uid} into occurrences; check their DTSTART, DTEND, "
        "RRULE, RDATE, EXDATE and RECURRENCE-ID values in the calendar and export again"
    )
    return _Problem(CANNOT_EXPAND, None, reason, f"{type(error).__name__}: {error}")


def _quarantined(number: int, line: int, raw_text: str, problem: _Problem, uid: str | None) -> QuarantinedEvent:
    return QuarantinedEvent(number, line, raw_text, problem.reason, problem.code, problem.property, uid, problem.detail)


def _email(address: str) -> str:
    """Lower-case address without the mailto: scheme."""
    if address[:7].lower() == "mailto:":
        address = address[7:]
    return address.lower()


_EPOCH = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)
_UTC = zoneinfo.ZoneInfo("UTC")


def _micros(utc: dt.datetime) -> int:
    """Microseconds since the epoch of a naive UTC datetime."""
    return (utc - _EPOCH) // _MICROSECOND


class _Fields(NamedTuple):
    """What every occurrence of one VEVENT shares, in OCCURRENCE_SCHEMA terms."""

    record_number: int
    line: int
    uid: str | None
    sequence: int | None
    summary: str | None
    location: str | None
    organizer_email: str | None
    status: str | None
    is_all_day: bool
    is_recurring: bool
    is_override: bool
    original_tzid: str | None
    dtstamp: int | None
    last_modified: int | None


def _row_parts(fields: _Fields, mailbox: str) -> tuple[tuple, tuple, tuple]:
    """The columns of an occurrence row before recurrence_id, between it and start_at, and after end_at."""
    head = (fields.record_number, fields.line, fields.uid)
    body = (
        fields.sequence,
        fields.summary,
        fields.location,
        fields.organizer_email,
        fields.status,
        fields.is_all_day,
        fields.is_recurring,
        fields.is_override,
        fields.original_tzid,
    )
    return head, body, (fields.dtstamp, fields.last_modified, mailbox)


def _occurrence_row(
    fields: _Fields, mailbox: str, recurrence_id: int | None, start_at: int, end_at: int
) -> tuple[object, ...]:
    head, body, tail = _row_parts(fields, mailbox)
    return (*head, recurrence_id, *body, start_at, end_at, *tail)


def _table(rows: list[tuple[object, ...]], schema: pa.Schema) -> pa.Table:
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * len(schema)
    arrays = [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _result(
    path: Path,
    parser: str,
    events_read: int,
    quarantined: list[QuarantinedEvent],
    occurrences: list[tuple[object, ...]],
    attendees: list[tuple[object, ...]],
) -> _FileRows:
    """Rows sorted by (record_number, start_at) and (record_number, email), so that both readers agree row for row."""
    occurrences.sort(key=lambda row: (row[0], row[13], -1 if row[3] is None else row[3]))
    attendees.sort(key=lambda row: (row[0], row[3]))
    quarantined.sort(key=lambda event: event.record_number)
    return _FileRows(path, parser, events_read, quarantined, occurrences, attendees)


def _rejected(path: Path, parser: str, reason: str, detail: str | None = None) -> _FileRows:
    return _FileRows(path, parser, 0, [], [], [], rejected=reason, detail=detail)


# ---------------------------------------------------------------------------------------------------------------------
# reference reader: icalendar + recurring-ical-events

_RECORD_TAG = "X-WAREHOUSE-RECORD-NUMBER"  # survives recurring-ical-events' copy of the source component


def _read_reference(path: Path, text: str, window: Window) -> _FileRows:
    lines = _logical_lines(text)
    problem = _structure_problem(lines)
    if problem is not None:
        return _rejected(path, REFERENCE, problem)
    spans = _vevent_spans(text, lines)
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except Exception as error:  # noqa: BLE001 - whatever icalendar raises on a file, the file is rejected
        reason = "icalendar cannot read the file, so none of its events can be loaded; check that it is a whole export"
        return _rejected(path, REFERENCE, reason, f"{type(error).__name__}: {error}")
    calendars = [calendar for calendar in calendars if calendar.name == "VCALENDAR"]
    for calendar in calendars:
        if calendar.get("CALSCALE", "GREGORIAN") != "GREGORIAN":
            reason = f"calendar scale {calendar['CALSCALE']} is not supported, only GREGORIAN"
            return _rejected(path, REFERENCE, reason)
    components = [(index, event) for index, calendar in enumerate(calendars) for event in calendar.walk("VEVENT")]
    if len(components) != len(spans):
        return _rejected(path, REFERENCE, f"found {len(spans)} VEVENTs but icalendar read {len(components)}")
    names = (calendar.get("X-WR-CALNAME") for calendar in calendars)
    calendar_name = _reference_text(next((name for name in names if name is not None), None))
    mailbox = (calendar_name and _text(calendar_name)) or path.stem  # icalendar keeps X- values escaped

    quarantined: list[QuarantinedEvent] = []
    kept: dict[int, icalendar.Component] = {}
    calendar_of: dict[int, int] = {}
    for number, ((index, component), span) in enumerate(zip(components, spans, strict=True), start=1):
        problem = _reference_problem(component)
        if problem is None:
            component.add(_RECORD_TAG, str(number))
            kept[number] = component
            calendar_of[number] = index
        else:
            uid = _reference_text(component.get("UID"))
            quarantined.append(_quarantined(number, span.line, span.raw_text, problem, uid))

    # all-day events take the zone of the window ends in recurring-ical-events: UTC, as the warehouse wants
    start, end = window.start.astimezone(dt.UTC), window.end.astimezone(dt.UTC)
    found = []
    for index, calendar in enumerate(calendars):
        events = {number: component for number, component in kept.items() if calendar_of[number] == index}
        _keep_only(calendar, events.values())
        try:
            found.extend(recurring_ical_events.of(calendar).between(start, end))
            continue
        except Exception:  # noqa: BLE001 - any failure is narrowed down to the series that cause it
            pass
        for uid, group in _series(events).items():
            try:
                found.extend(recurring_ical_events.of(_calendar_with(calendar, group)).between(start, end))
            except Exception as error:  # noqa: BLE001 - recurring-ical-events raises many types
                for number, component in group:
                    span = spans[number - 1]
                    uid_as_written = _reference_text(component.get("UID"))
                    problem = _cannot_expand(uid, error)
                    quarantined.append(_quarantined(number, span.line, span.raw_text, problem, uid_as_written))
                    kept.pop(number)

    fields = {
        number: _reference_fields(number, spans[number - 1].line, component) for number, component in kept.items()
    }
    occurrences = []
    for occurrence in found:
        event = fields[int(occurrence[_RECORD_TAG])]
        recurrence_id = _reference_micros(occurrence["RECURRENCE-ID"].dt) if event.is_recurring else None
        start_at = _reference_micros(occurrence["DTSTART"].dt)
        end_at = _reference_micros(occurrence["DTEND"].dt)
        occurrences.append(_occurrence_row(event, mailbox, recurrence_id, start_at, end_at))
    attendees = []
    for number, component in kept.items():
        recurrence_id = component.get("RECURRENCE-ID")
        recurrence_micros = None if recurrence_id is None else _reference_micros(recurrence_id.dt)
        for attendee in _as_list(component.get("ATTENDEE")):
            parameters = getattr(attendee, "params", {})
            attendees.append(
                (
                    number,
                    fields[number].uid,
                    recurrence_micros,
                    _email(str(attendee)),
                    _parameter_text(parameters.get("CN")),
                    (_parameter_text(parameters.get("ROLE")) or "REQ-PARTICIPANT").upper(),
                    (_parameter_text(parameters.get("PARTSTAT")) or "NEEDS-ACTION").upper(),
                )
            )
    return _result(path, REFERENCE, len(components), quarantined, occurrences, attendees)


def _reference_problem(component: icalendar.Component) -> _Problem | None:
    """Why a VEVENT cannot be loaded, checking DTSTART, DTEND, RECURRENCE-ID, UID, then the recurrence properties
    (the fast reader checks in the same order, so both name the same first problem)."""
    if "DTSTART" not in component:
        return _NO_DTSTART
    for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
        prop = component.get(name)
        if prop is None:
            continue
        if isinstance(prop, list):
            return _Problem(REPEATED_PROPERTY, name, f"VEVENT has more than one {name}; keep one and export again")
        parameters = getattr(prop, "params", {})
        value_type = str(parameters.get("VALUE", "")).upper() or None
        if isinstance(prop, icalendar.prop.vBroken):
            return _invalid_value(name, str(prop), value_type, _broken_detail(prop))
        value = prop.dt
        if not isinstance(value, dt.date):
            return _invalid_value(name, prop.to_ical().decode("utf-8"), value_type)
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            return _without_zone(name, prop.to_ical().decode("utf-8"), parameters.get("TZID"))
    uid = _reference_text(component.get("UID"))
    if uid is None or not uid.strip():
        return _NO_UID
    kinds = {"DURATION": "duration", "RRULE": "recurrence rule", "RDATE": "list of dates", "EXDATE": "list of dates"}
    for name, kind in kinds.items():
        for prop in _as_list(component.get(name)):
            if isinstance(prop, icalendar.prop.vBroken):
                reason = f"{name} {str(prop)!r} is not a valid {kind}"
                return _Problem(INVALID_VALUE, name, reason, _broken_detail(prop))
    for prop in _as_list(component.get("RDATE")):
        # a time of day with no date: recurring-ical-events fails comparing it with the dates of the series
        if any(isinstance(value.dt, dt.time) for value in prop.dts):
            written = prop.to_ical().decode("utf-8")
            reason = f"RDATE {written!r} is a time of day without a date, so it adds no occurrence that can be placed"
            return _Problem(INVALID_VALUE, "RDATE", reason + "; write it as a date or date-time and export again")
    return None


def _broken_detail(prop: icalendar.prop.vBroken) -> str | None:
    error = prop.parse_error
    return None if error is None else f"{type(error).__name__}: {error}"


def _keep_only(calendar: icalendar.Component, events: Iterable[icalendar.Component]) -> None:
    keep = {id(event) for event in events}
    for component in calendar.walk():
        component.subcomponents = [sub for sub in component.subcomponents if sub.name != "VEVENT" or id(sub) in keep]


def _series(kept: dict[int, icalendar.Component]) -> dict[str, list[tuple[int, icalendar.Component]]]:
    groups: dict[str, list[tuple[int, icalendar.Component]]] = {}
    for number, component in kept.items():
        groups.setdefault(str(component.get("UID", f"#{number}")), []).append((number, component))
    return groups


def _calendar_with(calendar: icalendar.Component, group: list[tuple[int, icalendar.Component]]) -> icalendar.Calendar:
    """A calendar with the same properties and time zones as `calendar`, holding only the events of `group`."""
    single = icalendar.Calendar()
    for name, value in calendar.items():
        single[name] = value
    single.subcomponents = [zone for zone in calendar.subcomponents if zone.name == "VTIMEZONE"]
    single.subcomponents.extend(component for _, component in group)
    return single


def _reference_fields(number: int, line: int, component: icalendar.Component) -> _Fields:
    start = component["DTSTART"]
    is_all_day = not isinstance(start.dt, dt.datetime)
    tzid = None if is_all_day else str(start.params.get("TZID") or "UTC")
    status = _reference_text(component.get("STATUS"))
    organizer = _reference_text(component.get("ORGANIZER"))
    return _Fields(
        record_number=number,
        line=line,
        uid=_reference_text(component.get("UID")),
        sequence=_reference_int(component.get("SEQUENCE")),
        summary=_reference_text(component.get("SUMMARY")),
        location=_reference_text(component.get("LOCATION")),
        organizer_email=None if organizer is None else _email(organizer),
        status=None if status is None else status.lower(),
        is_all_day=is_all_day,
        is_recurring=any(name in component for name in ("RRULE", "RDATE", "RECURRENCE-ID")),
        is_override="RECURRENCE-ID" in component,
        original_tzid=tzid,
        dtstamp=_reference_stamp(component.get("DTSTAMP")),
        last_modified=_reference_stamp(component.get("LAST-MODIFIED")),
    )


def _as_list(value: object) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _reference_text(value: object) -> str | None:
    values = _as_list(value)
    return None if not values else str(values[0])


def _parameter_text(value: object) -> str | None:
    if value is None:
        return None
    return ",".join(str(item) for item in value) if isinstance(value, list) else str(value)


def _reference_int(value: object) -> int | None:
    values = _as_list(value)
    try:
        return int(values[0]) if values else None
    except (TypeError, ValueError):
        return None


def _reference_stamp(value: object) -> int | None:
    """A DTSTAMP-like value in UTC microseconds; a value without zone is read as UTC, as RFC 5545 writes them."""
    values = _as_list(value)
    if not values or isinstance(values[0], icalendar.prop.vBroken):
        return None
    moment = getattr(values[0], "dt", None)
    if isinstance(moment, dt.datetime) and moment.tzinfo is None:
        return _micros(moment)
    return _reference_micros(moment) if isinstance(moment, dt.date) else None


def _reference_micros(moment: dt.date) -> int:
    """UTC microseconds of an aware datetime, or of midnight UTC for a date."""
    if isinstance(moment, dt.datetime):
        return _micros(moment.astimezone(dt.UTC).replace(tzinfo=None))
    return _micros(dt.datetime(moment.year, moment.month, moment.day))


# ---------------------------------------------------------------------------------------------------------------------
# fast reader: content lines by str methods, zoneinfo, dateutil

_TEXT_ESCAPE = re.compile(r"\\([\\,;:nN])")


def _text(value: str) -> str:
    """TEXT unescaped as icalendar does (\\n \\N \\, \\; \\: \\\\)."""
    if "\\" not in value:
        return value
    return _TEXT_ESCAPE.sub(lambda match: "\n" if match.group(1) in "nN" else match.group(1), value)


_NAMES: dict[str, str] = {}  # property name as written -> upper case, for names that are plain tokens
_TOKEN = re.compile(r"[A-Za-z0-9-]+")


def _name(raw: str) -> str:
    known = _NAMES.get(raw)
    if known is not None:
        return known
    if not _TOKEN.fullmatch(raw):
        raise _Fallback(f"property name {raw!r}")
    if len(_NAMES) > 10_000:
        _NAMES.clear()
    _NAMES[raw] = raw.upper()
    return _NAMES[raw]


_PARAMETERS: dict[str, dict[str, str]] = {}  # parameter section as written -> parsed; they repeat across events
_UNSAFE_UNQUOTED = re.compile('[\x00-\x08\x0a-\x1f\x7f",:;]')
_UNSAFE_QUOTED = re.compile('[\x00-\x08\x0a-\x1f\x7f"]')


def _parameters(section: str) -> dict[str, str]:
    """Parameters of a content line, upper-case keys; anything icalendar would rewrite or split is a fallback."""
    known = _PARAMETERS.get(section)
    if known is not None:
        return known
    if not section or any(c in section for c in "\\^%") or section != section.strip(" \t"):
        raise _Fallback(f"parameters {section!r}")
    parts = section.split(";") if '"' not in section else _split_outside_quotes(section, ";")
    parsed: dict[str, str] = {}
    for part in parts:
        key, separator, value = part.partition("=")
        if not separator or not _TOKEN.fullmatch(key) or key.upper() in parsed:
            raise _Fallback(f"parameter {part!r}")
        if value.startswith('"'):
            if len(value) < 2 or not value.endswith('"') or _UNSAFE_QUOTED.search(value[1:-1]):
                raise _Fallback(f"parameter {part!r}")
            value = value[1:-1]
        elif _UNSAFE_UNQUOTED.search(value) or value != value.strip(" \t"):
            raise _Fallback(f"parameter {part!r}")
        parsed[key.upper()] = value
    if len(_PARAMETERS) > 50_000:
        _PARAMETERS.clear()
    _PARAMETERS[section] = parsed
    return parsed


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts, start, quoted = [], 0, False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:index])
            start = index + 1
    if quoted:
        raise _Fallback(f"unbalanced quotes in {text!r}")
    parts.append(text[start:])
    return parts


_HEADS: dict[str, tuple[str, str]] = {}  # "DTSTART;TZID=Europe/Paris" -> ("DTSTART", "TZID=Europe/Paris"), unquoted


def _split_line(line: str) -> tuple[str, str, str]:
    """(NAME, parameter section, value) of an unfolded content line."""
    colon = line.find(":")
    if colon < 1:
        raise _Fallback(f"content line {line[:40]!r}")
    head = line[:colon]
    if '"' in head:
        quoted = False
        for index, char in enumerate(line):
            if char == '"':
                quoted = not quoted
            elif char == ":" and not quoted:
                colon = index
                break
        else:
            raise _Fallback(f"content line {line[:40]!r}")
        head = line[:colon]
    if "\\" in head:
        raise _Fallback(f"content line {line[:40]!r}")
    semicolon = head.find(";")
    if semicolon == -1:
        name, section = _name(head), ""
    else:
        name, section = _name(head[:semicolon]), head[semicolon + 1 :]
    if '"' not in head:
        if len(_HEADS) > 50_000:
            _HEADS.clear()
        _HEADS[head] = (name, section)
    return name, section, line[colon + 1 :]


_IANA: frozenset[str] = frozenset()
_ZONES: dict[str, zoneinfo.ZoneInfo] = {}


def _is_iana(tzid: str) -> bool:
    global _IANA
    if not _IANA:
        _IANA = frozenset(zoneinfo.available_timezones())
    return tzid in _IANA


def _zone(tzid: str) -> zoneinfo.ZoneInfo | None:
    """The zoneinfo zone icalendar picks for a TZID that no VTIMEZONE of the file defines, None when it finds none.

    An IANA name is its own zone. Any other name goes to icalendar's own lookup, `tzp.timezone`, which knows the
    Windows names ("Pacific Standard Time") and vendor-prefixed ones ("/example.org/Europe/Berlin"): the same
    function the reference reader's icalendar calls, so the two cannot disagree. icalendar also keeps the zones it
    built from other files' VTIMEZONEs in that lookup; such a zone is not a zoneinfo zone, and is a fallback.
    """
    zone = _ZONES.get(tzid)
    if zone is None:
        if _is_iana(tzid):
            zone = zoneinfo.ZoneInfo(tzid)
        else:
            zone = icalendar.timezone.tzp.timezone(tzid)
            if zone is None:
                return None
            if not isinstance(zone, zoneinfo.ZoneInfo):
                raise _Fallback(f"TZID {tzid!r} is a time zone icalendar built from a VTIMEZONE")
        _ZONES[tzid] = zone
    return zone


class _Time(NamedTuple):
    local: dt.datetime  # wall-clock time; midnight for a date
    zone: zoneinfo.ZoneInfo | None  # None for a date
    tzid: str | None  # TZID parameter, "UTC" for a Z value, None for a date
    utc: dt.datetime  # naive UTC; for a date, its midnight


def _time(name: str, section: str, value: str) -> _Time:
    """A DATE or DATE-TIME value as icalendar reads it; _Quarantine when it is not one or has no zone."""
    tzid = value_type = None
    if section:
        parameters = _parameters(section)
        tzid, value_type = parameters.get("TZID"), parameters.get("VALUE")
        value_type = None if value_type is None else value_type.upper()
    size = len(value)
    if size == 15 or (size == 16 and value[15] == "Z"):
        if value[8] == "T" and value[:8].isdigit() and value[9:15].isdigit() and value_type in (None, "DATE-TIME"):
            try:
                local = dt.datetime.fromisoformat(value[:15])
            except ValueError:
                return _checked_by_icalendar(name, section, value, tzid, value_type)
            if size == 16:
                if tzid is not None:
                    raise _Fallback(f"{name} has both TZID and Z")
                return _Time(local, _UTC, "UTC", local)
            zone = None if tzid is None else _zone(tzid)
            if zone is None:
                raise _Quarantine(_without_zone(name, value, tzid))
            return _Time(local, zone, tzid, local - zone.utcoffset(local))
    elif size == 8 and value.isdigit() and value_type in (None, "DATE") and tzid is None:
        try:
            day = dt.datetime(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            return _checked_by_icalendar(name, section, value, tzid, value_type)
        return _Time(day, None, None, day)
    return _checked_by_icalendar(name, section, value, tzid, value_type)


def _checked_by_icalendar(name: str, section: str, value: str, tzid: str | None, value_type: str | None) -> _Time:
    """Quarantine a value icalendar cannot read either; anything it reads in its own way is a fallback."""
    if "\\" in value:
        raise _Fallback(f"{name} value with a backslash")
    factory = icalendar.cal.Event.types_factory.for_property(name, value_type)
    try:
        factory.from_ical(value, tzid) if tzid else factory.from_ical(value)
    except (ValueError, TypeError) as error:
        detail = f"{type(error).__name__}: {error}"
        raise _Quarantine(_invalid_value(name, value, value_type, detail)) from error
    raise _Fallback(f"{name};{section}:{value} is read by icalendar in a way the fast reader does not")


_DURATION = re.compile(r"P(?:(\d+)W|(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?)")


def _duration(value: str) -> dt.timedelta:
    match = _DURATION.fullmatch(value)
    if match is None or value in ("P", "PT") or value.endswith("T"):
        raise _Fallback(f"DURATION {value!r}")
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


_FREQUENCIES = {
    "DAILY": dateutil_rrule.DAILY,
    "WEEKLY": dateutil_rrule.WEEKLY,
    "MONTHLY": dateutil_rrule.MONTHLY,
    "YEARLY": dateutil_rrule.YEARLY,
}
_WEEKDAYS = dict(zip(("MO", "TU", "WE", "TH", "FR", "SA", "SU"), dateutil_rrule.weekdays, strict=True))
_RULE_PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "WKST"})
_ORDINAL_DAY = re.compile(r"([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")


class _Rule(NamedTuple):
    """The parts of an RRULE that dateutil needs, UNTIL apart (it is compared in UTC after localizing)."""

    freq: int
    interval: int
    count: int | None
    byweekday: tuple | None
    bymonthday: tuple[int, ...] | None
    bymonth: tuple[int, ...] | None
    bysetpos: tuple[int, ...] | None
    wkst: int | None


def _rule(value: str, all_day: bool) -> tuple[_Rule, dt.datetime | None]:
    """An RRULE and its UNTIL as naive UTC (a date: its midnight), for the forms recurring-ical-events reads plainly."""
    parts: dict[str, str] = {}
    for item in value.split(";"):
        key, separator, part = item.partition("=")
        if not separator or key not in _RULE_PARTS or key in parts or not part:
            raise _Fallback(f"RRULE {value!r}")
        parts[key] = part
    freq = _FREQUENCIES.get(parts.get("FREQ", ""))
    if freq is None or ("COUNT" in parts and "UNTIL" in parts):
        raise _Fallback(f"RRULE {value!r}")

    def numbers(key: str, low: int, high: int, nonzero: bool = True) -> tuple[int, ...] | None:
        if key not in parts:
            return None
        result = []
        for item in parts[key].split(","):
            if not re.fullmatch(r"[+-]?\d{1,4}", item):
                raise _Fallback(f"RRULE {value!r}")
            number = int(item)
            if not low <= number <= high or (nonzero and number == 0):
                raise _Fallback(f"RRULE {value!r}")
            result.append(number)
        return tuple(result)

    interval = numbers("INTERVAL", 1, 10_000)
    count = numbers("COUNT", 1, 100_000)
    byweekday = None
    if "BYDAY" in parts:
        days = []
        for item in parts["BYDAY"].split(","):
            match = _ORDINAL_DAY.fullmatch(item)
            if match is None:
                raise _Fallback(f"RRULE {value!r}")
            sign, ordinal, day = match.groups()
            if ordinal is None:
                if sign:
                    raise _Fallback(f"RRULE {value!r}")
                days.append(_WEEKDAYS[day])
            else:
                number = int(ordinal) * (-1 if sign == "-" else 1)
                if number == 0 or freq not in (dateutil_rrule.MONTHLY, dateutil_rrule.YEARLY):
                    raise _Fallback(f"RRULE {value!r}")
                days.append(_WEEKDAYS[day](number))
        byweekday = tuple(days)
    wkst = None
    if "WKST" in parts:
        if parts["WKST"] not in _WEEKDAYS:
            raise _Fallback(f"RRULE {value!r}")
        wkst = _WEEKDAYS[parts["WKST"]].weekday
    until = None
    if "UNTIL" in parts:
        text = parts["UNTIL"]
        if all_day and len(text) == 8 and text.isdigit():
            until = _date_time(text + "T000000")
        elif not all_day and len(text) == 16 and text[8] == "T" and text[15] == "Z":
            until = _date_time(text[:15])
        else:
            raise _Fallback(f"RRULE UNTIL {text!r}")
    rule = _Rule(
        freq=freq,
        interval=interval[0] if interval else 1,
        count=count[0] if count else None,
        byweekday=byweekday,
        bymonthday=numbers("BYMONTHDAY", -31, 31),
        bymonth=numbers("BYMONTH", 1, 12),
        bysetpos=numbers("BYSETPOS", -366, 366),
        wkst=wkst,
    )
    return rule, until


def _date_time(text: str) -> dt.datetime:
    if not (text[:8].isdigit() and text[9:15].isdigit()):
        raise _Fallback(f"date-time {text!r}")
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise _Fallback(f"date-time {text!r}") from error


@functools.lru_cache(maxsize=8192)
def _rule_starts(rule: _Rule, dtstart: dt.datetime, stop: dt.datetime) -> tuple[dt.datetime, ...]:
    """Wall-clock starts of a rule from DTSTART until `stop` (naive). Exports repeat a series in every drop that
    changes it, so the same expansion is asked for again; the answer depends only on the arguments."""
    expansion = dateutil_rrule.rrule(
        rule.freq,
        dtstart=dtstart,
        interval=rule.interval,
        wkst=rule.wkst,
        count=rule.count,
        bysetpos=rule.bysetpos,
        bymonth=rule.bymonth,
        bymonthday=rule.bymonthday,
        byweekday=rule.byweekday,
        cache=False,
    )
    starts = []
    for start in expansion:
        if start > stop:
            break
        starts.append(start)
    return tuple(starts)


_SINGLE = frozenset(
    {
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RECURRENCE-ID",
        "SUMMARY",
        "LOCATION",
        "STATUS",
        "SEQUENCE",
        "DTSTAMP",
        "LAST-MODIFIED",
        "ORGANIZER",
    }
)
_MULTIPLE = frozenset({"ATTENDEE", "EXDATE", "RDATE", "RRULE"})
_VALUE_TYPED = ("UID", "SUMMARY", "LOCATION", "STATUS", "ORGANIZER")  # read as text: no VALUE= wanted
_CALENDAR_PROPERTIES = frozenset({"VERSION", "PRODID", "CALSCALE", "METHOD"})
_TIMEZONE_PARTS = frozenset({"BEGIN:STANDARD", "END:STANDARD", "BEGIN:DAYLIGHT", "END:DAYLIGHT"})
_SLACK = dt.timedelta(days=2)  # more than any UTC offset: bounds a wall-clock expansion given in UTC


class _Event(NamedTuple):
    head: tuple  # occurrence columns before recurrence_id
    body: tuple  # between recurrence_id and start_at
    tail: tuple  # after end_at
    uid: str
    calendar: int  # 0-based index of its VCALENDAR in the file: a series lives within one
    is_recurring: bool
    start: _Time
    end_utc: dt.datetime
    duration: dt.timedelta  # what recurring-ical-events adds to each occurrence start
    recurrence_id: _Time | None
    rules: list[tuple[_Rule, dt.datetime | None]]
    rdates: list[_Time]
    exdates: list[_Time]


def _read_fast(path: Path, text: str, window: Window) -> _FileRows:
    if "\r" in text:
        newline = "\r\n"
        crlf = text.count("\r\n")
        if crlf != text.count("\r") or crlf != text.count("\n"):
            raise _Fallback("mixed line endings")
    else:
        newline = "\n"
    if newline * 2 + " " in text or newline * 2 + "\t" in text:
        raise _Fallback("a continuation line after a blank line")
    lines = text.replace(newline + " ", "").replace(newline + "\t", "").split(newline)
    begins = _begin_lines(text, newline)

    def structural(why: str) -> _FileRows:
        problem = _structure_problem(_logical_lines(text))
        if problem is None:
            raise _Fallback(why)
        return _rejected(path, FAST, problem)

    if not lines or lines[0] != "BEGIN:VCALENDAR":
        return structural("first line")
    mailbox = None
    events: list[tuple[int, int, dict, list, list, list, list]] = []
    index, count, closed = 1, len(lines), False
    calendar, named = 0, False  # the VCALENDAR being read, and whether it had its X-WR-CALNAME
    while index < count:
        line = lines[index]
        index += 1
        if not line:
            continue
        if line == "BEGIN:VEVENT":
            single: dict[str, tuple[str, str]] = {}
            attendees: list[tuple[str, str]] = []
            exdates: list[tuple[str, str]] = []
            rdates: list[tuple[str, str]] = []
            rrules: list[tuple[str, str]] = []
            multiple = {"ATTENDEE": attendees, "EXDATE": exdates, "RDATE": rdates, "RRULE": rrules}
            while True:
                if index >= count:
                    return structural("unclosed VEVENT")
                line = lines[index]
                index += 1
                if line == "END:VEVENT":
                    break
                if not line:
                    continue
                colon = line.find(":")
                known = _HEADS.get(line[:colon]) if colon > 0 else None
                if known is None:
                    name, section, value = _split_line(line)
                else:
                    name, section = known
                    value = line[colon + 1 :]
                if name in _SINGLE:
                    if name in single:
                        raise _Fallback(f"{name} twice in one VEVENT")
                    single[name] = (section, value)
                elif name in _MULTIPLE:
                    multiple[name].append((section, value))
                elif name in ("BEGIN", "END"):
                    return structural(f"{line} inside a VEVENT")
            events.append((len(events), calendar, single, attendees, exdates, rdates, rrules))
        elif line == "BEGIN:VTIMEZONE":
            try:
                end = lines.index("END:VTIMEZONE", index)
            except ValueError:
                return structural("unclosed VTIMEZONE")
            block = lines[index - 1 : end + 1]
            if any(entry.startswith(("BEGIN", "END")) and entry not in _TIMEZONE_PARTS for entry in block[1:-1]):
                raise _Fallback("VTIMEZONE holding other components")
            tzids = [entry[5:] for entry in block if entry.startswith("TZID:")]
            if len(tzids) != 1:
                raise _Fallback("VTIMEZONE without one plain TZID")
            if not _is_iana(tzids[0]):
                raise _Fallback(f"VTIMEZONE {tzids[0]!r}, which icalendar may build its own zone from")
            if not _timezone_is_readable("\r\n".join(block) + "\r\n"):
                raise _Fallback("VTIMEZONE icalendar does not read")
            index = end + 1
        elif line == "END:VCALENDAR":
            following = next((number for number in range(index, count) if lines[number]), count)
            if following == count:
                closed = True
                break
            if lines[following] != "BEGIN:VCALENDAR":
                return structural("content after END:VCALENDAR")
            calendar, named, index = calendar + 1, False, following + 1
        else:
            name, section, value = _split_line(line)
            if section:
                _parameters(section)
            if name == "X-WR-CALNAME":
                if named:
                    raise _Fallback("X-WR-CALNAME twice in one VCALENDAR")
                named = True
                mailbox = _text(value) if mailbox is None else mailbox
            elif name == "CALSCALE" and value != "GREGORIAN":
                raise _Fallback("CALSCALE")
            elif name not in _CALENDAR_PROPERTIES and (not name.startswith("X-") or name == "X-WR-TIMEZONE"):
                raise _Fallback(f"{name} in VCALENDAR")
    if not closed:
        return structural("no END:VCALENDAR")
    if len(begins) != len(events):
        raise _Fallback("BEGIN:VEVENT lines written in another form")
    mailbox = mailbox or path.stem

    quarantined: list[QuarantinedEvent] = []
    parsed: list[_Event] = []
    attendee_rows: list[tuple[object, ...]] = []
    for position, calendar, single, attendees, exdates, rdates, rrules in events:
        number, line_number = position + 1, begins[position] + 1
        try:
            event = _fast_event(number, line_number, calendar, single, exdates, rdates, rrules, mailbox)
        except _Quarantine as quarantine:
            physical = text.split(newline)
            end = physical.index("END:VEVENT", begins[position])
            raw_text = "\n".join(physical[begins[position] : end + 1])
            uid = _uid_as_written(single)
            quarantined.append(_quarantined(number, line_number, raw_text, quarantine.problem, uid))
            continue
        parsed.append(event)
        recurrence_id = None if event.recurrence_id is None else _micros(event.recurrence_id.utc)
        for section, value in attendees:
            parameters = _parameters(section) if section else {}
            if "VALUE" in parameters:
                raise _Fallback("ATTENDEE with a VALUE parameter")
            attendee_rows.append(
                (
                    number,
                    event.uid,
                    recurrence_id,
                    _email(_text(value)),
                    parameters.get("CN"),
                    (parameters.get("ROLE") or "REQ-PARTICIPANT").upper(),
                    (parameters.get("PARTSTAT") or "NEEDS-ACTION").upper(),
                )
            )

    series: dict[tuple[int, str], list[_Event]] = {}
    for event in parsed:
        series.setdefault((event.calendar, event.uid), []).append(event)
    occurrence_rows: list[tuple[object, ...]] = []
    window_start = window.start.astimezone(dt.UTC).replace(tzinfo=None)
    window_end = window.end.astimezone(dt.UTC).replace(tzinfo=None)
    for events_of_uid in series.values():
        _expand_series(events_of_uid, window_start, window_end, occurrence_rows)
    return _result(path, FAST, len(events), quarantined, occurrence_rows, attendee_rows)


def _begin_lines(text: str, newline: str) -> list[int]:
    """0-based physical line of each line that is exactly BEGIN:VEVENT."""
    marker = newline + "BEGIN:VEVENT" + newline
    begins, position, previous, line = [], text.find(marker), 0, 0
    while position != -1:
        line += text.count("\n", previous, position + len(newline))
        begins.append(line)
        previous = position + len(newline)
        position = text.find(marker, previous)
    return begins


@functools.lru_cache(maxsize=256)
def _timezone_is_readable(block: str) -> bool:
    """Whether icalendar reads a VTIMEZONE without error (it rejects the whole file otherwise)."""
    try:
        icalendar.Timezone.from_ical(block)
    except Exception:  # noqa: BLE001 - any error means the reference reader decides
        return False
    return True


def _uid_as_written(single: dict[str, tuple[str, str]]) -> str | None:
    entry = single.get("UID")
    if entry is None:
        return None
    if entry[0] and "VALUE" in _parameters(entry[0]):
        raise _Fallback("UID with a VALUE parameter")
    return _text(entry[1])


def _fast_event(
    number: int,
    line: int,
    calendar: int,
    single: dict[str, tuple[str, str]],
    exdates: list[tuple[str, str]],
    rdates: list[tuple[str, str]],
    rrules: list[tuple[str, str]],
    mailbox: str,
) -> _Event:
    if "DTSTART" not in single:
        raise _Quarantine(_NO_DTSTART)
    start = _time("DTSTART", *single["DTSTART"])
    end = _time("DTEND", *single["DTEND"]) if "DTEND" in single else None
    recurrence_id = _time("RECURRENCE-ID", *single["RECURRENCE-ID"]) if "RECURRENCE-ID" in single else None

    for name in _VALUE_TYPED:
        entry = single.get(name)
        if entry is not None and entry[0] and "VALUE" in _parameters(entry[0]):
            raise _Fallback(f"{name} with a VALUE parameter")
    uid = _uid_as_written(single)
    if uid is None or not uid.strip():
        raise _Quarantine(_NO_UID)
    sequence = None
    if "SEQUENCE" in single:
        section, value = single["SEQUENCE"]
        if section or not (value.isdigit() and value.isascii()):
            raise _Fallback("SEQUENCE")
        sequence = int(value)
    all_day = start.zone is None
    if recurrence_id is not None:
        if (recurrence_id.zone is None) != all_day:
            raise _Fallback("RECURRENCE-ID and DTSTART of different kinds")
        section = single["RECURRENCE-ID"][0]
        if section and "RANGE" in _parameters(section):
            raise _Fallback("RANGE on RECURRENCE-ID")
        if rrules or rdates or exdates:
            raise _Fallback("an override with its own recurrence")

    if end is not None:
        if "DURATION" in single or (end.zone is None) != all_day:
            raise _Fallback("DTEND with DURATION, or of another kind than DTSTART")
        end_local = end.local if end.tzid == start.tzid else end.utc - start.utc + start.local
        end_utc = end.utc
    elif "DURATION" in single:
        section, value = single["DURATION"]
        duration = _duration(value)
        if section or (all_day and duration.seconds):
            raise _Fallback("DURATION")
        end_local = start.local + duration
        end_utc = end_local if all_day else end_local - start.zone.utcoffset(end_local)
    else:
        end_local = start.local + dt.timedelta(days=1) if all_day else start.local
        end_utc = end_local if all_day else start.utc
    if end_local < start.local or end_utc < start.utc:
        raise _Fallback("an event that ends before it starts")
    duration = end_local - start.local if end is None or end.tzid == start.tzid else end.utc - start.utc

    if len(rrules) > 1 or any(section for section, _ in rrules):
        raise _Fallback("more than one RRULE, or one with parameters")
    rules = [_rule(value, all_day) for _, value in rrules]
    rdate_times = _time_list("RDATE", rdates, start)
    exdate_times = _time_list("EXDATE", exdates, start, any_zone=True)

    status = single.get("STATUS")
    organizer = single.get("ORGANIZER")
    summary = single.get("SUMMARY")
    location = single.get("LOCATION")
    fields = _Fields(
        record_number=number,
        line=line,
        uid=uid,
        sequence=sequence,
        summary=None if summary is None else _text(summary[1]),
        location=None if location is None else _text(location[1]),
        organizer_email=None if organizer is None else _email(_text(organizer[1])),
        status=None if status is None else _text(status[1]).lower(),
        is_all_day=all_day,
        is_recurring=bool(rules or rdates or recurrence_id is not None),
        is_override=recurrence_id is not None,
        original_tzid=start.tzid,
        dtstamp=_stamp(single.get("DTSTAMP")),
        last_modified=_stamp(single.get("LAST-MODIFIED")),
    )
    head, body, tail = _row_parts(fields, mailbox)
    return _Event(
        head,
        body,
        tail,
        uid,
        calendar,
        fields.is_recurring,
        start,
        end_utc,
        duration,
        recurrence_id,
        rules,
        rdate_times,
        exdate_times,
    )


def _time_list(name: str, entries: list[tuple[str, str]], start: _Time, *, any_zone: bool = False) -> list[_Time]:
    """RDATE or EXDATE values: of the same kind as DTSTART (an EXDATE may name another zone); no periods."""
    times = []
    for section, value in entries:
        if section and _parameters(section).get("VALUE") not in (None, "DATE", "DATE-TIME"):
            raise _Fallback(f"{name} with VALUE {_parameters(section).get('VALUE')}")
        for item in value.split(","):
            try:
                moment = _time(name, section, item)
            except _Quarantine as problem:
                raise _Fallback(f"{name}: {problem}") from problem
            same_kind = (moment.zone is None) == (start.zone is None)
            if not same_kind and not (any_zone and moment.zone is None):
                raise _Fallback(f"{name} of another kind than DTSTART")
            if not any_zone and moment.tzid != start.tzid:
                raise _Fallback(f"{name} in another zone than DTSTART")
            times.append(moment)
    return times


_STAMPS: dict[str, int] = {}  # DTSTAMP repeats in every event of an export


def _stamp(entry: tuple[str, str] | None) -> int | None:
    if entry is None:
        return None
    section, value = entry
    known = _STAMPS.get(value)
    if known is not None and not section:
        return known
    if section or len(value) != 16 or value[15] != "Z" or value[8] != "T":
        raise _Fallback(f"time stamp {value!r}")
    if len(_STAMPS) > 50_000:
        _STAMPS.clear()
    _STAMPS[value] = _micros(_date_time(value[:15]))
    return _STAMPS[value]


def _recurrence_keys(moment: _Time) -> tuple[dt.datetime, ...]:
    """How recurring-ical-events identifies an occurrence: (UTC, local) without zone; a date by its midnight."""
    return (moment.local,) if moment.zone is None else (moment.utc, moment.local)


def _overlaps(start: dt.datetime, end: dt.datetime, window_start: dt.datetime, window_end: dt.datetime) -> bool:
    """recurring_ical_events.util.time_span_contains_event, on naive UTC."""
    if start == end:
        return window_start <= start < window_end if window_start != window_end else start == window_start
    if window_start == window_end:
        return start <= window_start < end
    return start < window_end and window_start < end


def _expand_series(
    events: list[_Event], window_start: dt.datetime, window_end: dt.datetime, rows: list[tuple[object, ...]]
) -> None:
    """Occurrences of one UID in the window (naive UTC), as recurring_ical_events.Series.between finds them."""
    if len(events) == 1:
        event = events[0]
        if event.recurrence_id is None and not (event.rules or event.rdates or event.exdates):
            # a single event: recurring-ical-events' only candidate is DTSTART, ending DTSTART + duration wall-clock
            start, zone = event.start, event.start.zone
            end_local = start.local + event.duration
            end_utc = end_local if zone is None else end_local - zone.utcoffset(end_local)
            if window_start - event.duration <= start.utc <= window_end and _overlaps(
                start.utc, end_utc, window_start, window_end
            ):
                rows.append((*event.head, None, *event.body, _micros(start.utc), _micros(end_utc), *event.tail))
            return
    masters = [event for event in events if event.recurrence_id is None]
    if len(masters) > 1:
        raise _Fallback("two VEVENTs of one UID without RECURRENCE-ID")
    master = masters[0] if masters else None
    overrides: dict[dt.datetime, _Event] = {}
    for event in events:
        if event.recurrence_id is not None:
            for key in _recurrence_keys(event.recurrence_id):
                if overrides.setdefault(key, event) is not event:
                    raise _Fallback("two overrides of one occurrence")

    def add(event: _Event, recurrence_id: int | None, start_utc: dt.datetime, end_utc: dt.datetime) -> None:
        rows.append((*event.head, recurrence_id, *event.body, _micros(start_utc), _micros(end_utc), *event.tail))

    returned: set[int] = set()
    excluded_keys: set[dt.datetime] = set()
    if master is not None:
        start, zone = master.start, master.start.zone
        excluded_dates = set()
        for exdate in master.exdates:
            excluded_keys.update(_recurrence_keys(exdate))
            if exdate.zone is None:
                excluded_dates.add(exdate.local.date())
        low, high = window_start - master.duration, window_end
        candidates = {moment.local for moment in master.rdates}
        last_until = max((until for _, until in master.rules if until is not None), default=None)
        if last_until is None or start.utc <= last_until:
            candidates.add(start.local)
        for rule, until in master.rules:
            stop = high if until is None else min(high, until)
            for local in _rule_starts(rule, start.local, stop + _SLACK):
                if until is None or (local if zone is None else local - zone.utcoffset(local)) <= until:
                    candidates.add(local)
        for local in candidates:
            utc = local if zone is None else local - zone.utcoffset(local)
            if not low <= utc <= high:
                continue
            keys = (local,) if zone is None else (utc, local)
            if local.date() in excluded_dates or not excluded_keys.isdisjoint(keys):
                continue
            override = None
            for key in keys:
                override = overrides.get(key, override)
            if override is not None:
                if id(override) not in returned:
                    returned.add(id(override))
                    if _overlaps(override.start.utc, override.end_utc, window_start, window_end):
                        add(override, _micros(override.recurrence_id.utc), override.start.utc, override.end_utc)
                continue
            end_local = local + master.duration
            end_utc = end_local if zone is None else end_local - zone.utcoffset(end_local)
            if _overlaps(utc, end_utc, window_start, window_end):
                add(master, _micros(utc) if master.is_recurring else None, utc, end_utc)
    for event in events:
        if event.recurrence_id is None or id(event) in returned:
            continue
        if not excluded_keys.isdisjoint(_recurrence_keys(event.recurrence_id)):
            continue
        if _overlaps(event.start.utc, event.end_utc, window_start, window_end):
            add(event, _micros(event.recurrence_id.utc), event.start.utc, event.end_utc)
