"""Calendar ingest: expand each new mailbox export and append occurrences, attendees and quarantined events.

Files are parsed on every core by `ics.expand_files` (the fast reader, with icalendar and recurring-ical-events as
the fallback) and written in groups of files, each group in one transaction with its files' ledger rows. Every file
to parse is announced in the ledger (`started`) before the parsing begins, so that a run killed while its workers
parse leaves a trace; the next run marks it `interrupted` and reads the file again (see `ingestion.ledger`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ingestion.csv_loader import ensure_quarantine
from ingestion.ingest import FileReport, Log, TableLoad, outside_rejection
from ingestion.ledger import (
    FileOutcome,
    LedgerEntry,
    PendingFile,
    ensure_ledger,
    export_date_of,
    mark_interrupted,
    outside_landing,
    pending_files,
    record,
    record_started,
    settle,
)

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
    from ingestion.ics import ATTENDEE_SCHEMA, OCCURRENCE_SCHEMA

    con.execute("create schema if not exists raw; create schema if not exists quarantine")
    con.execute(_ddl(OCCURRENCE_SCHEMA, "calendar_events"))
    con.execute(_ddl(ATTENDEE_SCHEMA, "calendar_attendees"))
    ensure_quarantine(con, "calendar_events")


def window_for(paths: list[Path], settings: CalendarWindowSettings):
    """The expansion window: from the configured start to the horizon past the newest export."""
    from ingestion.ics import Window

    newest = max((export_date_of(path) for path in paths), default=dt.date.today())
    start = dt.datetime.fromisoformat(settings.window_start).replace(tzinfo=dt.UTC)
    end = dt.datetime.combine(newest + dt.timedelta(days=settings.horizon_days), dt.time(), dt.UTC)
    return Window(start, end)


# Files are committed in groups: a transaction's fixed cost outweighs a typical mailbox export's few rows.
MAX_GROUP_FILES = 500
MAX_GROUP_ROWS = 200_000


def ingest_calendars(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    settings: CalendarWindowSettings | None = None,
    *,
    run_id: str | None = None,
    log: Log | None = None,
) -> CalendarLoad:
    """Load every calendar export the ledger has not seen; a group of files per transaction, with their ledger rows."""
    from ingestion.ics import expand_files

    settings = settings or CalendarWindowSettings()
    con.execute("set timezone = 'UTC'")
    ensure_ledger(con)
    ensure_calendar_tables(con)
    paths = sorted(path for path in landing.glob(CALENDAR_GLOB) if path.is_file())
    window = window_for([path for path in paths if outside_landing(path, landing) is None], settings)
    result = CalendarLoad("calendar_events")
    result.interrupted = mark_interrupted(con, "calendar_events", run_id)
    if log and result.interrupted:
        log(
            f"calendar: an earlier run stopped while loading {len(result.interrupted)} file(s), marked interrupted "
            "in the ledger and loaded again"
        )
    pending = pending_files(con, paths, landing, "calendar_events")
    to_parse = [file for file in pending if file.same_as is None and file.outside is None]
    by_path = {file.path: file for file in to_parse}
    for file in pending:
        if file.outside is not None or file.same_as is not None:
            if file.outside is not None:
                outcome = outside_rejection(file, landing)
            else:
                outcome = FileOutcome(status="skipped", reason=f"same content as {file.same_as}, already loaded")
            now = dt.datetime.now(dt.UTC)
            record(con, [LedgerEntry(uuid.uuid4().hex, run_id, "calendar", "calendar_events", "icalendar", file,
                                     outcome, now)])  # fmt: skip
            result.files.append(FileReport(file.relative, "icalendar", outcome))
    load_ids = {file.path: uuid.uuid4().hex for file in to_parse}
    started_at = dt.datetime.now(dt.UTC)
    announced = FileOutcome(status="loaded")
    record_started(
        con,
        [_entry(file, announced, load_ids[file.path], run_id, started_at) for file in to_parse],
    )
    group: list[tuple[PendingFile, object, FileOutcome, str]] = []
    rows = 0
    for parsed_file in expand_files([file.path for file in to_parse], window, workers=settings.workers):
        file = by_path[parsed_file.path]
        outcome = _outcome(parsed_file)
        group.append((file, parsed_file, outcome, load_ids[file.path]))
        rows += parsed_file.occurrences.num_rows
        if len(group) >= MAX_GROUP_FILES or rows >= MAX_GROUP_ROWS:
            _commit(con, group, run_id, started_at)
            _report(result, group, len(to_parse), log)
            group, rows = [], 0
    if group:
        _commit(con, group, run_id, started_at)
        _report(result, group, len(to_parse), log)
    return result


def _entry(
    file: PendingFile, outcome: FileOutcome, load_id: str, run_id: str | None, started_at: dt.datetime
) -> LedgerEntry:
    return LedgerEntry(load_id, run_id, "calendar", "calendar_events", "icalendar", file, outcome, started_at)


def _outcome(parsed) -> FileOutcome:
    if parsed.rejected:
        return FileOutcome(status="rejected", reason=parsed.rejected, parser=parsed.parser, detail=parsed.detail)
    return FileOutcome(
        status="loaded",
        rows_read=parsed.events_read,
        rows_loaded=parsed.events_loaded,
        rows_quarantined=len(parsed.quarantined),
        parser=parsed.parser,
    )


def _report(result: CalendarLoad, group: list, expected: int, log: Log | None) -> None:
    for file, parsed, outcome, _ in group:
        result.files.append(FileReport(file.relative, "icalendar", outcome))
        if outcome.status == "loaded":
            result.occurrences += parsed.occurrences.num_rows
            result.attendees += parsed.attendees.num_rows
        if parsed.parser != "fast":
            result.fallback_files.append(file.relative)
        if log and outcome.status != "loaded":
            log(f"calendar {file.relative} {outcome.status}: {outcome.reason}")
    if log:
        log(f"calendar [{len(result.files)}/{expected}] files, {result.occurrences:,} occurrences loaded")


def _with_lineage(parts: list[tuple[pa.Table, str, str]], loaded_at: dt.datetime) -> pa.Table:
    """The rows of a group's files as one contiguous table, each with its file, load id and load time.

    One table of a few large chunks, not hundreds of small ones: DuckDB scans an Arrow table chunk by chunk, and a
    chunk of a few dozen rows costs about as much as a large one.
    """
    table = pa.concat_tables([part for part, _, _ in parts]).combine_chunks()
    table = table.rename_columns([LINEAGE.get(name, name) for name in table.column_names])
    counts = [part.num_rows for part, _, _ in parts]
    index = pa.array(np.repeat(np.arange(len(parts), dtype=np.int32), counts))
    return (
        table.append_column("_source_file", pa.array([relative for _, relative, _ in parts]).take(index))
        .append_column("_load_id", pa.array([load_id for _, _, load_id in parts]).take(index))
        .append_column("_loaded_at", pa.repeat(pa.scalar(loaded_at, pa.timestamp("us", tz="UTC")), table.num_rows))
    )


def _commit(con: duckdb.DuckDBPyConnection, group: list, run_id: str | None, started_at: dt.datetime) -> None:
    """Write a group of parsed, announced files and settle their ledger rows, in one transaction."""
    loaded_at = dt.datetime.now(dt.UTC)
    occurrences, attendees, quarantined = [], [], []
    for file, parsed, outcome, load_id in group:
        if outcome.status != "loaded":
            continue
        occurrences.append((parsed.occurrences, file.relative, load_id))
        attendees.append((parsed.attendees, file.relative, load_id))
        quarantined.extend((file.relative, load_id, event) for event in parsed.quarantined)
    con.execute("begin transaction")
    try:
        for table, parts in (("calendar_events", occurrences), ("calendar_attendees", attendees)):
            if parts and sum(part.num_rows for part, _, _ in parts):
                con.register("_calendar_rows", _with_lineage(parts, loaded_at))
                con.execute(f"insert into raw.{table} by name select * from _calendar_rows")
                con.unregister("_calendar_rows")
        if quarantined:
            con.register("_calendar_quarantine", _quarantine_table(quarantined, loaded_at))
            con.execute("insert into quarantine.calendar_events by name select * from _calendar_quarantine")
            con.unregister("_calendar_quarantine")
        settle(con, [_entry(file, outcome, load_id, run_id, started_at) for file, _, outcome, load_id in group])
        con.execute("commit")
    except BaseException:
        # the group's rows stay `started`: the next run marks them interrupted and reads the files again
        con.execute("rollback")
        raise


def _quarantine_table(quarantined: list, loaded_at: dt.datetime) -> pa.Table:
    """Quarantine rows from the reader's fields: the UID as record id, the problem code, the property at fault."""
    events = [event for _, _, event in quarantined]
    texts = pa.list_(pa.string())
    return pa.table(
        {
            "_source_file": [relative for relative, _, _ in quarantined],
            "_record_number": pa.array([event.record_number for event in events], pa.int64()),
            "_line": pa.array([event.line for event in events], pa.int64()),
            "record_id": pa.array([event.uid for event in events], pa.string()),
            "reason": [event.reason for event in events],
            "problems": pa.array([[event.code] for event in events], texts),
            "columns": pa.array([[event.property] if event.property else [] for event in events], texts),
            "raw_text": [event.raw_text for event in events],
            "detail": pa.array([event.detail for event in events], pa.string()),
            "_load_id": [load_id for _, load_id, _ in quarantined],
            "_loaded_at": pa.array([loaded_at] * len(quarantined), pa.timestamp("us", tz="UTC")),
        }
    )
