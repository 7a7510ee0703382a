"""Ingest runs: for one canonical table, find its new landing files, load each in its own transaction, and ledger it.

A file's raw rows, quarantine rows and final ledger row are committed together, so a run that stops half-way leaves
each file either fully loaded or not loaded at all. Each batch is announced in the ledger (`started`) before its
transaction opens; the next run marks what a stopped run left `started` as `interrupted` and loads those files again
(see `ingestion.ledger`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion.csv_loader import (
    BatchFile,
    FileRejected,
    LoadContext,
    check_header,
    drop_batch_tables,
    ensure_tables,
    load_csv_batch,
    optimizers_restored,
)
from ingestion.ledger import (
    FileOutcome,
    LedgerEntry,
    PendingFile,
    ensure_ledger,
    mark_interrupted,
    pending_files,
    record,
    record_started,
    settle,
)
from ingestion.mapping import FileMapping, MappingError, Mappings
from ingestion.phones import PhoneNormalizer


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
    interrupted: list[str] = field(default_factory=list)  # files an earlier run stopped loading, loaded again now

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
            "files_interrupted_earlier": self.interrupted,
        }


Log = Callable[[str], None]


def load_order(mappings: Mappings) -> list[str]:
    """Canonical tables in an order where every table comes after the tables its `load_after` names."""
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
    """The tables that load before `table`: those its `load_after` names."""
    return sorted(set(mappings.tables[table].load_after) - {table})


def files_for(mapping: FileMapping, landing: Path) -> list[Path]:
    """Every file under `landing` matching the mapping's globs."""
    found: set[Path] = set()
    for pattern in mapping.files:
        found.update(path for path in landing.glob(pattern) if path.is_file())
    return sorted(found)


Claims = dict[str, list[Path]]  # FileMapping.key -> the landing files it reads


def claim_files(mappings: Mappings, landing: Path) -> Claims:
    """Which mapping reads each landing file, decided for every table before any file loads.

    A file that mappings of the user's folder and shipped mappings both match is read by the user's: that is how a
    user's mapping takes a file from a shipped one's broader glob. Two mappings of the same folder that match one
    file are a mistake the run cannot settle (a file goes to one table, through one mapping): `MappingError`, naming
    the file and both mappings.
    """
    claimants: dict[Path, list[FileMapping]] = {}
    for mapping in mappings.files:
        for path in files_for(mapping, landing):
            claimants.setdefault(path, []).append(mapping)
    claims: Claims = {mapping.key: [] for mapping in mappings.files}
    conflicts = []
    for path, candidates in sorted(claimants.items()):
        if len(candidates) > 1 and any(candidate.from_user for candidate in candidates):
            candidates = [candidate for candidate in candidates if candidate.from_user]
        if len(candidates) > 1:
            first, second = candidates[:2]
            conflicts.append(
                f"{path.relative_to(landing).as_posix()} is matched by {first.label}, glob "
                f"{_matching_glob(first, path, landing)}, and by {second.label}, glob "
                f"{_matching_glob(second, path, landing)}"
            )
            continue
        claims[candidates[0].key].append(path)
    if conflicts:
        more = f" (and {len(conflicts) - 1} more file(s))" if len(conflicts) > 1 else ""
        raise MappingError(
            f"two mappings claim the same landing file: {conflicts[0]}{more}. Narrow one of the globs, or give the "
            "mapping you keep the `vendor:` of the other to replace it; nothing was loaded"
        )
    return claims


def _matching_glob(mapping: FileMapping, path: Path, landing: Path) -> str:
    return next((pattern for pattern in mapping.files if path in set(landing.glob(pattern))), mapping.files[0])


# Small drops are loaded several files per statement: a statement's fixed cost, not the rows, dominates them.
MAX_BATCH_FILES = 64
MAX_BATCH_BYTES = 256 * 1024 * 1024


