"""Load CSV landing files into their canonical raw table, quarantining the rows that fail, inside DuckDB.

A batch of files with the same header is read once by DuckDB's CSV reader with every column as text, a file index
and a record number (small drops are batched because a statement's fixed cost, not the rows, dominates them); types
and checks are then SQL over that text, so a bad value becomes a quarantine row with a reason instead of an error.
Phone numbers are normalized once per distinct text (see `phones.py`): plain ones in SQL, the others in Python.
Duplicates are looked up only for the few rows that can have them, which keeps a load close to the
cost of DuckDB's bare `read_csv` (measured in `bench/`, see docs/benchmarks.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
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
    missing = [name for name in mapping.source_columns if name not in file_columns]
    extra = [name for name in file_columns if name not in set(mapping.source_columns)]
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

    Runs in the caller's transaction; raises `FileRejected` when a file cannot be read at all (for a batch of more
    than one file the caller retries them one by one, to know which).
    """
    table = mapping.table
    missing = [name for name in mapping.source_columns if name not in file_columns]
    extra = [name for name in file_columns if name not in set(mapping.source_columns)]
    _stage_files(con, files)
    _read_into_stage(con, mapping, [file.pending.path for file in files], file_columns)
    sources = {source.canonical: source for source in mapping.columns}
    _normalize_phones(con, table, sources, file_columns, context.phones, mapping.internal_extensions)
    con.execute(
        "create or replace temp table _problems "
        "(_file integer, _record_number bigint, code varchar, column_name varchar, message varchar)"
    )
    _find_repeats(con, file_columns, _key_text(mapping, file_columns))
    if any(source.timezone_column in file_columns for source in mapping.columns if source.timezone_column):
        # the zones DuckDB knows: a per-row zone is checked against them before `timezone()`, which fails on others
        con.execute("create or replace temp table _zones as select distinct name from pg_timezone_names()")
    plan = _typing_plan(table, sources, file_columns, extra, mapping.internal_extensions)
    # One pass types every row and flags the bad ones; the problems are then worked out for the flagged rows only.
    con.execute(
        f"create or replace temp table _typed as select s._file, s._record_number, {', '.join(plan.selects)}, "
        f"(({plan.bad}) or (s._file, s._record_number) in (select (_file, _record_number) from _problems)) as _bad "
        f"{plan.from_clause}"
    )
    con.execute(
        f"insert into raw.{ident(table.name)} by name select * exclude (_bad, _file), "
        f"{quote_literal(context.loaded_at.isoformat())}::timestamptz as _loaded_at "
        "from _typed where not _bad order by _file, _record_number"
    )
    if con.execute("select count(*) from _typed where _bad").fetchall()[0][0]:
        only_bad = (
            "from _src s semi join (select _file, _record_number from _typed where _bad) b "
            "using (_file, _record_number)"
        )
        con.execute(
            "insert into _problems select _file, _record_number, problem.code, problem.column_name, problem.message "
            f"from (select s._file, s._record_number, unnest(list_filter({plan.problems}, lambda x: x is not null)) "
            f"as problem {plan.from_clause.replace('from _src s', only_bad, 1)} where {plan.bad})"
        )
    quarantined = _quarantine(con, mapping, files, file_columns, context)
    read = dict(con.execute("select _file, count(*) from _src group by _file").fetchall())
    con.execute("drop table _src; drop table _typed; drop table _problems; drop table _phones; drop table _files")
    con.execute("drop table if exists _zones")
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


