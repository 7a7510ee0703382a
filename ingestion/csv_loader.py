"""Load CSV landing files into their canonical raw table, quarantining the rows that fail, inside DuckDB.

A batch of files with the same header is loaded in one pass: DuckDB's CSV reader reads each file's records as text
with their record number, SQL types them and runs the checks, and one `insert` writes every record straight into
`raw.<table>` (small drops are batched because a statement's fixed cost, not the rows, dominates them). A record
that fails a type or a check is written there too, flagged: its record number negated and its text, column by
column, in `_extra_columns`. Only when the pass flagged rows, or when a key repeats within a file, does a second
pass run, over those rows alone: it works out their problems, writes them to `quarantine.<table>` with a reason,
their line and their text as it is in the file, and deletes them from `raw` before the batch's transaction commits,
so nothing outside the transaction ever sees a flagged row. A file is read again as text only for what that second
pass cannot know from the flagged rows: exact repeats of a record whose key repeats, and the line of a quarantined
record in a file where some record spans several lines. A clean batch writes each row once and no stage table.
Phone numbers are normalized once per distinct text before the pass (see `phones.py`): plain ones in SQL, the
others in Python. The cost is measured against DuckDB's bare `read_csv` in `bench/` (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ingestion.ledger import FileOutcome, PendingFile
from ingestion.mapping import UNSET_ZONE, CanonicalColumn, CanonicalTable, ColumnSource, FileMapping
from ingestion.phones import PhoneNormalizer, e164_sql_for

LINEAGE_DDL = "_extra_columns map(varchar, varchar), _source_file varchar, _record_number bigint, " \
    "_load_id varchar, _loaded_at timestamptz"  # fmt: skip
QUARANTINE_DDL = """
create table if not exists quarantine.{table} (
    _source_file varchar not null,
    _record_number bigint,
    _line bigint,
    record_id varchar,
    reason varchar not null,
    problems varchar[] not null,
    columns varchar[] not null,
    raw_text varchar,
    _load_id varchar not null,
    _loaded_at timestamptz not null,
    detail varchar
)
"""
# `detail`: the library's own error text behind a reason (icalendar's, DuckDB's), kept for debugging; `reason` is
# always a sentence of ours. Added after the first release, so older warehouses get it by `alter table`.
QUARANTINE_MIGRATIONS = "alter table quarantine.{table} add column if not exists detail varchar"
_SQL_TYPES = {
    "id": "varchar",
    "string": "varchar",
    "phone": "varchar",
    "integer": "bigint",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
}
# A zone written after a time of day: "...14:02Z", "...14:02:07.5+01:00", "... 14:02-0500". Anchored on the time so
# that the day of a date-only "2024-03-05" is not read as a "-05" offset.
_ZONE_SUFFIX = r"\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d(:?\d\d)?)$"


def sql_type(column: CanonicalColumn) -> str:
    if column.type == "decimal":
        return f"decimal(18, {column.scale})"
    return _SQL_TYPES[column.type]


def raw_columns(table: CanonicalTable) -> dict[str, str]:
    """The declared columns of `raw.<table>` and their DDL types; a phone column has its `_e164` beside it."""
    columns: dict[str, str] = {}
    for column in table.columns:
        columns[column.name] = sql_type(column)
        if column.type == "phone":
            columns[f"{column.name}_e164"] = "varchar"
    return columns


def ensure_tables(con: duckdb.DuckDBPyConnection, table: CanonicalTable) -> None:
    """Create `raw.<table>` and `quarantine.<table>` when absent."""
    columns = [f'"{name}" {kind}' for name, kind in raw_columns(table).items()]
    con.execute("create schema if not exists raw; create schema if not exists quarantine")
    con.execute(f"create table if not exists raw.{ident(table.name)} ({', '.join(columns)}, {LINEAGE_DDL})")
    ensure_quarantine(con, table.name)


def ensure_quarantine(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create `quarantine.<table>` when absent, with the columns of this release."""
    con.execute(QUARANTINE_DDL.format(table=ident(table)))
    con.execute(QUARANTINE_MIGRATIONS.format(table=ident(table)))


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class LoadContext:
    loaded_at: dt.datetime
    phones: PhoneNormalizer


@dataclass(frozen=True)
class BatchFile:
    """One file of a batch, with the load id its rows and ledger row carry."""

    pending: PendingFile
    load_id: str


