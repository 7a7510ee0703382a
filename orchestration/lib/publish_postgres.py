"""Loads the published DuckDB copy (`published/sales.duckdb`) into PostgreSQL, for BI tools without a DuckDB driver.

Each published schema (`marts`, `ml`) is built whole in a staging schema (`marts__incoming`) and then swapped in
with every other schema in one transaction, so a reader's statement sees one publication, old or new, never a mix
and never an error. PostgreSQL mirrors the published file: a schema the file lacks (or has no table in) is retired
too, because a stale `ml` beside a fresh `marts` would mix two runs, and an empty schema tells a reader nothing that
its absence does not. See docs/postgres_publishing.md for the swap, the reader role and the type mapping.

No Dagster import: `orchestration/defs/publish/assets.py` calls `publish_to_postgres` with the finished file.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import set_json_dumps

INCOMING_SUFFIX = "__incoming"
RETIRED_SUFFIX = "__retired"
# Names from configuration (schemas, the role): lowercase so they need no quoting in a BI tool's SQL, and short
# enough that `<schema>__incoming` still fits PostgreSQL's 63-byte identifiers (longer ones are cut silently).
CONFIGURED_NAME = re.compile(r"[a-z_][a-z0-9_]{0,51}")
MAX_IDENTIFIER_BYTES = 63
# Rows fetched from DuckDB per batch: memory stays bounded by one batch whatever the table's size, while the batch is
# large enough that the per-fetch overhead is lost in the noise.
BATCH_ROWS = 10_000
# Every publisher takes this session advisory lock first, so two publications (two deployments, a manual run beside
# a scheduled one) never build the same staging schema at once: the second waits for the first.
ADVISORY_LOCK_KEY = 7_310_485_226_041_917_512
# The swap waits for ACCESS EXCLUSIVE locks on the old tables, one after another, and readers that arrive meanwhile
# queue behind it. While it waits for one table, readers take the others and then queue for that one: a cycle, which
# PostgreSQL breaks after deadlock_timeout by aborting whichever waiter checks first, and that can be the reader
# (measured with three readers in tight loops: a lock_timeout above deadlock_timeout cost a reader "deadlock
# detected" about once per 1,000 reads, since lock_timeout bounds each table's wait and the reader had queued first).
# So the whole LOCK statement is bounded by statement_timeout at half the server's deadlock_timeout (at most
# SWAP_LOCK_WAIT_MS): no reader waits on the swap long enough for its deadlock check to run. Each table's wait starts
# at SWAP_FIRST_TABLE_WAIT_MS, which breaks such a cycle quickly, and doubles per attempt up to that bound, so a
# long-running query that holds a table is waited out rather than raced.
SWAP_LOCK_WAIT_MS = 500
SWAP_FIRST_TABLE_WAIT_MS = 50
# How long the swap keeps trying before it gives up (SwapFailed: PostgreSQL keeps the previous publication); between
# tries readers run freely for a random pause of at most SWAP_MAX_PAUSE_SECONDS.
SWAP_PATIENCE_SECONDS = 300.0
SWAP_MAX_PAUSE_SECONDS = 0.5


class PublishConfigError(ValueError):
    """A name from configuration (schema, role) or from the published file that cannot be used safely."""


class SwapFailed(RuntimeError):
    """The swap found no moment without a conflicting lock; PostgreSQL keeps the previous publication."""


@dataclass(frozen=True)
class PostgresPublication:
    """What one publication loaded: `rows` by qualified table name (`marts.fct_x`), in load order."""

    rows: dict[str, int]
    retired_schemas: tuple[str, ...]
    """Schemas dropped because the published file no longer has tables in them."""
    seconds: float
    swap_seconds: float
    """How long the swap transaction took (the longest any reader could have waited for it)."""
    swap_attempts: int

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(self.rows)


@dataclass(frozen=True)
class Column:
    name: str
    postgres_type: str
    """For CREATE TABLE, with its modifiers: `numeric(18,2)`, `text[]`."""
    copy_type: str
    """For COPY's binary format, without modifiers: `numeric`, `text[]`."""
    select: str
    """The DuckDB expression that yields a value psycopg writes as `copy_type`."""
    comment: str | None


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    comment: str | None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def publish_to_postgres(
    published_duckdb: Path,
    dsn: str,
    *,
    schemas: Sequence[str] = ("marts", "ml"),
    reader_role: str = "bi_reader",
    log: Callable[[str], None] = print,
) -> PostgresPublication:
    """Replaces `schemas` in the PostgreSQL database at `dsn` with the tables of the same schemas in the finished
    published DuckDB file, atomically, and grants `reader_role` (a NOLOGIN group role, created when missing) read
    access to them. Raises `PublishConfigError` before any SQL runs when a name is unsafe."""
    started = time.perf_counter()
    for schema in schemas:
        _check_configured_name(schema, "schema")
    _check_configured_name(reader_role, "reader role")
    if len(set(schemas)) != len(schemas):
        raise PublishConfigError(f"schema names repeat: {list(schemas)}")

    with duckdb.connect(str(published_duckdb), read_only=True) as duck:
        # Timestamps with time zone reach Python as aware datetimes in this zone; UTC keeps them exact and plain.
        duck.execute("SET TimeZone = 'UTC'")
        tables = {schema: _tables_of(duck, schema, log) for schema in schemas}
        log(f"postgres: publishing {_describe(tables)} to {redacted(dsn)}")
        with psycopg.connect(dsn, autocommit=True, application_name="sales-warehouse publish") as pg:
            pg.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            try:
                _ensure_reader_role(pg, reader_role)
                rows: dict[str, int] = {}
                staged = [schema for schema in schemas if tables[schema]]
                try:
                    for schema in schemas:
                        _drop_schema(pg, schema + RETIRED_SUFFIX)
                        _drop_schema(pg, schema + INCOMING_SUFFIX)
                    for schema in staged:
                        _create_staging_schema(pg, schema, reader_role)
                        for table in tables[schema]:
                            rows[table.qualified] = _load_table(duck, pg, table, log)
                        _grant_read(pg, schema + INCOMING_SUFFIX, reader_role)
                    swap_started = time.perf_counter()
                    attempts = _swap(pg, schemas, staged, log)
                    swap_seconds = time.perf_counter() - swap_started
                except BaseException:
                    for schema in staged:
                        _drop_schema(pg, schema + INCOMING_SUFFIX, quietly=True)
                    raise
                retired = tuple(schema for schema in schemas if schema not in staged and _retired_exists(pg, schema))
                for schema in schemas:
                    _drop_retired(pg, schema, log)
            finally:
                # A broken connection has released the lock already; its error must not hide the original one.
                with suppress(psycopg.Error):
                    pg.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    publication = PostgresPublication(
        rows=rows,
        retired_schemas=retired,
        seconds=time.perf_counter() - started,
        swap_seconds=swap_seconds,
        swap_attempts=attempts,
    )
    log(
        f"postgres: published {len(rows)} tables ({sum(rows.values()):,} rows) in {publication.seconds:.1f} s; "
        f"swap {publication.swap_seconds * 1000:.0f} ms in {attempts} attempt(s)"
        + (f"; retired {', '.join(retired)} (no longer in the published file)" if retired else "")
    )
    return publication


