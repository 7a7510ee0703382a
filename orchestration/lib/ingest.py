"""Ingest runs: for one canonical table, find its new landing files, load each in its own transaction, and ledger it.

A file's raw rows, quarantine rows and ledger row are committed together, so a run that stops half-way leaves each
file either fully loaded or not seen at all, and the next run picks up where it stopped.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration.lib.csv_loader import FileRejected, LoadContext, ensure_tables, load_csv_file
from orchestration.lib.ledger import FileOutcome, PendingFile, ensure_ledger, pending_files, record
from orchestration.lib.mapping import FileMapping, Mappings
from orchestration.lib.phones import PhoneNormalizer


@dataclass
class FileReport:
    path: str
    vendor: str
    outcome: FileOutcome


@dataclass
class TableLoad:
    """What one ingest run did to one table."""

    table: str
    files: list[FileReport] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for report in self.files if report.outcome.status == status)

    @property
    def rows_read(self) -> int:
        return sum(report.outcome.rows_read for report in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(report.outcome.rows_loaded for report in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(report.outcome.rows_quarantined for report in self.files)

    def metadata(self) -> dict[str, object]:
        """Figures a person reads in the Dagster UI."""
        rejected = {r.path: r.outcome.reason for r in self.files if r.outcome.status == "rejected"}
        extra = sorted({name for r in self.files for name in r.outcome.extra_columns})
        return {
            "files_loaded": self.count("loaded"),
            "files_skipped": self.count("skipped"),
            "files_rejected": self.count("rejected"),
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "rejected_files": rejected,
            "extra_columns_kept": extra,
        }


Log = Callable[[str], None]


def load_order(mappings: Mappings) -> list[str]:
    """Canonical tables in an order where every table comes after the tables its `references` point to."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in path:
            raise ValueError(f"canonical tables reference each other in a cycle: {' -> '.join(path + (name,))}")
        for parent in parents_of(mappings, name):
            visit(parent, path + (name,))
        order.append(name)

    for name in mappings.tables:
        visit(name, ())
    return order


def parents_of(mappings: Mappings, table: str) -> list[str]:
    """The tables whose ids `table` references (they must load first for the reference check to see them)."""
    targets = {
        target
        for column in mappings.tables[table].columns
        for target in (column.references or {}).values()
        if target != table
    }
    return sorted(targets)


def files_for(mapping: FileMapping, landing: Path) -> list[Path]:
    """Every file under `landing` matching the mapping's globs."""
    found: set[Path] = set()
    for pattern in mapping.files:
        found.update(path for path in landing.glob(pattern) if path.is_file())
    return sorted(found)


def ingest_csv_table(
    con: duckdb.DuckDBPyConnection,
    mappings: Mappings,
    table: str,
    landing: Path,
    *,
    run_id: str | None = None,
    phones: PhoneNormalizer | None = None,
    log: Log | None = None,
) -> TableLoad:
    """Load every new file of every vendor mapping for `table`; files already in the ledger are left alone."""
    con.execute("set timezone = 'UTC'")
    ensure_ledger(con)
    canonical = mappings.tables[table]
    ensure_tables(con, canonical)
    phones = phones or PhoneNormalizer()
    result = TableLoad(table)
    for mapping in mappings.for_table(table):
        pending = pending_files(con, files_for(mapping, landing), landing, table)
        for number, file in enumerate(pending, start=1):
            outcome = _load_one(con, mapping, file, run_id, phones)
            result.files.append(FileReport(file.relative, mapping.vendor, outcome))
            if log and (outcome.status != "loaded" or number % 50 == 0 or number == len(pending)):
                detail = f": {outcome.reason}" if outcome.reason else ""
                log(
                    f"{table} [{number}/{len(pending)}] {file.relative} {outcome.status} "
                    f"({outcome.rows_loaded} loaded, {outcome.rows_quarantined} quarantined){detail}"
                )
    return result


def _load_one(
    con: duckdb.DuckDBPyConnection, mapping: FileMapping, file: PendingFile, run_id: str | None,
    phones: PhoneNormalizer,
) -> FileOutcome:  # fmt: skip
    load_id = uuid.uuid4().hex
    started_at = dt.datetime.now(dt.UTC)
    ledger = {"load_id": load_id, "run_id": run_id, "source": mapping.table.source, "table": mapping.table.name,
              "vendor": mapping.vendor, "pending": file, "started_at": started_at}  # fmt: skip
    if file.same_as is not None:
        outcome = FileOutcome(status="skipped", reason=f"same content as {file.same_as}, already loaded")
        record(con, outcome=outcome, **ledger)
        return outcome
    con.execute("begin transaction")
    try:
        outcome = load_csv_file(con, mapping, file, LoadContext(load_id, started_at, phones))
        record(con, outcome=outcome, **ledger)
        con.execute("commit")
    except FileRejected as rejected:
        con.execute("rollback")
        con.execute("drop table if exists _src; drop table if exists _typed; drop table if exists _problems")
        outcome = FileOutcome(
            status="rejected",
            reason=rejected.reason,
            extra_columns=rejected.extra,
            missing_columns=rejected.missing,
            parser="duckdb",
        )
        record(con, outcome=outcome, **ledger)
    except BaseException:
        con.execute("rollback")
        raise
    return outcome
