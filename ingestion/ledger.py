"""The load ledger: one row per landing file seen, so that every load is incremental and can be run twice.

A file is identified by its path under the landing folder and the SHA-256 of its bytes. A (path, hash) already in
the ledger is not looked at again, with one exception: a file rejected under a mapping is tried again once the
text of the mapping that would read it has changed (another mapping, or the same one edited), because the
fix for a rejection is often in the mapping. A file loaded or skipped is never read again, whatever the mappings
do. A new hash for a known path is a corrected re-send and loads as the next version; a hash already loaded from
another path is recorded as skipped. Each row names the mapping that read the file (`mapping_file`, and the
SHA-256 of its text, `mapping_hash`) and the zone its local times were read in (`timezone`).

A load is announced before it starts: its row is written and committed with status `started`, and the load's own
transaction (raw rows, quarantine rows, the row flipped to its final status) commits all of the file or none of it.
A run that was killed or crashed mid-load therefore leaves a `started` row and no data; the next run to load that
table marks the row `interrupted`, says so in its reason, and reads the file again. The statuses:

- `loaded`: the file's rows are in `raw.<table>` and `quarantine.<table>` (final)
- `skipped`: the same bytes were already loaded from another path; nothing read (final)
- `rejected`: the file as a whole cannot be read, or lies outside the landing folder; nothing kept (final)
- `started`: a load in flight, or one whose run stopped before it finished (only until the next run)
- `interrupted`: an attempt whose run stopped before the file finished loading; nothing of it was kept, and a
  later row of the same path and content says what became of the file

Only `loaded` rows stand for data in the warehouse; readers that count files or export dates filter on it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pyarrow as pa

LEDGER_DDL = """
create schema if not exists raw;
create schema if not exists quarantine;
create table if not exists raw.load_ledger (
    load_id varchar primary key,
    run_id varchar,
    source varchar not null,
    table_name varchar not null,
    vendor varchar,
    path varchar not null,
    content_hash varchar not null,
    size_bytes bigint not null,
    export_date date,
    version integer not null,
    status varchar not null,
    reason varchar,
    rows_read bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    extra_columns varchar[],
    missing_columns varchar[],
    parser varchar,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    detail varchar,
    mapping_file varchar,
    mapping_hash varchar,
    timezone varchar
)
"""
# Columns added after the first release: `detail` (the library's own error text behind a rejection reason, for
# debugging), the mapping that read the file and the SHA-256 of its text, and the time zone its local times were
# read in. Older warehouses get them by `alter table`.
LEDGER_MIGRATIONS = [
    f"alter table raw.load_ledger add column if not exists {column} varchar"
    for column in ("detail", "mapping_file", "mapping_hash", "timezone")
]
_DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STARTED, INTERRUPTED = "started", "interrupted"
FINAL_STATUSES = ("loaded", "skipped", "rejected")
_FINAL = "status in (" + ", ".join(f"'{status}'" for status in FINAL_STATUSES) + ")"


@dataclass
class PendingFile:
    """A landing file that the ledger has not seen with this content."""

    path: Path
    relative: str
    content_hash: str
    size_bytes: int
    version: int
    export_date: dt.date
    same_as: str | None = None  # an already loaded file with the same bytes
    outside: Path | None = None  # where the path really leads when that is outside the landing folder: never read


@dataclass
class FileOutcome:
    """What loading one file did; becomes its ledger row."""

    status: str  # loaded | skipped | rejected (| started while in flight)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    parser: str | None = None
    detail: str | None = None  # the library's own error text behind `reason`, for debugging


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(LEDGER_DDL)
    for migration in LEDGER_MIGRATIONS:
        con.execute(migration)


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def outside_landing(path: Path, landing: Path) -> Path | None:
    """Where `path` really leads (links followed) when that is outside the landing folder; None when it stays in.

    A glob or a symbolic link can name a file anywhere on the machine; only files inside the landing folder are
    landing files, whatever leads to them.
    """
    target = path.resolve()
    return None if target.is_relative_to(landing.resolve()) else target


def export_date_of(path: Path) -> dt.date:
    """The date a file was exported: its `YYYY-MM-DD` drop folder, else the day it was last written (UTC)."""
    for part in reversed(path.parent.parts):
        if _DATE_FOLDER.match(part):
            return dt.date.fromisoformat(part)
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date()


def pending_files(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    landing: Path,
    table: str,
    mapping: tuple[str, str] | None = None,
) -> list[PendingFile]:
    """The files among `paths` whose (path, content) the ledger has not recorded yet, in path order, and those it
    recorded only as rejected under a mapping whose text differs from `mapping`'s (its file and the hash of its
    text; the hash decides)."""
    ensure_ledger(con)
    # per (path, content): whether it was ever loaded or skipped, else the mapping of its latest rejection
    seen: dict[tuple[str, str], tuple[bool, tuple[str | None, str | None], int]] = {
        (path, digest): (bool(settled), (mapping_file, mapping_hash), version)
        for path, digest, settled, mapping_file, mapping_hash, version in con.execute(
            f"""
            select path, content_hash, bool_or(status <> 'rejected'),
                arg_max(mapping_file, finished_at), arg_max(mapping_hash, finished_at), max(version)
            from raw.load_ledger where table_name = ? and {_FINAL} group by all
            """,
            [table],
        ).fetchall()
    }
    loaded_hashes = {
        digest: path
        for path, digest in con.execute(
            "select path, content_hash from raw.load_ledger where table_name = ? and status = 'loaded'", [table]
        ).fetchall()
    }
    versions: dict[str, int] = {}
    for path, count in con.execute(
        f"select path, count(distinct content_hash) from raw.load_ledger where table_name = ? and {_FINAL} "
        "group by path",
        [table],
    ).fetchall():
        versions[path] = count
    pending = []
    for path in sorted(paths):
        relative = path.relative_to(landing).as_posix()
        outside = outside_landing(path, landing)
        # a path that leads out of the landing folder is ledgered by where it leads, without reading a byte of it
        digest = content_hash(path) if outside is None else "outside:" + hashlib.sha256(bytes(outside)).hexdigest()
        retry_version = None
        if (relative, digest) in seen:
            settled, rejected_by, version = seen[(relative, digest)]
            # the mapping's text decides, not where it lies: a checkout moved elsewhere retries nothing
            if settled or mapping is None or rejected_by[1] == mapping[1]:
                continue
            retry_version = version  # the same content, read again under the changed mapping
        same_as = loaded_hashes.get(digest)
        pending.append(
            PendingFile(
                path=path,
                relative=relative,
                content_hash=digest,
                size_bytes=path.stat().st_size if outside is None else 0,
                version=retry_version or versions.get(relative, 0) + 1,
                export_date=export_date_of(path),
                same_as=same_as if outside is None else None,
                outside=outside,
            )
        )
        if retry_version is None:
            versions[relative] = versions.get(relative, 0) + 1
        if same_as is None and outside is None:
            loaded_hashes[digest] = relative  # a second copy later in this same batch is skipped
    return pending


@dataclass
class LedgerEntry:
    """One ledger row to write: a file and what loading it did."""

    load_id: str
    run_id: str | None
    source: str
    table: str
    vendor: str | None
    pending: PendingFile
    outcome: FileOutcome
    started_at: dt.datetime
    mapping_file: str | None = None  # the mapping that read the file
    mapping_hash: str | None = None  # SHA-256 of its text
    timezone: str | None = None  # the zone its local times were read in


def record(con: duckdb.DuckDBPyConnection, entries: list[LedgerEntry]) -> None:
    """Append ledger rows, in the caller's transaction (one insert for the lot)."""
    if not entries:
        return
    finished_at = dt.datetime.now(dt.UTC)
    stamp = pa.timestamp("us", tz="UTC")
    frame = pa.table(
        {
            "load_id": [e.load_id for e in entries],
            "run_id": pa.array([e.run_id for e in entries], pa.string()),
            "source": [e.source for e in entries],
            "table_name": [e.table for e in entries],
            "vendor": pa.array([e.vendor for e in entries], pa.string()),
            "path": [e.pending.relative for e in entries],
            "content_hash": [e.pending.content_hash for e in entries],
            "size_bytes": pa.array([e.pending.size_bytes for e in entries], pa.int64()),
            "export_date": pa.array([e.pending.export_date for e in entries], pa.date32()),
            "version": pa.array([e.pending.version for e in entries], pa.int32()),
            "status": [e.outcome.status for e in entries],
            **_outcome_columns(entries),
            "mapping_file": pa.array([e.mapping_file for e in entries], pa.string()),
            "mapping_hash": pa.array([e.mapping_hash for e in entries], pa.string()),
            "timezone": pa.array([e.timezone for e in entries], pa.string()),
            "started_at": pa.array([e.started_at for e in entries], stamp),
            "finished_at": pa.array([finished_at] * len(entries), stamp),
        }
    )
    con.register("_ledger_rows", frame)
    con.execute("insert into raw.load_ledger by name select * from _ledger_rows")
    con.unregister("_ledger_rows")