def redacted(dsn: str) -> str:
    """The connection string without its password, for logs (a URL or `key=value` form alike)."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<a connection string that libpq cannot parse>"
    parts.pop("password", None)
    return make_conninfo(**parts)


def _check_configured_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not CONFIGURED_NAME.fullmatch(name):
        raise PublishConfigError(
            f"invalid {what} name {name!r}: use 1-52 characters of lowercase letters, digits and underscores, "
            "starting with a letter or underscore"
        )
    if name.endswith((INCOMING_SUFFIX, RETIRED_SUFFIX)):
        raise PublishConfigError(f"invalid {what} name {name!r}: the suffixes __incoming and __retired are reserved")


def _check_source_name(name: str, where: str) -> None:
    """Names from the published file are quoted, so any character is safe; only length can bite, because
    PostgreSQL cuts longer names silently and two long names could then collide."""
    if len(name.encode()) > MAX_IDENTIFIER_BYTES or "\x00" in name or not name:
        raise PublishConfigError(
            f"{where}: the name {name!r} does not fit PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte names"
        )


# --- reading the DuckDB file ------------------------------------------------------------------------------------


def _duck_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables_of(duck: duckdb.DuckDBPyConnection, schema: str, log: Callable[[str], None]) -> list[Table]:
    """The tables and views of `schema` in the published file (none when the schema is absent), described."""
    found = duck.execute(
        """
        SELECT table_name, comment FROM duckdb_tables()
        WHERE database_name = current_database() AND schema_name = $schema AND NOT temporary
        UNION ALL
        SELECT view_name, comment FROM duckdb_views()
        WHERE database_name = current_database() AND schema_name = $schema AND NOT internal AND NOT temporary
        ORDER BY 1
        """,
        {"schema": schema},
    ).fetchall()
    return [_describe_table(duck, schema, name, comment, log) for name, comment in found]


def _describe_table(
    duck: duckdb.DuckDBPyConnection, schema: str, name: str, comment: str | None, log: Callable[[str], None]
) -> Table:
    _check_source_name(name, f"table {schema}.{name}")
    relation = duck.sql(f"SELECT * FROM {_duck_name(schema)}.{_duck_name(name)} LIMIT 0")
    comments = dict(
        duck.execute(
            "SELECT column_name, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = ? AND table_name = ?",
            [schema, name],
        ).fetchall()
    )
    columns = []
    for column_name, duck_type in zip(relation.columns, relation.types, strict=True):
        _check_source_name(column_name, f"column {schema}.{name}.{column_name}")
        postgres_type, copy_type, select = postgres_column(duck_type, _duck_name(column_name))
        if copy_type == "text" and duck_type.id not in ("varchar", "enum"):
            log(
                f"postgres: {schema}.{name}.{column_name} ({duck_type}) has no PostgreSQL type of its own: "
                "published as text"
            )
        columns.append(Column(column_name, postgres_type, copy_type, select, comments.get(column_name)))
    primary_key = duck.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE database_name = current_database() AND schema_name = ? AND table_name = ? "
        "AND constraint_type = 'PRIMARY KEY'",
        [schema, name],
    ).fetchone()
    return Table(schema, name, tuple(columns), tuple(primary_key[0]) if primary_key else (), comment or None)


# DuckDB type id -> (PostgreSQL type, COPY type, DuckDB cast that makes Python hand over the right value or None).
# Unsigned and 128-bit integers widen to the next type that holds every value; enums become text.
SCALAR_TYPES: dict[str, tuple[str, str, str | None]] = {
    "boolean": ("boolean", "bool", None),
    "tinyint": ("smallint", "int2", None),
    "utinyint": ("smallint", "int2", None),
    "smallint": ("smallint", "int2", None),
    "usmallint": ("integer", "int4", None),
    "integer": ("integer", "int4", None),
    "uinteger": ("bigint", "int8", None),
    "bigint": ("bigint", "int8", None),
    "ubigint": ("numeric(20,0)", "numeric", None),
    "hugeint": ("numeric(39,0)", "numeric", None),
    "uhugeint": ("numeric(39,0)", "numeric", None),
    "float": ("real", "float4", None),
    "double": ("double precision", "float8", None),
    "varchar": ("text", "text", None),
    "enum": ("text", "text", "VARCHAR"),
    "uuid": ("uuid", "uuid", None),
    "blob": ("bytea", "bytea", None),
    "date": ("date", "date", None),
    "time": ("time", "time", None),
    "timestamp": ("timestamp", "timestamp", None),
    # PostgreSQL keeps microseconds: DuckDB rounds nanoseconds to them; seconds and milliseconds widen.
    "timestamp_s": ("timestamp", "timestamp", "TIMESTAMP"),
    "timestamp_ms": ("timestamp", "timestamp", "TIMESTAMP"),
    "timestamp_ns": ("timestamp", "timestamp", "TIMESTAMP"),
    "timestamp with time zone": ("timestamptz", "timestamptz", None),
}
NESTED_TYPES = ("struct", "map", "union")


def postgres_column(duck_type: Any, expression: str) -> tuple[str, str, str]:
    """(PostgreSQL type, COPY type, DuckDB select expression) for a DuckDB column type.

    Lists and fixed-size arrays of a scalar type become PostgreSQL arrays (BI tools show them, `= ANY()` filters
    them); anything nested deeper (structs, maps, lists of lists, which PostgreSQL arrays cannot hold when ragged)
    becomes jsonb, rendered by DuckDB's own `to_json`. A type with no counterpart (INTERVAL, whose months Python
    would turn into 30 days; TIME WITH TIME ZONE; BIT) is published as text in DuckDB's spelling, exactly."""
    if str(duck_type) == "JSON":
        return "jsonb", "jsonb", expression
    if duck_type.id == "decimal":
        precision, scale = (child for _, child in duck_type.children)
        return f"numeric({precision},{scale})", "numeric", expression
    if duck_type.id in ("list", "array"):
        element = dict(duck_type.children)["child"]
        scalar = _scalar(element)
        if scalar is None:
            return "jsonb", "jsonb", f"CAST(to_json({expression}) AS VARCHAR)"
        postgres_type, copy_type, cast = scalar
        if cast is not None or duck_type.id == "array":
            expression = f"CAST({expression} AS {cast or element}[])"
        return f"{postgres_type}[]", f"{copy_type}[]", expression
    if duck_type.id in NESTED_TYPES:
        return "jsonb", "jsonb", f"CAST(to_json({expression}) AS VARCHAR)"
    scalar = _scalar(duck_type)
    if scalar is None:
        return "text", "text", f"CAST({expression} AS VARCHAR)"
    postgres_type, copy_type, cast = scalar
    return postgres_type, copy_type, f"CAST({expression} AS {cast})" if cast else expression