class FileRejected(Exception):
    """The file as a whole cannot be read; the message is the ledger's reason."""

    def __init__(
        self, reason: str, *, missing: list[str] | None = None, extra: list[str] | None = None,
        detail: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(reason)
        self.reason = reason
        self.missing = missing or []
        self.extra = extra or []
        self.detail = detail  # the reader's own error text, for debugging (the ledger's `detail`)


def check_header(mapping: FileMapping, path: Path) -> tuple[list[str], list[str], list[str]]:
    """The file's columns, the mapped columns it lacks and the unknown columns it adds; raises `FileRejected` when
    a column a required canonical column comes from is missing, or when the mapping has not named the time zone of
    its local times yet."""
    if mapping.unset_timezones:
        raise FileRejected(
            f"{mapping.definition.name} does not name the time zone its {mapping.vendor} times are written in "
            f"(`timezone: {UNSET_ZONE}` for {', '.join(mapping.unset_timezones)}): set it in your copy of the mapping "
            "in SOURCE_MAPPINGS_DIR, and the file loads on the next run"
        )
    file_columns = _file_columns(mapping, path)
    mapped = mapping.source_columns  # a property that walks every column: read once
    known = set(mapped)
    missing = [name for name in mapped if name not in file_columns]
    extra = [name for name in file_columns if name not in known]
    required_missing = [name for name in mapping.required_source_columns() if name not in file_columns]
    if required_missing:
        raise FileRejected(
            f"missing required column(s) {', '.join(required_missing)}; the file has {', '.join(file_columns)}",
            missing=missing,
            extra=extra,
        )
    return file_columns, missing, extra


def load_csv_batch(
    con: duckdb.DuckDBPyConnection,
    mapping: FileMapping,
    files: list[BatchFile],
    file_columns: list[str],
    context: LoadContext,
) -> list[FileOutcome]:
    """Append the good rows of files sharing one header to `raw.<table>`, the others to `quarantine.<table>`.

    Runs in the caller's transaction, inside `optimizers_restored`; raises `FileRejected` when a file cannot be
    read at all (for a batch of more than one file the caller retries them one by one, to know which).
    """
    table = mapping.table
    mapped = mapping.source_columns
    known = set(mapped)
    missing = [name for name in mapped if name not in file_columns]
    extra = [name for name in file_columns if name not in known]
    _stage_files(con, files)
    sources = {source.canonical: source for source in mapping.columns}
    paths = [(index, file.pending.path) for index, file in enumerate(files)]
    numbers = _records(mapping, paths, file_columns, numbered=False)
    _normalize_phones(con, table, sources, file_columns, context.phones, mapping.internal_extensions, numbers.sql)
    if any(source.timezone_column in file_columns for source in mapping.columns if source.timezone_column):
        # the zones DuckDB knows: a per-row zone is checked against them before `timezone()`, which fails on others
        con.execute("create or replace temp table _zones as select distinct name from pg_timezone_names()")
    plan = _typing_plan(table, sources, file_columns, extra, mapping.internal_extensions)
    loaded_at = f"{quote_literal(context.loaded_at.isoformat())}::timestamptz"
    records = _records(mapping, paths, file_columns)
    _insert_in_file_order(
        con, f"insert into raw.{ident(table.name)} by name {plan.raw_rows(records, file_columns, loaded_at)}"
    )
    batch = _batch_rows(table, loaded_at)
    read, flagged = {}, 0
    for index, rows, bad in con.execute(
        f"select f.file_index, count(*), count(*) filter (where r._record_number < 0) {batch} group by all"
    ).fetchall():
        read[index], flagged = rows, flagged + bad
    repeated = _files_with_repeated_keys(con, mapping, file_columns, batch)
    quarantined: dict[int, int] = {}
    if flagged or repeated:
        quarantined = _hold_back(con, mapping, files, file_columns, plan, loaded_at, read, repeated, context)
    drop_batch_tables(con)
    return [
        FileOutcome(
            status="loaded",
            rows_read=read.get(index, 0),
            rows_loaded=read.get(index, 0) - quarantined.get(index, 0),
            rows_quarantined=quarantined.get(index, 0),
            extra_columns=extra,
            missing_columns=missing,
            parser="duckdb",
        )
        for index in range(len(files))
    ]


def _batch_rows(table: CanonicalTable, loaded_at: str) -> str:
    """SQL `from ... where ...` for the batch's rows in `raw.<table>` (as `r`, their file as `f`).

    The batch's rows are the only ones with its `_loaded_at`: DuckDB's zone maps skip every row group written before,
    so a query over them reads the batch alone however large the table has grown.
    """
    return f"from raw.{ident(table.name)} r join _files f on f.load_id = r._load_id where r._loaded_at = {loaded_at}"


# The temporary tables a batch works in; all dropped when it ends, or when its transaction is rolled back.
BATCH_TABLES = (
    "_files",
    "_zones",
    "_phones",
    "_phone_pairs",
    "_phone_keys",
    "_phone_new",
    "_phone_fast",
    "_src",
    "_held",
    "_problems",
    "_repeats",
    "_lines",
)


@contextlib.contextmanager
def optimizers_restored(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Give the connection its optimizer settings back when a batch ends, however it ends.

    The single pass turns one optimizer off (`_insert_in_file_order`), and a statement that fails aborts the
    transaction, where no setting can change: enter this outside the batch's transaction, so that it restores them
    after the rollback.
    """
    (previous,) = con.execute("select current_setting('disabled_optimizers')").fetchone()
    try:
        yield
    finally:
        con.execute(f"set disabled_optimizers = {quote_literal(previous)}")


def _insert_in_file_order(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run the single pass with the sides of each hash join as written (DuckDB's `build_side_probe_side` off).

    DuckDB estimates 42 rows for a CSV file it reads without sniffing it, and would build its hash tables on the
    batch's records (holding all of them in memory, their file order lost) instead of on the numbers, zones and
    files they look up. Other statements keep the optimizer: their inputs are tables whose size DuckDB knows.
    """
    (previous,) = con.execute("select current_setting('disabled_optimizers')").fetchone()
    disabled = ",".join(filter(None, [previous, "build_side_probe_side"]))
    con.execute(f"set disabled_optimizers = {quote_literal(disabled)}")
    _read(con, sql)  # on failure, `optimizers_restored` sets the optimizers back after the rollback
    con.execute(f"set disabled_optimizers = {quote_literal(previous)}")


def drop_batch_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("; ".join(f"drop table if exists {name}" for name in BATCH_TABLES))


def _stage_files(con: duckdb.DuckDBPyConnection, files: list[BatchFile]) -> None:
    """`_files`: per file of the batch, its index, paths, load id and export date."""
    frame = pa.table(
        {
            "file_index": pa.array(range(len(files)), pa.int32()),
            "path": [str(file.pending.path) for file in files],
            "relative": [file.pending.relative for file in files],
            "load_id": [file.load_id for file in files],
            "export_date": pa.array([file.pending.export_date for file in files], pa.date32()),
        }
    )
    con.register("_files_arrow", frame)
    con.execute(
        "create or replace temp table _files as select *, "
        "(export_date + interval 1 day)::timestamp::timestamptz as export_bound from _files_arrow"
    )
    con.unregister("_files_arrow")


def _file_columns(mapping: FileMapping, path: Path) -> list[str]:
    """The file's columns: its header row, or the mapping's list for a file written without one."""
    if path.stat().st_size == 0:
        if mapping.header:
            raise FileRejected("the file is empty (0 bytes): not even a header row")
        return list(next(iter(mapping.layouts.values())))
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    if b"\x00" in head:
        raise FileRejected("the file holds binary data (NUL bytes): it is not a CSV export")
    text = head.decode("utf-8-sig", errors="replace")
    if not mapping.header:
        return list(_layout_of(mapping, text))
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        raise FileRejected("the first line is blank: expected a header row naming the columns")
    header = next(csv.reader(io.StringIO(first), delimiter=mapping.delimiter, quotechar=mapping.quote))
    header = [name.strip() for name in header]
    if "\ufffd" in first:
        raise FileRejected("the header row is not valid UTF-8")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise FileRejected(f"the header row names column(s) {', '.join(duplicates)} more than once")
    if not set(header) & set(mapping.source_columns):
        raise FileRejected(
            f"the first line does not look like a {mapping.vendor} {mapping.table.name} header: "
            f"none of its fields ({', '.join(header[:6])}{', ...' if len(header) > 6 else ''}) is a known column"
        )
    return header


def _layout_of(mapping: FileMapping, head: str) -> tuple[str, ...]:
    """The columns of a file without a header row: the mapping's layout with as many columns as the first record
    has fields."""
    try:
        first = next(csv.reader(io.StringIO(head), delimiter=mapping.delimiter, quotechar=mapping.quote), [])
    except csv.Error:
        first = []
    if not first:
        return next(iter(mapping.layouts.values()))
    layout = mapping.layout_for(len(first))
    if layout is None:
        counts = sorted({len(columns) for columns in mapping.layouts.values()})
        expected = ", ".join(map(str, counts[:-1])) + " or " + str(counts[-1]) if len(counts) > 1 else str(counts[0])
        raise FileRejected(
            f"the first record has {len(first)} fields; the {mapping.vendor} mapping expects {expected} "
            f"({mapping.definition.name}, `csv: {'layouts' if len(counts) > 1 else 'columns'}:`)"
        )
    return layout


# Up to this many bytes, a batch's files are read by one multi-file reader and numbered by a window that holds the
# batch; above it, each file has a reader of its own, numbered as it streams. Binding a reader costs about 1 ms, which
# the small drops of `demo` feel: 64 files of 0.4 MB (Account) in 58 ms one way and 133 ms the other, 64 files of
# 19 MB (Task) in 0.88 s either way.
SMALL_BATCH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Records:
    """SQL for a relation of the records of some files as text, and whether it yields them in file order."""

    sql: str
    in_file_order: bool


def _records(mapping: FileMapping, files: list[tuple[int, Path]], columns: list[str], numbered: bool = True) -> Records:
    """Every record of the files as text, with its file's index in the batch (`_file`) and its record number
    (`_record_number`, 1-based, in file order); `numbered=False` leaves both out, for a query that needs neither.

    `row_number() over ()` is a streaming window that sees a reader's rows in file order (insertion order is preserved
    by default), and a multi-file reader returns its files in list order. A large batch has a reader per file under
    one `union all`, each numbered as it streams; a small one has one reader, whose position of a record less that of
    its file's first record is its number (see `SMALL_BATCH_BYTES`). DuckDB 2.0.1's multi-file reader lets a file
    that stops inside a quoted value pass, and `ingest_csv_table` loads a file that does not end with a line break
    on its own, where it fails as it should.
    """
    spec = "{" + ", ".join(f"{quote_literal(name)}: 'VARCHAR'" for name in columns) + "}"
    options = (
        f"columns = {spec}, header = {str(mapping.header).lower()}, delim = {quote_literal(mapping.delimiter)}, "
        f"quote = {quote_literal(mapping.quote)}, escape = {quote_literal(mapping.quote)}, strict_mode = true, "
        "null_padding = false, auto_detect = false, encoding = 'utf-8', allow_quoted_nulls = true"
    )
    listing = "[" + ", ".join(quote_literal(str(path)) for _, path in files) + "]"
    if not numbered:
        return Records(f"read_csv({listing}, {options})", in_file_order=True)
    if len(files) > 1 and sum(path.stat().st_size for _, path in files) <= SMALL_BATCH_BYTES:
        return Records(
            f"""(
            select f.file_index as _file,
                _position - min(_position) over (partition by f.file_index) + 1 as _record_number,
                numbered.* exclude (_position, _path)
            from (select row_number() over () as _position, * from read_csv({listing}, {options}, filename = '_path'))
                numbered
            join _files f on f.path = numbered._path
            )""",
            in_file_order=False,
        )
    readers = " union all ".join(
        f"select {index} as _file, row_number() over () as _record_number, * "
        f"from read_csv({quote_literal(str(path))}, {options})"
        for index, path in files
    )
    return Records(f"({readers})", in_file_order=True)


def _read(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run a statement that reads landing files; a file the reader cannot read raises `FileRejected`.

    Running out of the memory budget is not the file's fault: that error goes up as it is, and the file is read
    again by the next run.
    """
    try:
        con.execute(sql)
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error as error:
        raise FileRejected(describe_read_error(str(error)), detail=str(error)) from None


def describe_read_error(message: str) -> str:
    """A sentence for the ledger from DuckDB's CSV error, which spans several lines and names reader options; the
    error itself goes to the ledger's `detail`, never into the reason."""
    found = re.search(r"[Ll]ine[: ]+(\d+)", message)
    line = f" at line {found.group(1)}" if found else ""
    lowered = message.lower()
    if "unicode" in lowered or "utf" in lowered:
        return f"the file is not valid UTF-8{line}: re-export it as UTF-8"
    if "unterminated quote" in lowered:
        return f"the file ends inside a quoted value{line}: it looks cut short"
    if "columns" in lowered and ("expected" in lowered or "too many" in lowered or "missing" in lowered):
        counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
        if counts:
            expected, found_count = counts.groups()
            return f"a record has the wrong number of fields{line}: {found_count}, where {expected} were expected"
        return f"a record has the wrong number of fields{line}"
    return f"the file cannot be read as CSV{line}: see the ledger's detail column for the reader's own message"


def _text(source: ColumnSource, file_columns: list[str]) -> str | None:
    """SQL for a canonical column's text in `_src s` (after value renames), or None when the file does not have it."""
    if source.value is not None:
        return quote_literal(source.value)
    if not source.inputs or any(name not in file_columns for name in source.inputs):
        return None
    if source.sum:
        # the text a message quotes: "12 + 30"; the number is `_number`'s
        operands = ", ".join(f"nullif(s.{ident(name)}, '')" for name in source.sum)
        return f"nullif(concat_ws(' + ', {operands}), '')"
    expression = f"nullif(s.{ident(source.source)}, '')"
    if source.values:
        cases = " ".join(f"when {quote_literal(k)} then {quote_literal(v)}" for k, v in source.values.items())
        expression = f"(case {expression} {cases} else {expression} end)"
    return expression


def _typed(column: CanonicalColumn, source: ColumnSource, text: str, zone: str | None = None) -> str:
    """SQL that turns the text into the column's type, NULL when it cannot; `zone` is SQL for the zone local times
    are read in (a name, per row or fixed), None when the values must carry their own."""
    kind = column.type
    if kind in ("id", "string", "phone"):
        return text
    if kind in ("integer", "decimal") and (source.sum or source.scale is not None):
        return f"try_cast({_number(source, text)} as {sql_type(column)})"
    if kind in ("integer", "decimal", "boolean"):
        return f"try_cast({text} as {sql_type(column)})"
    if kind == "date":
        if source.format:
            return f"try_strptime({text}, {quote_literal(source.format)})::date"
        return f"try_cast({text} as date)"
    if source.epoch:
        # 0001-01-01 to 9999-12-31: DuckDB raises an error, not NULL, outside its range
        if source.epoch == "milliseconds":
            count = f"try_cast({text} as bigint)"
            within = f"{count} between -62135596800000 and 253402300799000"
            return f"(case when {within} then timezone('UTC', epoch_ms({count})) end)"
        count = f"try_cast({text} as double)"
        return f"(case when {count} between -62135596800 and 253402300799 then to_timestamp({count}) end)"
    # timestamp: a zone is required in the value unless the mapping names the zone the vendor writes in
    if source.format:
        parsed = f"try_strptime({text}, {quote_literal(source.format)})"
        if _format_has_zone(source.format):
            return f"{parsed}::timestamptz"
        return f"timezone({zone or 'null'}, {parsed})"
    if zone:
        return (
            f"(case when regexp_matches({text}, '{_ZONE_SUFFIX}') then try_cast({text} as timestamptz) "
            f"else timezone({zone}, try_cast({text} as timestamp)) end)"
        )
    return (
        f"(case when suffix({text}, 'Z') or regexp_matches({text}, '{_ZONE_SUFFIX}') "
        f"then try_cast({text} as timestamptz) end)"
    )


def _format_has_zone(format: str) -> bool:
    return "%z" in format or "%Z" in format


def _number(source: ColumnSource, text: str) -> str:
    """SQL for a derived number: the sum of `sum:`'s columns (an empty one counts as 0, one that is not a number
    makes the sum NULL), times `scale:`."""
    if source.sum:
        operands = [f"nullif(s.{ident(name)}, '')" for name in source.sum]
        numbers = [f"try_cast({operand} as decimal(38, 9))" for operand in operands]
        readable = " and ".join(f"({o} is null or {n} is not null)" for o, n in zip(operands, numbers, strict=True))
        value = f"(case when {readable} then {' + '.join(f'coalesce({n}, 0)' for n in numbers)} end)"
    else:
        value = f"try_cast({text} as decimal(38, 9))"
    if source.scale is not None:
        value = f"({value} * {source.scale})"
    return value


def _zone_of(
    column: CanonicalColumn, source: ColumnSource, file_columns: list[str], index: int, plan: TypingPlan
) -> tuple[str | None, list[Check], str]:
    """The zone a timestamp column's local times are read in (SQL over the text row, None when the values must carry
    one), the checks on a per-row zone, and SQL that is true when a row's zone is the problem (not its value); the
    last two over the derived row, where the column's text is `_text_<index>`."""
    fixed = quote_literal(source.timezone) if source.timezone else None
    if column.type != "timestamp" or source.epoch or not source.timezone_column:
        return fixed, [], "false"
    if source.timezone_column not in file_columns:
        return fixed, [], "false"
    zone_text = f"nullif(trim(s.{ident(source.timezone_column)}), '')"
    alias = f"z{index}"
    plan.joins.append(f"left join _zones {alias} on {alias}.name = {zone_text}")
    plan.derived.append(f"{alias}.name as _zone_{index}")
    zone = f"(case when {zone_text} is null then {fixed or 'null::varchar'} else {alias}.name end)"
    label, where = column.name, quote_literal(source.timezone_column)  # a file column's name: passed as a value
    text = f"s._text_{index}"
    unknown = f"{text} is not null and {zone_text} is not null and s._zone_{index} is null"
    checks = [
        Check(
            unknown,
            "unknown_time_zone",
            label,
            f"format('{label} ''{{}}'': time zone ''{{}}'' (column {{}}) is not a known IANA time zone', "
            f"{text}, {zone_text}, {where})",
        )
    ]
    problem = unknown
    if fixed is None:
        # a value may carry its own zone: with a format that has %z, or an ISO value with an offset
        if source.format:
            carries_zone = "true" if _format_has_zone(source.format) else "false"
        else:
            carries_zone = f"(suffix({text}, 'Z') or regexp_matches({text}, '{_ZONE_SUFFIX}'))"
        empty = f"{text} is not null and {zone_text} is null and not {carries_zone}"
        checks.append(
            Check(
                empty,
                "no_time_zone",
                label,
                f"format('{label} ''{{}}'' has no time zone: column {{}} is empty, so it cannot be placed in "
                f"UTC', {text}, {where})",
            )
        )
        problem = f"({unknown}) or ({empty})"
    return zone, checks, f"coalesce(({problem}), false)"


# One row per (text, region): the loader inserts only pairs it has not found here. No primary key: DuckDB's index
# would cost more to maintain on an initial load of millions of numbers than the anti join that keeps pairs unique.
PHONE_NUMBERS_DDL = """
create table if not exists raw.phone_numbers (
    text varchar not null,
    region varchar not null,
    e164 varchar,
    problem varchar
)
"""


def _normalize_phones(
    con: duckdb.DuckDBPyConnection,
    table: CanonicalTable,
    sources: dict[str, ColumnSource],
    file_columns: list[str],
    phones: PhoneNormalizer,
    internal: str | None,
    records: str,
) -> None:
    """`_phones(written, region, e164, problem)` for the distinct numbers of the batch's phone columns in `records`,
    as written (internal extensions, which have no E.164, left out). The files are read for their numbers alone, all
    phone columns in one scan: DuckDB's reader converts only the columns a query uses.

    `raw.phone_numbers` remembers every (text, default region) ever parsed, across runs and tables, and every valid
    number under its own E.164 text too: a call record's "+14155550100" is then known from the contact whose phone
    was written "(415) 555-0100", and only numbers never seen before reach `phonenumbers`. A number is looked up by
    its key (`_phone_key`), worked out once per distinct number rather than once per row.
    """
    con.execute(PHONE_NUMBERS_DDL)
    numbers, regions = [], []
    for column in table.columns:
        if column.type != "phone":
            continue
        text = _text(sources[column.name], file_columns)
        if text is None:
            continue
        numbers.append(f"case when {_is_extension(text, internal)} then null else {text} end")
        regions.append(_phone_region(column, sources, file_columns))
    if not numbers:
        return
    _read(
        con,
        "create or replace temp table _phone_pairs as select distinct written, region from ("
        f"select unnest([{', '.join(numbers)}]) as written, unnest([{', '.join(regions)}]) as region from {records} s"
        ") where written is not null",
    )
    con.execute(
        "create or replace temp table _phone_keys as "
        f"select written, region, {_phone_key('written', 'region')} as text from _phone_pairs"
    )
    con.execute(
        "create or replace temp table _phone_new as "
        "select distinct text, region from _phone_keys anti join raw.phone_numbers using (text, region)"
    )
    if con.execute("select count(*) from _phone_new").fetchone()[0]:
        _remember_numbers(con, phones)
    con.execute(
        "create or replace temp table _phones as select k.written, k.region, n.e164, n.problem "
        "from _phone_keys k join raw.phone_numbers n using (text, region)"
    )
    con.execute("drop table _phone_pairs; drop table _phone_keys; drop table _phone_new")


def _remember_numbers(con: duckdb.DuckDBPyConnection, phones: PhoneNormalizer) -> None:
    """Add the numbers of `_phone_new` to `raw.phone_numbers`: the plain, valid ones in one vectorized query with
    `phonenumbers`' rules, the rest through `phonenumbers`."""
    con.execute(f"create or replace temp table _phone_fast as {e164_sql_for(con, '_phone_new')}")
    con.execute("insert into raw.phone_numbers select text, region, e164, null from _phone_fast where e164 is not null")
    unknown = con.execute("select text, region from _phone_fast where e164 is null").fetchall()
    rows = phones.normalize((text, region or None) for text, region in unknown) if unknown else []
    frame = pa.table(
        {
            "text": pa.array([text for text, _, _ in rows], pa.string()),
            "region": pa.array([region or "" for _, region, _ in rows], pa.string()),
            "e164": pa.array([answer.e164 for _, _, answer in rows], pa.string()),
            "problem": pa.array([answer.problem for _, _, answer in rows], pa.string()),
        }
    )
    con.register("_phones_arrow", frame)
    con.execute("insert into raw.phone_numbers select * from _phones_arrow")
    con.execute(
        "insert into raw.phone_numbers select e164, '', e164, null from "
        "(select e164 from _phone_fast union select e164 from _phones_arrow) a "
        "where e164 is not null and not exists "
        "(select 1 from raw.phone_numbers n where n.text = a.e164 and n.region = '')"
    )
    con.unregister("_phones_arrow")
    con.execute("drop table _phone_fast")


def _phone_key(text: str, region: str) -> str:
    """Numbers written as bare digits or with '+' and no region are the same international number: look them up
    once ("442079460018" and "+442079460018" are one key)."""
    digits_only = f"regexp_full_match({text}, '\\+?[0-9]+')"
    return f"(case when {region} = '' and {digits_only} then '+' || ltrim({text}, '+') else {text} end)"


def _phone_region(column: CanonicalColumn, sources: dict[str, ColumnSource], file_columns: list[str]) -> str:
    """SQL for the region a number written without a country code is read in: the row's own (`region_from:` of
    the mapping, else the canonical `region_column`), else the mapping's or the canonical default."""
    source = sources[column.name]
    region = quote_literal(source.region or column.region or "")
    if column.region_column:
        region_text = _text(sources[column.region_column], file_columns)
        if region_text is not None:
            region = f"coalesce({region_text}, {region})"
    if source.region_from and source.region_from in file_columns:
        region = f"coalesce(nullif(trim(s.{ident(source.region_from)}), ''), {region})"
    return region


def _is_extension(text: str, internal: str | None) -> str:
    """SQL: the number as written is an internal extension (the mapping's `internal_extensions` regex)."""
    if internal is None:
        return "false"
    return f"coalesce(regexp_full_match({text}, {quote_literal(internal)}), false)"


@dataclass(frozen=True)
class Check:
    """A check on a row: SQL over the derived row (see `TypingPlan`), true when the row fails it, and its problem."""

    condition: str
    code: str
    column: str
    message: str  # SQL for the sentence


@dataclass
class TypingPlan:
    """How records as text become raw rows, as SQL in steps over a relation `s` of text records (`_file`,
    `_record_number` and the file's columns).

    `derived` (with `joins`) types each value once and takes what the checks need from the joined tables; `checks`
    then read those values by name, and a row fails when any does (`_bad`); `values` are the raw columns. Each step
    reads the one before by name, so no typing expression runs twice for a row: DuckDB's common-subexpression
    elimination leaves CASE, AND and OR alone (they short-circuit), and the checks are made of them.
    """

    derived: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=lambda: ["join _files f on f.file_index = s._file"])
    checks: list[Check] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def rows(self, records: str) -> str:
        """SQL: the records with their derived values and `_bad`."""
        bad = " or ".join(f"coalesce({check.condition}, false)" for check in self.checks) or "false"
        derived = ", ".join(["s.*", *self.derived])
        return f"select s.*, {bad} as _bad from (select {derived} from {records} s {' '.join(self.joins)}) s"

    def raw_rows(self, records: Records, file_columns: list[str], loaded_at: str) -> str:
        """SQL: a row of `raw.<table>` per record, in file order. A row that fails carries its record number negated
        and every column's text in `_extra_columns`, for the second pass (see the module's docstring)."""
        names = ", ".join(quote_literal(name) for name in file_columns)
        texts = ", ".join(f"s.{ident(name)}" for name in file_columns)
        order = "" if records.in_file_order else " order by s._file, s._record_number"
        return (
            f"select {', '.join(self.values)}, s._source_file, s._load_id, "
            "case when s._bad then -s._record_number else s._record_number end as _record_number, "
            f"case when s._bad then map([{names}], [{texts}]) else {self._extra_columns()} end as _extra_columns, "
            f"{loaded_at} as _loaded_at from ({self.rows(records.sql)}) s{order}"
        )

    def problems(self, records: str) -> str:
        """SQL: (_file, _record_number, code, column_name, message) for each check each record fails."""
        cases = ", ".join(
            f"case when {check.condition} then {{'code': {quote_literal(check.code)}, "
            f"'column_name': {quote_literal(check.column)}, 'message': {check.message}}} end"
            for check in self.checks
        )
        listing = f"[{cases}]" if cases else "[]::struct(code varchar, column_name varchar, message varchar)[]"
        return (
            "select _file, _record_number, problem.code, problem.column_name, problem.message from ("
            f"select s._file, s._record_number, unnest(list_filter({listing}, lambda x: x is not null)) as problem "
            f"from ({self.rows(records)}) s where s._bad)"
        )

    def _extra_columns(self) -> str:
        if not self.extra:
            return "null::map(varchar, varchar)"
        keys = ", ".join(quote_literal(name) for name in self.extra)
        return f"map([{keys}], [{', '.join(f's.{ident(name)}' for name in self.extra)}])"


_EXPECTED = {
    "integer": "a whole number",
    "decimal": "a number",
    "boolean": "true or false",
    "date": "a date",
    "timestamp": "a date-time",
}


def _typing_plan(
    table: CanonicalTable,
    sources: dict[str, ColumnSource],
    file_columns: list[str],
    extra: list[str],
    internal: str | None = None,
) -> TypingPlan:
    """Typed columns and checks for every canonical column; extra file columns go into a map."""
    plan = TypingPlan(extra=extra)
    plan.derived += [
        "f.relative as _source_file",
        "f.load_id as _load_id",
        "f.export_date as _export_date",
        "f.export_bound as _export_bound",
    ]
    for index, column in enumerate(table.columns):
        source = sources[column.name]
        text = _text(source, file_columns)
        name = ident(column.name)
        if column.internal_when and text is None:
            # every number of the call is an extension: a call between colleagues
            phones = [_text(sources[phone], file_columns) for phone in column.internal_when]
            both = " and ".join(_is_extension(phone, internal) if phone else "false" for phone in phones)
            plan.values.append(f"{both if internal else 'false'} as {name}")
            continue
        if text is None:
            plan.values.append(f"null::{sql_type(column)} as {name}")
            if column.type == "phone":
                plan.values.append(f"null::varchar as {ident(column.name + '_e164')}")
            continue
        plan.derived.append(f"{text} as _text_{index}")
        zone, zone_checks, zone_problem = _zone_of(column, source, file_columns, index, plan)
        value = f"s._text_{index}"  # the text, in the derived row
        typed = value
        if column.type not in ("id", "string", "phone"):
            plan.derived.append(f"{_typed(column, source, text, zone)} as _typed_{index}")
            typed = f"s._typed_{index}"
        label = column.name
        checks: list[Check] = [*zone_checks]
        if column.required:
            checks.append(Check(f"{value} is null", "missing_value", label, quote_literal(f"{label} is empty")))
        if column.type == "phone":
            alias = f"p{index}"
            region = _phone_region(column, sources, file_columns)
            plan.joins.append(f"left join _phones {alias} on {alias}.written = {text} and {alias}.region = {region}")
            plan.derived += [
                f"{_is_extension(text, internal)} as _extension_{index}",
                f"{alias}.e164 as _e164_{index}",
                f"{alias}.problem as _phone_problem_{index}",
            ]
            extension = f"s._extension_{index}"
            plan.values.append(
                f"{value} as {name}, case when {extension} then null else s._e164_{index} end "
                f"as {ident(column.name + '_e164')}"
            )
            checks.append(
                Check(
                    f"{value} is not null and not {extension} and s._e164_{index} is null",
                    "invalid_phone",
                    label,
                    f"format('{label} ''{{}}'' {{}}', {value}, s._phone_problem_{index})",
                )
            )
        else:
            plan.values.append(f"{typed} as {name}")
        if column.type == "timestamp" and not source.format and zone is None and not source.epoch:
            checks.append(
                Check(
                    f"{value} is not null and {typed} is null and try_cast({value} as timestamp) is not null",
                    "no_time_zone",
                    label,
                    f"format('{label} ''{{}}'' has no time zone, so it cannot be placed in UTC', {value})",
                )
            )
            checks.append(
                Check(
                    f"{value} is not null and {typed} is null and try_cast({value} as timestamp) is null",
                    "not_a_timestamp",
                    label,
                    f"format('{label} ''{{}}'' is not a date-time', {value})",
                )
            )
        elif column.type in _EXPECTED:
            expected = f" in the format {source.format}" if source.format else ""
            if source.epoch:
                expected = f" as a count of {source.epoch} since 1970"
            code = {"integer": "not_a_number", "decimal": "not_a_number", "boolean": "not_a_boolean"}.get(
                column.type, "not_a_date"
            )
            checks.append(
                Check(
                    f"{value} is not null and {typed} is null and not {zone_problem}",
                    code,
                    label,
                    f"format('{label} ''{{}}'' is not {_EXPECTED[column.type]}{expected}', {value})",
                )
            )
        if column.min is not None:
            checks.append(
                Check(
                    f"{typed} < {column.min}",
                    "below_minimum",
                    label,
                    f"format('{label} ''{{}}'' is {'negative' if column.min == 0 else f'below {column.min}'}', "
                    f"{value})",
                )
            )
        if column.allowed:
            allowed = ", ".join(quote_literal(choice) for choice in column.allowed)
            checks.append(
                Check(
                    f"{value} is not null and {value} not in ({allowed})",
                    "not_allowed",
                    label,
                    f"format('{label} ''{{}}'' is not one of the configured values ({', '.join(column.allowed)})', "
                    f"{value})",
                )
            )
        if column.not_after_export:
            bound = "s._export_date" if column.type == "date" else "s._export_bound"
            checks.append(
                Check(
                    f"{typed} > {bound}",
                    "after_export",
                    label,
                    f"format('{label} ''{{}}'' is later than the file''s export date {{}}', {value}, "
                    "strftime(s._export_date, '%Y-%m-%d'))",
                )
            )
        plan.checks.extend(checks)
    return plan


def _key_text(mapping: FileMapping, file_columns: list[str]) -> str | None:
    key = mapping.table.key
    source = next((s for s in mapping.columns if s.canonical == key), None) if key else None
    return _text(source, file_columns) if source else None


def _find_repeats(con: duckdb.DuckDBPyConnection, file_columns: list[str], key_text: str | None) -> None:
    """Mark exact repeats of an earlier record of the same file (a re-sent export page) as problems.

    A file whose keys are all distinct has no repeats, and that costs one aggregate to know.
    """
    if key_text is not None:
        repeated_keys = con.execute(
            f"select count(*) from (select _file, {key_text} from _src s group by all having count(*) > 1)"
        ).fetchall()[0][0]
        if not repeated_keys:
            return
    names = ", ".join(ident(name) for name in file_columns)
    con.execute(
        f"""
        create or replace temp table _repeats as
        with hashed as (select _file, _record_number, hash({names}) as row_hash from _src),
        candidates as (select _file, row_hash from hashed group by all having count(*) > 1),
        rows as (
            select s.* from _src s join hashed h using (_file, _record_number) join candidates using (_file, row_hash)
        ),
        ranked as (
            select _file, _record_number,
                first_value(_record_number) over (partition by _file, {names} order by _record_number) as first_record
            from rows
        )
        select _file, _record_number, first_record from ranked where _record_number > first_record
        """
    )
    con.execute(
        "insert into _problems select _file, _record_number, 'duplicate_record', '', "
        "format('repeats record {} of this file exactly', first_record) from _repeats"
    )
    con.execute("drop table _repeats")


def _files_with_repeated_keys(
    con: duckdb.DuckDBPyConnection, mapping: FileMapping, file_columns: list[str], batch: str
) -> list[int]:
    """The files of the batch in which two rows of `raw` share a key (all their values, for a table without one):
    only they can hold an exact repeat of a record, and that costs one aggregate over the batch's rows to know."""
    key = mapping.table.key if _key_text(mapping, file_columns) is not None else None
    values = [*(f"r.{ident(name)}" for name in raw_columns(mapping.table)), "r._extra_columns"]
    group = f"r.{ident(key)}" if key is not None else f"hash({', '.join(values)})"
    return [
        index
        for (index,) in con.execute(
            f"select distinct file_index from (select f.file_index {batch} group by f.file_index, {group} "
            "having count(*) > 1) order by 1"
        ).fetchall()
    ]


def _hold_back(
    con: duckdb.DuckDBPyConnection,
    mapping: FileMapping,
    files: list[BatchFile],
    file_columns: list[str],
    plan: TypingPlan,
    loaded_at: str,
    read: dict[int, int],
    repeated: list[int],
    context: LoadContext,
) -> dict[int, int]:
    """The second pass, over the rows the first one flagged and the exact repeats of an earlier record of their file:
    quarantine them with their problems and take them out of `raw`; the rows quarantined per file index.

    The flagged rows carry their text (`TypingPlan.raw_rows`). A file is read again as text only where that is not
    enough: to compare whole records where a key repeats, and to count the line breaks inside the values of earlier
    records where a record spans several lines (a quarantined record's line is then not its number).
    """
    batch = _batch_rows(mapping.table, loaded_at)
    con.execute(
        "create or replace temp table _problems "
        "(_file integer, _record_number bigint, code varchar, column_name varchar, message varchar)"
    )
    texts = ", ".join(f"r._extra_columns[{quote_literal(name)}] as {ident(name)}" for name in file_columns)
    con.execute(
        "create or replace temp table _held as select f.file_index as _file, -r._record_number as _record_number, "
        f"{texts} {batch} and r._record_number < 0"
    )
    flagged = {index for (index,) in con.execute("select distinct _file from _held").fetchall()}
    spanning = {
        index
        for index in flagged
        if not _one_line_per_record(files[index].pending.path, read.get(index, 0), mapping.header)
    }
    again = sorted(set(repeated) | spanning)
    if again:
        paths = [(index, files[index].pending.path) for index in again]
        _read(con, f"create or replace temp table _src as select * from {_records(mapping, paths, file_columns).sql}")
        _find_repeats(con, file_columns, _key_text(mapping, file_columns))
        con.execute(
            "insert into _held by name select s.* from _src s semi join _problems p using (_file, _record_number) "
            "anti join _held h using (_file, _record_number)"
        )
    con.execute(f"insert into _problems {plan.problems('_held')}")
    _number_lines(con, file_columns, 2 if mapping.header else 1, again)
    quarantined = _quarantine(con, mapping, files, file_columns, context)
    (deleted,) = con.execute(
        f"delete from raw.{ident(mapping.table.name)} r using _files f where f.load_id = r._load_id "
        f"and r._loaded_at = {loaded_at} "
        "and (f.file_index, abs(r._record_number)) in (select (_file, _record_number) from _problems)"
    ).fetchone()
    (left_flagged,) = con.execute(f"select count(*) {batch} and r._record_number < 0").fetchone()
    if deleted != sum(quarantined.values()) or left_flagged:
        # every row of a file is loaded or quarantined, never both or neither: the caller rolls the batch back
        raise RuntimeError(
            f"{mapping.table.name}: {deleted} row(s) taken out of raw for {sum(quarantined.values())} quarantined, "
            f"{left_flagged} flagged row(s) left"
        )
    return quarantined


def _one_line_per_record(path: Path, records: int, header: bool) -> bool:
    """Whether each record of the file is one line of it: as many line breaks as records (and header), the last
    one ending the file. A line break inside a value, or a blank line, makes one more."""
    breaks, last = 0, b""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            breaks, last = breaks + chunk.count(b"\n"), chunk[-1:]
    return last == b"\n" and breaks == records + header


def _number_lines(
    con: duckdb.DuckDBPyConnection, file_columns: list[str], first_line: int, read_again: list[int]
) -> None:
    """`_lines`: the first line of each held record and the line breaks inside its values. A record's first line
    is the header's, then one line per earlier record plus the line breaks inside their values: counted in `_src`
    for the files read again, none in the others (`_one_line_per_record`)."""
    newline_count = " + ".join(
        f"coalesce(length({ident(name)}) - length(replace({ident(name)}, chr(10), '')), 0)" for name in file_columns
    )
    others = f"select _file, _record_number, 0 as inner_newlines, {first_line} + _record_number - 1 as line from _held"
    if not read_again:
        con.execute(f"create or replace temp table _lines as {others}")
        return
    con.execute(
        f"""
        create or replace temp table _lines as
        with counted as (
            select _file, _record_number, {newline_count} as inner_newlines
            from _src semi join (select distinct _file from _held) using (_file)
        )
        select _file, _record_number, inner_newlines,
            {first_line} + _record_number - 1
                + coalesce(sum(inner_newlines) over (partition by _file order by _record_number
                    rows between unbounded preceding and 1 preceding), 0) as line
        from counted
        union all
        {others} where _file not in ({", ".join(map(str, read_again))})
        """
    )


def _quarantine(
    con: duckdb.DuckDBPyConnection, mapping: FileMapping, files: list[BatchFile], file_columns: list[str],
    context: LoadContext,
) -> dict[int, int]:  # fmt: skip
    """Write the held rows to `quarantine.<table>` with their line numbers and their text as it is in the file;
    return the number of rows quarantined per file index."""
    rows = con.execute(
        f"""
        select s._file, s._record_number, l.line, l.inner_newlines, {_key_text(mapping, file_columns) or "null"},
            string_agg(p.message, '; ' order by p.message),
            list(distinct p.code order by p.code),
            list(distinct p.column_name order by p.column_name) filter (where p.column_name <> '')
        from _held s
        join _lines l using (_file, _record_number)
        join _problems p using (_file, _record_number)
        group by all
        order by s._file, s._record_number
        """
    ).fetchall()
    texts: dict[tuple[int, int], str] = {}
    for index, file in enumerate(files):
        spans = {line: line + inner for file_index, _, line, inner, *_ in rows if file_index == index}
        texts.update(((index, line), text) for line, text in _physical_lines(file.pending.path, spans).items())
    frame = pa.table(
        {
            "_source_file": [files[row[0]].pending.relative for row in rows],
            "_record_number": pa.array([row[1] for row in rows], pa.int64()),
            "_line": pa.array([row[2] for row in rows], pa.int64()),
            "record_id": pa.array([row[4] for row in rows], pa.string()),
            "reason": [row[5] for row in rows],
            "problems": [row[6] for row in rows],
            "columns": [row[7] or [] for row in rows],
            "raw_text": pa.array([texts.get((row[0], row[2])) for row in rows], pa.string()),
            "_load_id": [files[row[0]].load_id for row in rows],
            "_loaded_at": pa.array([context.loaded_at] * len(rows), pa.timestamp("us", tz="UTC")),
            "detail": pa.array([None] * len(rows), pa.string()),
        }
    )
    con.register("_quarantine_arrow", frame)
    con.execute(f"insert into quarantine.{ident(mapping.table.name)} by name select * from _quarantine_arrow")
    con.unregister("_quarantine_arrow")
    counts: dict[int, int] = {}
    for row in rows:
        counts[row[0]] = counts.get(row[0], 0) + 1
    return counts


def _physical_lines(path: Path, spans: dict[int, int]) -> dict[int, str]:
    """The text of lines first..last (1-based, inclusive) for each span, read in one pass over the file."""
    out: dict[int, list[str]] = {}
    if not spans:
        return {}
    last_wanted = max(spans.values())
    open_spans: list[int] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number in spans:
                open_spans.append(number)
                out[number] = []
            if open_spans:
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                for start in list(open_spans):
                    out[start].append(text)
                    if number >= spans[start]:
                        open_spans.remove(start)
            if number >= last_wanted:
                break
    return {start: "\n".join(lines).lstrip("\ufeff") for start, lines in out.items()}