def _outcome_columns(entries: list[LedgerEntry]) -> dict[str, pa.Array]:
    """The ledger columns that say what loading each file did (the outcome part of its row)."""
    return {
        "reason": pa.array([e.outcome.reason for e in entries], pa.string()),
        "rows_read": pa.array([e.outcome.rows_read for e in entries], pa.int64()),
        "rows_loaded": pa.array([e.outcome.rows_loaded for e in entries], pa.int64()),
        "rows_quarantined": pa.array([e.outcome.rows_quarantined for e in entries], pa.int64()),
        "extra_columns": pa.array([e.outcome.extra_columns for e in entries], pa.list_(pa.string())),
        "missing_columns": pa.array([e.outcome.missing_columns for e in entries], pa.list_(pa.string())),
        "parser": pa.array([e.outcome.parser for e in entries], pa.string()),
        "detail": pa.array([e.outcome.detail for e in entries], pa.string()),
    }


def record_started(con: duckdb.DuckDBPyConnection, entries: list[LedgerEntry]) -> None:
    """Announce loads before they start: their rows, status `started`, committed at once (the caller holds no
    transaction), so that a run killed during the load leaves a trace the next run reads."""
    record(con, [replace(entry, outcome=FileOutcome(status=STARTED)) for entry in entries])