def _scalar(duck_type: Any) -> tuple[str, str, str | None] | None:
    if duck_type.id == "decimal":
        precision, scale = (child for _, child in duck_type.children)
        return f"numeric({precision},{scale})", "numeric", None
    if str(duck_type) == "JSON":
        return None
    return SCALAR_TYPES.get(duck_type.id)


def _batches(duck: duckdb.DuckDBPyConnection, table: Table) -> Iterator[list[tuple[Any, ...]]]:
    selects = ", ".join(column.select for column in table.columns)
    cursor = duck.cursor()
    cursor.execute(f"SELECT {selects} FROM {_duck_name(table.schema)}.{_duck_name(table.name)}")
    while batch := cursor.fetchmany(BATCH_ROWS):
        yield batch
    cursor.close()


# --- writing to PostgreSQL --------------------------------------------------------------------------------------


def _ensure_reader_role(pg: psycopg.Connection, role: str) -> None:
    """Creates the NOLOGIN group role when missing. A DBA may create it beforehand; then the publishing user needs no
    CREATEROLE privilege."""
    if pg.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
        # A concurrent session may create it between the check and the CREATE: that is what we wanted anyway.
        with suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pg.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    database = pg.execute("SELECT current_database()").fetchone()[0]
    # Without the right to grant it (not the database's owner) PostgreSQL only warns; PUBLIC has CONNECT by default.
    pg.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(role)))


