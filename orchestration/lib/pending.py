"""What a refresh has to do: the landing files the load ledger has not settled, and the loads no publication holds.

A refresh is due when a file landed that the ledger has not seen with its content (the ledger's own rule,
`ingestion.ledger.pending_files`: new paths, corrected re-sends, loads a killed run left `started`, files rejected
under a mapping that has changed since), or when files were loaded after the current publication (a run that stopped
before publishing, or the `ingest` job's loads). When neither holds, the warehouse already publishes everything that
landed, and the refresh has nothing to do.

Nothing here writes: the ledger is copied out of the working warehouse (opened read-only) into an in-memory
database, where `pending_files` may create what it expects, and the working file keeps its size to the byte.
Nothing here imports Dagster; the `landing/new_files` asset (`defs/ingest/assets.py`) turns the answer into the
refresh's gate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion.calendar_ingest import CALENDAR_GLOB
from ingestion.ingest import claim_files
from ingestion.ledger import FINAL_STATUSES, ensure_ledger, pending_files
from ingestion.mapping import Mappings

CALENDAR_TABLE = "calendar_events"  # the ledger's table name for calendar exports


@dataclass(frozen=True)
class PendingWork:
    """What a refresh would take in: files per canonical table, and loads made since the latest publication."""

    new_files: dict[str, list[str]] = field(default_factory=dict)
    """canonical table -> landing paths (relative) the ledger has not settled with their content"""
    unpublished_loads: int = 0
    """files loaded after the current publication (all loaded files when nothing is published yet)"""
    published_at: dt.datetime | None = None
    digest: str = ""
    """SHA-256 of every pending (path, content hash): the data version of the gate's materialization"""

    @property
    def files(self) -> int:
        return sum(len(paths) for paths in self.new_files.values())

    @property
    def nothing(self) -> bool:
        return not self.files and not self.unpublished_loads

    def describe(self) -> str:
        """One line: what the refresh takes in and why."""
        parts = []
        if self.files:
            tables = ", ".join(f"{table} {len(paths)}" for table, paths in sorted(self.new_files.items()) if paths)
            parts.append(f"{self.files:,} new landing file(s) ({tables})")
        if self.unpublished_loads and self.published_at:
            since = f"{self.published_at:%Y-%m-%d %H:%M:%S}"
            parts.append(f"{self.unpublished_loads:,} file(s) loaded since the publication of {since}")
        elif self.unpublished_loads:
            parts.append(f"{self.unpublished_loads:,} loaded file(s) never published")
        return "; ".join(parts) or "nothing new landed"


def ledger_copy(warehouse: duckdb.DuckDBPyConnection | None) -> duckdb.DuckDBPyConnection:
    """An in-memory database holding a copy of the warehouse's load ledger (empty when there is none yet)."""
    memory = duckdb.connect()
    memory.execute("set timezone = 'UTC'")
    ensure_ledger(memory)
    if warehouse is not None and _has_ledger(warehouse):
        ledger = warehouse.sql("select * from raw.load_ledger").to_arrow_table()  # noqa: F841 (read by SQL)
        memory.execute("insert into raw.load_ledger by name select * from ledger")
    return memory


def _has_ledger(con: duckdb.DuckDBPyConnection) -> bool:
    # fetchall: DuckDB 2 refuses the next query on a connection whose last result is not read to its end
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = 'raw' and table_name = 'load_ledger'"
        ).fetchall()[0][0]
    )


def pending_work(
    warehouse: duckdb.DuckDBPyConnection | None,
    landing: Path,
    mappings: Mappings,
    published_at: dt.datetime | None,
) -> PendingWork:
    """The landing files the ledger of `warehouse` (a read-only connection; None before the first run) has not
    settled, and the files it loaded after `published_at` (the current publication's time; None when there is
    none).

    A path the ledger has never settled is new without reading a byte of it: a drop is found by a listing, and the
    loads hash it anyway. Only when every path is known are the files hashed, as the loads would, so that a re-sent
    file with new content counts too: that is the whole cost of a refresh with nothing new (0.3 s for the demo's
    121 MB of landing files)."""
    with ledger_copy(warehouse) as ledger:
        candidates = _candidates(mappings, landing) if landing.exists() else []
        settled = {path for (path,) in ledger.execute(
            f"select distinct path from raw.load_ledger where status in {FINAL_STATUSES}").fetchall()}  # fmt: skip
        new_files: dict[str, list[str]] = defaultdict(list)
        keys: list[str] = []
        for table, _, paths in candidates:
            for path in paths:
                relative = path.relative_to(landing).as_posix()
                if relative not in settled:
                    new_files[table].append(relative)
                    stat = path.stat()
                    keys.append(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}")
        if not new_files:
            for table, signature, paths in candidates:
                for file in pending_files(ledger, paths, landing, table, signature):
                    new_files[table].append(file.relative)
                    keys.append(f"{file.relative}\0{file.content_hash}")
        loaded_after = "status = 'loaded'" + (" and finished_at > ?" if published_at else "")
        unpublished = ledger.execute(
            f"select count(*) from raw.load_ledger where {loaded_after}", [published_at] if published_at else []
        ).fetchall()[0][0]
    keys.append(f"unpublished loads\0{unpublished}\0{published_at}")
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    return PendingWork(dict(new_files), unpublished, published_at, digest)


def _candidates(mappings: Mappings, landing: Path) -> list[tuple[str, tuple[str, str] | None, list[Path]]]:
    """(canonical table, the signature of the mapping that reads them, landing files) as the loads would find them:
    CSV files by the mapping that claims each, calendar exports by their glob."""
    claims = claim_files(mappings, landing)
    found = [
        (table, (str(mapping.definition), mapping.definition_hash), claims.get(mapping.key, []))
        for table in mappings.tables
        for mapping in mappings.for_table(table)
    ]
    calendars = sorted(path for path in landing.glob(CALENDAR_GLOB) if path.is_file())
    return [*found, (CALENDAR_TABLE, None, calendars)]


def publication_time(published: Path) -> dt.datetime | None:
    """When the current publication (`published`, the published DuckDB file) was made; None when there is none."""
    if not published.exists():
        return None
    with duckdb.connect(str(published), read_only=True) as con:
        return con.execute("select max(published_at) from marts.publication").fetchall()[0][0]