def settle(con: duckdb.DuckDBPyConnection, entries: list[LedgerEntry]) -> None:
    """Turn announced loads (`record_started`) into what loading them did, in the caller's transaction: the same
    transaction as the rows they wrote, so that the ledger never says `loaded` without them."""
    if not entries:
        return
    frame = pa.table(
        {
            "load_id": [e.load_id for e in entries],
            "status": [e.outcome.status for e in entries],
            **_outcome_columns(entries),
            "timezone": pa.array([e.timezone for e in entries], pa.string()),
        }
    )
    con.register("_ledger_outcomes", frame)
    con.execute(
        """
        update raw.load_ledger as ledger set
            status = o.status, reason = o.reason, rows_read = o.rows_read, rows_loaded = o.rows_loaded,
            rows_quarantined = o.rows_quarantined, extra_columns = o.extra_columns,
            missing_columns = o.missing_columns, parser = o.parser, detail = o.detail, timezone = o.timezone,
            finished_at = now()
        from _ledger_outcomes as o
        where ledger.load_id = o.load_id
        """
    )
    con.unregister("_ledger_outcomes")


def mark_interrupted(con: duckdb.DuckDBPyConnection, table: str, run_id: str | None) -> list[str]:
    """Mark the loads of `table` that an earlier run announced and never finished as `interrupted`, saying so in
    their reason; the paths marked. Their files are then pending again: nothing of them was kept.

    Called before a run loads `table`, when none of its own loads of the table can be in flight: a `started` row
    is then always an earlier run's, stopped by a kill, a crash or an error.
    """
    ensure_ledger(con)
    now = dt.datetime.now(dt.UTC)
    by = f"run {run_id}" if run_id else f"the run of {now:%Y-%m-%d %H:%M:%S} UTC"
    rows = con.execute(
        f"""
        update raw.load_ledger set
            status = '{INTERRUPTED}',
            reason = (case when run_id is null
                        then 'the run of ' || strftime(started_at, '%Y-%m-%d %H:%M:%S') || ' UTC'
                        else 'the run ' || run_id end)
                || ' stopped before this file finished loading (killed or crashed); nothing of it was kept; '
                || 'read again by ' || ?,
            finished_at = ?
        where table_name = ? and status = '{STARTED}'
        returning path
        """,
        [by, now, table],
    ).fetchall()
    return sorted(path for (path,) in rows)