def _drop_schema(pg: psycopg.Connection, schema: str, *, quietly: bool = False) -> None:
    try:
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    except psycopg.Error:
        if not quietly:
            raise


def _create_staging_schema(pg: psycopg.Connection, schema: str, reader_role: str) -> None:
    incoming, role = sql.Identifier(schema + INCOMING_SUFFIX), sql.Identifier(reader_role)
    with pg.transaction():
        pg.execute(sql.SQL("CREATE SCHEMA {}").format(incoming))
        pg.execute(
            sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                incoming,
                sql.Literal(
                    f"Published from the sales warehouse (schema {schema}); replaced whole at each publication"
                ),
            )
        )
        # Default privileges belong to the schema and travel with it through the rename.
        pg.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(incoming, role))


def _grant_read(pg: psycopg.Connection, schema: str, reader_role: str) -> None:
    """Granted on the staging schema, before the swap: the tables arrive readable, never a moment without the grant."""
    target, role = sql.Identifier(schema), sql.Identifier(reader_role)
    with pg.transaction():
        pg.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(target, role))
        pg.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(target, role))


def _load_table(
    duck: duckdb.DuckDBPyConnection, pg: psycopg.Connection, table: Table, log: Callable[[str], None]
) -> int:
    started = time.perf_counter()
    target = sql.Identifier(table.schema + INCOMING_SUFFIX, table.name)
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.postgres_type)) for column in table.columns
    )
    rows = 0
    with pg.transaction(), pg.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE TABLE {} ({})").format(target, definitions))
        # jsonb values arrive from DuckDB's to_json as JSON text already: pass them through as they are.
        set_json_dumps(lambda text: text, context=cursor)
        with cursor.copy(sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(target)) as copy:
            copy.set_types([column.copy_type for column in table.columns])
            for batch in _batches(duck, table):
                for row in batch:
                    copy.write_row(row)
                rows += len(batch)
        if table.primary_key:
            # Added after the load: building the index once is faster than maintaining it row by row.
            keys = sql.SQL(", ").join(map(sql.Identifier, table.primary_key))
            cursor.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(target, keys))
        if table.comment:
            cursor.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(target, sql.Literal(table.comment)))
        for column in table.columns:
            if column.comment:
                cursor.execute(
                    sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                        target, sql.Identifier(column.name), sql.Literal(column.comment)
                    )
                )
    # Planner statistics before the first BI query, rather than whenever autovacuum gets to the new table.
    pg.execute(sql.SQL("ANALYZE {}").format(target))
    log(f"postgres: loaded {table.qualified}: {rows:,} rows in {time.perf_counter() - started:.2f} s")
    return rows