def _read_into_stage(
    con: duckdb.DuckDBPyConnection, mapping: FileMapping, paths: list[Path], columns: list[str]
) -> None:
    """`_src`: every record as text, with its file index and record number (1-based, in file order).

    `row_number() over ()` is a streaming window in DuckDB and sees the rows in file order (insertion order is
    preserved by default); with several files the reader returns them in list order, so a record's number is its
    position minus the position of its file's first record.
    """
    spec = "{" + ", ".join(f"{quote_literal(name)}: 'VARCHAR'" for name in columns) + "}"
    listing = "[" + ", ".join(quote_literal(str(path)) for path in paths) + "]"
    options = (
        f"columns = {spec}, header = {str(mapping.header).lower()}, delim = {quote_literal(mapping.delimiter)}, "
        f"quote = {quote_literal(mapping.quote)}, escape = {quote_literal(mapping.quote)}, strict_mode = true, "
        "null_padding = false, auto_detect = false, encoding = 'utf-8', allow_quoted_nulls = true"
    )
    if len(paths) == 1:
        query = f"select 0 as _file, row_number() over () as _record_number, * from read_csv({listing}, {options})"
    else:
        query = f"""
            with numbered as (
                select row_number() over () as _position, *
                from read_csv({listing}, {options}, filename = '_path')
            )
            select f.file_index as _file,
                _position - min(_position) over (partition by f.file_index) + 1 as _record_number,
                numbered.* exclude (_position, _path)
            from numbered join _files f on f.path = numbered._path
        """
    try:
        con.execute(f"create or replace temp table _src as {query}")
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
    column: CanonicalColumn, source: ColumnSource, text: str, file_columns: list[str], index: int, joins: list[str]
) -> tuple[str | None, list[tuple[str, str, str]], str]:
    """The zone a timestamp column's local times are read in (SQL, None when the values must carry one), the checks
    on a per-row zone, and SQL that is true when a row's zone is the problem (not its value)."""
    fixed = quote_literal(source.timezone) if source.timezone else None
    if column.type != "timestamp" or source.epoch or not source.timezone_column:
        return fixed, [], "false"
    if source.timezone_column not in file_columns:
        return fixed, [], "false"
    zone_text = f"nullif(trim(s.{ident(source.timezone_column)}), '')"
    alias = f"z{index}"
    joins.append(f"left join _zones {alias} on {alias}.name = {zone_text}")
    zone = f"(case when {zone_text} is null then {fixed or 'null::varchar'} else {alias}.name end)"
    label, where = column.name, quote_literal(source.timezone_column)  # a file column's name: passed as a value
    unknown = f"{text} is not null and {zone_text} is not null and {alias}.name is null"
    checks = [
        (
            unknown,
            "unknown_time_zone",
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
            (
                empty,
                "no_time_zone",
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
    internal: str | None = None,
) -> None:
    """`_phones(text, region, e164, problem)` for the distinct numbers of the batch's phone columns (internal
    extensions, which have no E.164, left out).

    `raw.phone_numbers` remembers every (text, default region) ever parsed, across runs and tables, and every valid
    number under its own E.164 text too: a call record's "+14155550100" is then known from the contact whose phone
    was written "(415) 555-0100", and only numbers never seen before reach `phonenumbers`.
    """
    con.execute(PHONE_NUMBERS_DDL)
    selects = []
    for column in table.columns:
        if column.type != "phone":
            continue
        text = _text(sources[column.name], file_columns)
        if text is None:
            continue
        region = _phone_region(column, sources, file_columns)
        selects.append(
            f"select {_phone_key(text, region)} as text, {region} as region from _src s where {text} is not null "
            f"and not {_is_extension(text, internal)}"
        )
    union = " union all ".join(selects) or "select null::varchar as text, null::varchar as region where false"
    con.execute(f"create or replace temp table _phone_pairs as select distinct text, region from ({union})")
    con.execute(
        "create or replace temp table _phone_new as "
        "select text, region from _phone_pairs anti join raw.phone_numbers using (text, region)"
    )
    # The plain, valid numbers in one vectorized query with `phonenumbers`' rules, the rest through `phonenumbers`.
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
    con.execute(
        "create or replace temp table _phones as "
        "select n.* from raw.phone_numbers n semi join _phone_pairs using (text, region)"
    )
    con.execute("drop table _phone_pairs; drop table _phone_new; drop table _phone_fast")


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
class TypingPlan:
    """SQL fragments over `_src s`: the typed columns, whether a row fails, and why."""

    selects: list[str]
    bad: str
    problems: str
    from_clause: str


def _typing_plan(
    table: CanonicalTable,
    sources: dict[str, ColumnSource],
    file_columns: list[str],
    extra: list[str],
    internal: str | None = None,
) -> TypingPlan:
    """Typed columns and checks for every canonical column; extra file columns go into a map."""
    selects = ["f.relative as _source_file", "f.load_id as _load_id"]
    failures, problems, joins = [], [], ["join _files f on f.file_index = s._file"]
    for index, column in enumerate(table.columns):
        source = sources[column.name]
        text = _text(source, file_columns)
        name = ident(column.name)
        if column.internal_when and text is None:
            # every number of the call is an extension: a call between colleagues
            phones = [_text(sources[phone], file_columns) for phone in column.internal_when]
            both = " and ".join(_is_extension(phone, internal) if phone else "false" for phone in phones)
            selects.append(f"{both if internal else 'false'} as {name}")
            continue
        if text is None:
            selects.append(f"null::{sql_type(column)} as {name}")
            if column.type == "phone":
                selects.append(f"null::varchar as {ident(column.name + '_e164')}")
            continue
        zone, zone_checks, zone_problem = _zone_of(column, source, text, file_columns, index, joins)
        typed = _typed(column, source, text, zone)
        label = column.name
        checks: list[tuple[str, str, str]] = [*zone_checks]  # (condition, code, message SQL)
        if column.required:
            checks.append((f"{text} is null", "missing_value", quote_literal(f"{label} is empty")))
        if column.type == "phone":
            alias = f"p{index}"
            region = _phone_region(column, sources, file_columns)
            joins.append(
                f"left join _phones {alias} on {alias}.text = {_phone_key(text, region)} and {alias}.region = {region}"
            )
            extension = _is_extension(text, internal)
            selects.append(
                f"{text} as {name}, case when {extension} then null else {alias}.e164 end "
                f"as {ident(column.name + '_e164')}"
            )
            checks.append(
                (
                    f"{text} is not null and not {extension} and {alias}.e164 is null",
                    "invalid_phone",
                    f"format('{label} ''{{}}'' {{}}', {text}, {alias}.problem)",
                )
            )
        else:
            selects.append(f"{typed} as {name}")
        if column.type == "timestamp" and not source.format and zone is None and not source.epoch:
            checks.append(
                (
                    f"{text} is not null and {typed} is null and try_cast({text} as timestamp) is not null",
                    "no_time_zone",
                    f"format('{label} ''{{}}'' has no time zone, so it cannot be placed in UTC', {text})",
                )
            )
            checks.append(
                (
                    f"{text} is not null and {typed} is null and try_cast({text} as timestamp) is null",
                    "not_a_timestamp",
                    f"format('{label} ''{{}}'' is not a date-time', {text})",
                )
            )
        elif column.type in ("integer", "decimal", "boolean", "date", "timestamp"):
            what = {
                "integer": "a whole number",
                "decimal": "a number",
                "boolean": "true or false",
                "date": "a date",
                "timestamp": "a date-time",
            }[column.type]
            expected = f" in the format {source.format}" if source.format else ""
            if source.epoch:
                expected = f" as a count of {source.epoch} since 1970"
            code = {"integer": "not_a_number", "decimal": "not_a_number", "boolean": "not_a_boolean"}.get(
                column.type, "not_a_date"
            )
            checks.append(
                (
                    f"{text} is not null and {typed} is null and not {zone_problem}",
                    code,
                    f"format('{label} ''{{}}'' is not {what}{expected}', {text})",
                )
            )
        if column.min is not None:
            checks.append(
                (
                    f"{typed} < {column.min}",
                    "below_minimum",
                    f"format('{label} ''{{}}'' is {'negative' if column.min == 0 else f'below {column.min}'}', {text})",
                )
            )
        if column.allowed:
            allowed = ", ".join(quote_literal(value) for value in column.allowed)
            checks.append(
                (
                    f"{text} is not null and {text} not in ({allowed})",
                    "not_allowed",
                    f"format('{label} ''{{}}'' is not one of the configured values ({', '.join(column.allowed)})', "
                    f"{text})",
                )
            )
        if column.not_after_export:
            bound = "f.export_date" if column.type == "date" else "f.export_bound"
            checks.append(
                (
                    f"{typed} > {bound}",
                    "after_export",
                    f"format('{label} ''{{}}'' is later than the file''s export date {{}}', {text}, "
                    "strftime(f.export_date, '%Y-%m-%d'))",
                )
            )
        for condition, code, message in checks:
            failures.append(f"coalesce({condition}, false)")
            problems.append(f"case when {condition} then {{'code': '{code}', 'column_name': {quote_literal(label)}, "
                            f"'message': {message}}} end")  # fmt: skip
    if extra:
        keys = ", ".join(quote_literal(name) for name in extra)
        values = ", ".join(f"s.{ident(name)}" for name in extra)
        selects.append(f"map([{keys}], [{values}]) as _extra_columns")
    else:
        selects.append("null::map(varchar, varchar) as _extra_columns")
    listing = (
        "[" + ", ".join(problems) + "]"
        if problems
        else "[]::struct(code varchar, column_name varchar, message varchar)[]"
    )
    return TypingPlan(selects, " or ".join(failures) or "false", listing, "from _src s " + " ".join(joins))


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


def _quarantine(
    con: duckdb.DuckDBPyConnection, mapping: FileMapping, files: list[BatchFile], file_columns: list[str],
    context: LoadContext,
) -> dict[int, int]:  # fmt: skip
    """Write the bad rows to `quarantine.<table>` with line numbers and their text as it is in the file; return
    the number of rows quarantined per file index."""
    if not con.execute("select count(*) from _problems").fetchall()[0][0]:
        return {}
    newline_count = " + ".join(
        f"coalesce(length({ident(name)}) - length(replace({ident(name)}, chr(10), '')), 0)" for name in file_columns
    )
    first_line = 2 if mapping.header else 1
    # a record's first line: the header, then one line per earlier record plus the line breaks inside its values
    con.execute(
        f"""
        create or replace temp table _lines as
        with counted as (
            select _file, _record_number, {newline_count} as inner_newlines
            from _src semi join (select distinct _file from _problems) using (_file)
        )
        select _file, _record_number, inner_newlines,
            {first_line} + _record_number - 1
                + coalesce(sum(inner_newlines) over (partition by _file order by _record_number
                    rows between unbounded preceding and 1 preceding), 0) as line
        from counted
        """
    )
    rows = con.execute(
        f"""
        select s._file, s._record_number, l.line, l.inner_newlines, {_key_text(mapping, file_columns) or "null"},
            string_agg(p.message, '; ' order by p.message),
            list(distinct p.code order by p.code),
            list(distinct p.column_name order by p.column_name) filter (where p.column_name <> '')
        from _src s
        join _lines l using (_file, _record_number)
        join _problems p using (_file, _record_number)
        group by all
        order by s._file, s._record_number
        """
    ).fetchall()
    con.execute("drop table _lines")
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
