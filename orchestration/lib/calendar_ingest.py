"""Calendar ingest: expand each new mailbox export and append occurrences, attendees and quarantined events.

Files are parsed on every core by `ics.expand_files` (the fast reader, with icalendar and recurring-ical-events as
the fallback) and written one file per transaction with its ledger row, as the CSV loader does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from orchestration.lib.csv_loader import QUARANTINE_DDL
from orchestration.lib.ingest import FileReport, Log, TableLoad
from orchestration.lib.ledger import FileOutcome, ensure_ledger, export_date_of, pending_files, record

CALENDAR_GLOB = "calendar/**/*.ics"
_ARROW_TO_SQL = {"int32": "integer", "int64": "bigint", "string": "varchar", "bool": "boolean"}
LINEAGE = {"record_number": "_record_number", "line": "_line"}


@dataclass(frozen=True)
class CalendarWindowSettings:
    """Occurrences are expanded from `window_start` (UTC) to `horizon_days` after the newest export date."""

    window_start: str = "2000-01-01"
    horizon_days: int = 366
    workers: int | None = None


@dataclass
class CalendarLoad(TableLoad):
    occurrences: int = 0
    attendees: int = 0
    fallback_files: list[str] = field(default_factory=list)


def _sql_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz"
    return _ARROW_TO_SQL[str(arrow_type)]


def _ddl(schema: pa.Schema, table: str) -> str:
    columns = [f'"{LINEAGE.get(f.name, f.name)}" {_sql_type(f.type)}' for f in schema]
    lineage = "_source_file varchar, _load_id varchar, _loaded_at timestamptz"
    return f"create table if not exists raw.{table} ({', '.join(columns)}, {lineage})"


def ensure_calendar_tables(con: duckdb.DuckDBPyConnection) -> None:
    from orchestration.lib.ics import ATTENDEE_SCHEMA, OCCURRENCE_SCHEMA

    con.execute("create schema if not exists raw; create schema if not exists quarantine")
    con.execute(_ddl(OCCURRENCE_SCHEMA, "calendar_events"))
    con.execute(_ddl(ATTENDEE_SCHEMA, "calendar_attendees"))
    con.execute(QUARANTINE_DDL.format(table="calendar_events"))


def window_for(paths: list[Path], settings: CalendarWindowSettings):
    """The expansion window: from the configured start to the horizon past the newest export."""
    from orchestration.lib.ics import Window

    newest = max((export_date_of(path) for path in paths), default=dt.date.today())
    start = dt.datetime.fromisoformat(settings.window_start).replace(tzinfo=dt.UTC)
    end = dt.datetime.combine(newest + dt.timedelta(days=settings.horizon_days), dt.time(), dt.UTC)
    return Window(start, end)


def ingest_calendars(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    settings: CalendarWindowSettings | None = None,
    *,
    run_id: str | None = None,
    log: Log | None = None,
) -> CalendarLoad:
    """Load every calendar export the ledger has not seen; one transaction per file."""
    from orchestration.lib.ics import expand_files

    settings = settings or CalendarWindowSettings()
    con.execute("set timezone = 'UTC'")
    ensure_ledger(con)
    ensure_calendar_tables(con)
    paths = sorted(path for path in landing.glob(CALENDAR_GLOB) if path.is_file())
    window = window_for(paths, settings)
    pending = pending_files(con, paths, landing, "calendar_events")
    result = CalendarLoad("calendar_events")
    to_parse = [file for file in pending if file.same_as is None]
    parsed = expand_files([file.path for file in to_parse], window, workers=settings.workers)
    by_path = {file.path: file for file in to_parse}
    for file in pending:
        if file.same_as is not None:
            outcome = FileOutcome(status="skipped", reason=f"same content as {file.same_as}, already loaded")
            _record(con, file, outcome, run_id, uuid.uuid4().hex, dt.datetime.now(dt.UTC))
            result.files.append(FileReport(file.relative, "icalendar", outcome))
    for number, parsed_file in enumerate(parsed, start=1):
        file = by_path[parsed_file.path]
        load_id, started_at = uuid.uuid4().hex, dt.datetime.now(dt.UTC)
        con.execute("begin transaction")
        try:
            outcome = _write(con, file.relative, parsed_file, load_id, started_at)
            _record(con, file, outcome, run_id, load_id, started_at)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        result.files.append(FileReport(file.relative, "icalendar", outcome))
        result.occurrences += parsed_file.occurrences.num_rows if outcome.status == "loaded" else 0
        result.attendees += parsed_file.attendees.num_rows if outcome.status == "loaded" else 0
        if parsed_file.parser != "fast":
            result.fallback_files.append(file.relative)
        if log and (outcome.status != "loaded" or number % 500 == 0 or number == len(to_parse)):
            detail = f": {outcome.reason}" if outcome.reason else ""
            log(f"calendar [{number}/{len(to_parse)}] {file.relative} {outcome.status}{detail}")
    return result


def _record(con: duckdb.DuckDBPyConnection, file, outcome: FileOutcome, run_id, load_id: str, started_at) -> None:
    record(con, load_id=load_id, run_id=run_id, source="calendar", table="calendar_events", vendor="icalendar",
           pending=file, outcome=outcome, started_at=started_at)  # fmt: skip


def _write(con: duckdb.DuckDBPyConnection, relative: str, parsed, load_id: str, loaded_at: dt.datetime) -> FileOutcome:
    if parsed.rejected:
        return FileOutcome(status="rejected", reason=parsed.rejected, parser=parsed.parser)
    lineage = f"'{relative.replace(chr(39), chr(39) * 2)}' as _source_file, '{load_id}' as _load_id, " \
        f"'{loaded_at.isoformat()}'::timestamptz as _loaded_at"  # fmt: skip
    for table, rows in (("calendar_events", parsed.occurrences), ("calendar_attendees", parsed.attendees)):
        if rows.num_rows:
            con.register("_calendar_rows", rows)
            present = [name for name in LINEAGE if name in rows.column_names]
            rename = ", ".join(f"{old} as {LINEAGE[old]}" for old in present)
            exclude = f"exclude ({', '.join(present)})" if present else ""
            con.execute(
                f"insert into raw.{table} by name select * {exclude}{', ' + rename if rename else ''}, {lineage} "
                "from _calendar_rows"
            )
            con.unregister("_calendar_rows")
    if parsed.quarantined:
        frame = pa.table(
            {
                "_source_file": [relative] * len(parsed.quarantined),
                "_record_number": [event.record_number for event in parsed.quarantined],
                "_line": [event.line for event in parsed.quarantined],
                "record_id": [_uid_of(event.raw_text) for event in parsed.quarantined],
                "reason": [event.reason for event in parsed.quarantined],
                "problems": [[_problem_code(event.reason)] for event in parsed.quarantined],
                "columns": [[_property_of(event.reason)] for event in parsed.quarantined],
                "raw_text": [event.raw_text for event in parsed.quarantined],
                "_load_id": [load_id] * len(parsed.quarantined),
                "_loaded_at": pa.array([loaded_at] * len(parsed.quarantined), pa.timestamp("us", tz="UTC")),
            }
        )
        con.register("_calendar_quarantine", frame)
        con.execute("insert into quarantine.calendar_events select * from _calendar_quarantine")
        con.unregister("_calendar_quarantine")
    return FileOutcome(
        status="loaded",
        rows_read=parsed.events_read,
        rows_loaded=parsed.events_loaded,
        rows_quarantined=len(parsed.quarantined),
        parser=parsed.parser,
    )


def _uid_of(raw_text: str) -> str | None:
    lines = raw_text.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        if line.upper().startswith("UID:"):
            value = line[4:]
            for following in lines[index + 1 :]:
                if following[:1] in (" ", "\t"):
                    value += following[1:]
                else:
                    break
            return value
    return None


def _problem_code(reason: str) -> str:
    return "no_time_zone" if "time zone" in reason else "invalid_event"


def _property_of(reason: str) -> str:
    word = reason.split(" ", 1)[0]
    return word if word.isupper() else ""