def _swap(pg: psycopg.Connection, schemas: Sequence[str], staged: Sequence[str], log: Callable[[str], None]) -> int:
    """Retires every schema in `schemas` and renames the staged ones into their place, in one transaction; the
    number of attempts it took.

    PostgreSQL resolves a statement's table names one at a time, so a bare rename could let a statement that joins
    two tables read one old and one new. Hence the swap first locks every old table ACCESS EXCLUSIVE: a statement
    already reading one finishes first, and one that arrives waits; when the swap commits, the waiting statement
    finds its table's name now belongs to another table and looks it up again (PostgreSQL's
    RangeVarGetRelidExtended), so it reads the new publication only."""
    deadlock_timeout_ms = int(
        pg.execute("SELECT setting FROM pg_settings WHERE name = 'deadlock_timeout'").fetchone()[0]
    )
    lock_wait_ms = max(10, min(SWAP_LOCK_WAIT_MS, deadlock_timeout_ms // 2))
    deadline = time.monotonic() + SWAP_PATIENCE_SECONDS
    attempt = 0
    while True:
        attempt += 1
        try:
            with pg.transaction():
                table_wait_ms = min(lock_wait_ms, SWAP_FIRST_TABLE_WAIT_MS * 2 ** min(attempt - 1, 10))
                _lock_old_tables(pg, schemas, table_wait_ms, lock_wait_ms)
                for schema in schemas:
                    if _schema_exists(pg, schema):
                        pg.execute(
                            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                                sql.Identifier(schema), sql.Identifier(schema + RETIRED_SUFFIX)
                            )
                        )
                    if schema in staged:
                        pg.execute(
                            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                                sql.Identifier(schema + INCOMING_SUFFIX), sql.Identifier(schema)
                            )
                        )
            return attempt
        except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            if time.monotonic() > deadline:
                raise SwapFailed(
                    f"could not lock the published tables in {attempt} attempts over {SWAP_PATIENCE_SECONDS:.0f} s: "
                    "sessions keep reading them (look for long queries or idle transactions in pg_stat_activity); "
                    "PostgreSQL keeps the previous publication"
                ) from None
            if attempt in (1, 10, 100):
                log(f"postgres: swap attempt {attempt} found the tables in use for {lock_wait_ms} ms; retrying")
            # Random so that two retry loops (or a retry and a dashboard's refresh) fall out of step.
            time.sleep(min(SWAP_MAX_PAUSE_SECONDS, 0.02 * 2 ** min(attempt - 1, 10)) * random.uniform(0.5, 1.0))


def _lock_old_tables(pg: psycopg.Connection, schemas: Sequence[str], table_wait_ms: int, lock_wait_ms: int) -> None:
    old_tables = pg.execute(
        """
        SELECT n.nspname, c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        ORDER BY n.nspname, c.relname
        """,
        [list(schemas)],
    ).fetchall()
    if not old_tables:
        return
    names = sql.SQL(", ").join(sql.Identifier(schema, name) for schema, name in old_tables)
    pg.execute(
        "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
        [f"{table_wait_ms}ms", f"{lock_wait_ms}ms"],
    )
    pg.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(names))
    pg.execute("SELECT set_config('statement_timeout', '0', true)")


def _schema_exists(pg: psycopg.Connection, schema: str) -> bool:
    return pg.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone() is not None


def _retired_exists(pg: psycopg.Connection, schema: str) -> bool:
    return _schema_exists(pg, schema + RETIRED_SUFFIX)


def _drop_retired(pg: psycopg.Connection, schema: str, log: Callable[[str], None]) -> None:
    """Drops the previous publication. Views elsewhere that read it go too (they would otherwise keep reading the
    retired tables forever, as a view binds to tables, not names): they are named in the log."""
    retired = schema + RETIRED_SUFFIX
    dependents = pg.execute(
        """
        SELECT DISTINCT dependent.oid::regclass::text
        FROM pg_depend AS d
        JOIN pg_rewrite AS r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
        JOIN pg_class AS dependent ON dependent.oid = r.ev_class
        JOIN pg_class AS referenced ON referenced.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass
        JOIN pg_namespace AS n ON n.oid = referenced.relnamespace
        WHERE n.nspname = %s AND dependent.relnamespace <> referenced.relnamespace
        ORDER BY 1
        """,
        [retired],
    ).fetchall()
    for (view,) in dependents:
        log(f"postgres: dropping {view}: it reads the previous publication of {schema}; recreate it after publishing")
    _drop_schema(pg, retired)


def _describe(tables: dict[str, list[Table]]) -> str:
    return ", ".join(f"{schema} ({len(found)} tables)" for schema, found in tables.items())