def ingest_csv_table(
    con: duckdb.DuckDBPyConnection,
    mappings: Mappings,
    table: str,
    landing: Path,
    *,
    run_id: str | None = None,
    phones: PhoneNormalizer | None = None,
    log: Log | None = None,
    claims: Claims | None = None,
) -> TableLoad:
    """Load every new file of every vendor mapping for `table`; files already in the ledger are left alone, except
    rejected ones whose mapping has changed since. `claims` (from `claim_files`) says which mapping reads which
    file; without it they are worked out here, and two mappings claiming one file stop the run before it loads."""
    claims = claim_files(mappings, landing) if claims is None else claims
    con.execute("set timezone = 'UTC'")
    ensure_ledger(con)
    ensure_tables(con, mappings.tables[table])
    loader = _TableLoader(con, table, run_id, phones or PhoneNormalizer(), log)
    loader.result.interrupted = mark_interrupted(con, table, run_id)
    if log and loader.result.interrupted:
        log(f"{table}: an earlier run stopped while loading {len(loader.result.interrupted)} file(s), marked "
            f"interrupted in the ledger and loaded again: {', '.join(loader.result.interrupted[:5])}")  # fmt: skip
    for mapping in mappings.for_table(table):
        signature = (str(mapping.definition), mapping.definition_hash)
        pending = pending_files(con, claims.get(mapping.key, []), landing, table, signature)
        loader.expected += len(pending)
        batch: list[PendingFile] = []
        batch_columns: list[str] = []
        for file in pending:
            if file.outside is not None:
                loader.finish(mapping, file, outside_rejection(file, landing))
                continue
            if file.same_as is not None:
                loader.finish(mapping, file, FileOutcome(status="skipped", reason=_same_as(file)))
                continue
            try:
                columns, _, _ = check_header(mapping, file.path)
            except FileRejected as rejected:
                loader.finish(mapping, file, _rejected(rejected))
                continue
            if not _ends_with_newline(file.path):
                # DuckDB's multi-file reader lets a file that stops inside a quoted value pass (checked with 2.0.1);
                # read on its own, the same file fails as it should. Complete exports end with a line break.
                loader.load(mapping, [file], columns)
                continue
            size = sum(item.size_bytes for item in batch) + file.size_bytes
            if batch and (columns != batch_columns or len(batch) >= MAX_BATCH_FILES or size > MAX_BATCH_BYTES):
                loader.load(mapping, batch, batch_columns)
                batch = []
            batch.append(file)
            batch_columns = columns
        if batch:
            loader.load(mapping, batch, batch_columns)
        loader.record_finished()
    return loader.result


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return False
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def outside_rejection(file: PendingFile, landing: Path) -> FileOutcome:
    """The ledger's rejection of a landing path that leads out of the landing folder (a link, most often)."""
    return FileOutcome(
        status="rejected",
        reason=f"{file.relative} leads to {file.outside}, outside the landing folder {landing.resolve()}: refused "
        "and not read; copy the file into the landing folder instead of linking to it",
    )


def _same_as(file: PendingFile) -> str:
    return f"same content as {file.same_as}, already loaded"


def _rejected(rejected: FileRejected) -> FileOutcome:
    return FileOutcome(
        status="rejected",
        reason=rejected.reason,
        extra_columns=rejected.extra,
        missing_columns=rejected.missing,
        parser="duckdb",
        detail=rejected.detail,
    )


class _TableLoader:
    """Loads batches of one table's files, each batch in one transaction with the ledger rows of its files."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, table: str, run_id: str | None, phones: PhoneNormalizer, log: Log | None
    ) -> None:
        self.con, self.run_id, self.phones, self.log = con, run_id, phones, log
        self.result = TableLoad(table)
        self.expected = 0
        self.finished: list[LedgerEntry] = []  # ledger rows of files that load nothing, not written yet

    def load(self, mapping: FileMapping, files: list[PendingFile], columns: list[str]) -> None:
        """Announce the batch in the ledger, then load it (see `_load_announced`)."""
        batch = [BatchFile(file, uuid.uuid4().hex) for file in files]
        started_at = dt.datetime.now(dt.UTC)
        entries = [
            self._entry(mapping, item.pending, FileOutcome("loaded"), item.load_id, started_at) for item in batch
        ]
        record_started(self.con, entries)
        with optimizers_restored(self.con):
            self._load_announced(mapping, batch, columns, started_at)

    def _load_announced(
        self, mapping: FileMapping, batch: list[BatchFile], columns: list[str], started_at: dt.datetime
    ) -> None:
        """Load announced files in one transaction that also settles their ledger rows; a batch with an unreadable
        file is rolled back and its files loaded one by one, to know which."""
        self.con.execute("begin transaction")
        try:
            outcomes = load_csv_batch(self.con, mapping, batch, columns, LoadContext(started_at, self.phones))
            settle(
                self.con,
                [
                    self._entry(mapping, item.pending, outcome, item.load_id, started_at)
                    for item, outcome in zip(batch, outcomes, strict=True)
                ],
            )
            self.con.execute("commit")
        except FileRejected as rejected:
            self.con.execute("rollback")
            drop_batch_tables(self.con)
            if len(batch) > 1:  # find the unreadable file(s): the others load on their own
                for item in batch:
                    self._load_announced(mapping, [item], columns, started_at)
                return
            [item] = batch
            outcome = _rejected(rejected)
            settle(self.con, [self._entry(mapping, item.pending, outcome, item.load_id, started_at)])
            self._report(mapping, item.pending, outcome)
            return
        except BaseException:
            # the batch's rows stay `started`: the next run marks them interrupted and loads the files again
            self.con.execute("rollback")
            raise
        for item, outcome in zip(batch, outcomes, strict=True):
            self._report(mapping, item.pending, outcome)

    def finish(self, mapping: FileMapping, file: PendingFile, outcome: FileOutcome) -> None:
        """Ledger a file that loads nothing (skipped or rejected); its row is written by `record_finished`."""
        self.finished.append(self._entry(mapping, file, outcome, uuid.uuid4().hex, dt.datetime.now(dt.UTC)))
        self._report(mapping, file, outcome)

    def record_finished(self) -> None:
        """Write the ledger rows of the files that loaded nothing, in one insert: one commit each made a drop of
        identical exports (a `demo` CRM skips 175 files) cost 1.7 s. A run stopped before leaves no trace of
        them, and the next run decides them again the same way."""
        record(self.con, self.finished)
        self.finished = []

    def _entry(
        self, mapping: FileMapping, file: PendingFile, outcome: FileOutcome, load_id: str, started_at: dt.datetime
    ) -> LedgerEntry:
        return LedgerEntry(
            load_id,
            self.run_id,
            mapping.table.source,
            mapping.table.name,
            mapping.vendor,
            file,
            outcome,
            started_at,
            mapping_file=str(mapping.definition),
            mapping_hash=mapping.definition_hash,
            timezone=mapping.timezone if outcome.status == "loaded" else None,
        )

    def _report(self, mapping: FileMapping, file: PendingFile, outcome: FileOutcome) -> None:
        self.result.files.append(FileReport(file.relative, mapping.vendor, outcome))
        done = len(self.result.files)
        # every file read in a local time zone is logged with it: a wrong zone shifts every time it holds
        zone = mapping.timezone if outcome.status == "loaded" else None
        if self.log and (outcome.status == "rejected" or zone or done % 100 == 0 or done == self.expected):
            detail = f": {outcome.reason}" if outcome.reason else ""
            read_in = f", local times read in {zone}" if zone else ""
            self.log(
                f"{self.result.table} [{done}/{self.expected}] {file.relative} {outcome.status} by {mapping.vendor} "
                f"({outcome.rows_loaded} loaded, {outcome.rows_quarantined} quarantined{read_in}){detail}"
            )
