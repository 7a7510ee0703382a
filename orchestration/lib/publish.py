"""The published copy: what BI tools, finance and the report read, never the working warehouse.

`publish` builds it from the working warehouse after every audit passed: a new DuckDB file holding only the `marts`
and `ml` schemas, with each table's and column's dbt description as a comment and a `marts.publication` row, and
one Parquet file per table. Each is built beside the current one and swapped in with a rename, so a reader sees the
previous publication or the new one, whole, and a reader holding the old file open keeps reading it undisturbed.
Contact e-mails and phone numbers leave the warehouse only as a keyed hash (HMAC-SHA256 with `PUBLISH_PII_KEY`) or,
without a key, masked.

Nothing here imports Dagster; `defs/publish/assets.py` calls `publish`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

PUBLISHED_SCHEMAS = ("marts", "ml")
DATABASE_NAME = "sales.duckdb"
PARQUET_LINK = "parquet"
# the previous Parquet folder stays one publication longer, for a reader that listed the files before the swap
_KEPT_PARQUET_FOLDERS = 2
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PII_KINDS = ("email", "phone")


@dataclass(frozen=True)
class PublishedTable:
    """A table to publish, its description and its columns' descriptions and PII kinds, from the dbt docs."""

    schema: str
    name: str
    description: str = ""
    columns: Mapping[str, str] = field(default_factory=dict)
    pii: Mapping[str, str] = field(default_factory=dict)

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Publication:
    """What one publication wrote."""

    path: Path
    parquet_dir: Path
    run_id: str
    published_at: dt.datetime
    as_of_date: dt.date | None
    row_counts: dict[str, int]
    checks_passed: int
    checks_warned: int
    pii_protection: str
    seconds: float


def safe_identifier(name: str, what: str) -> str:
    """`name` when it is a plain SQL identifier; a ValueError naming `what` otherwise (names from the manifest or
    configuration are written into SQL, and a quote or a semicolon must never get there)."""
    if not _IDENTIFIER.match(name or ""):
        raise ValueError(f"{what} {name!r} is not a plain identifier (letters, digits and _, not first a digit)")
    return name


def tables_to_publish(manifest: Mapping[str, Any], schemas: Sequence[str] = PUBLISHED_SCHEMAS) -> list[PublishedTable]:
    """The dbt models built into `schemas`, and the dbt sources there (the tables the ML assets write into `ml`),
    with their docs and the PII kind of columns tagged `meta: {pii: ...}`."""
    tables = []
    nodes = [*manifest.get("nodes", {}).values(), *manifest.get("sources", {}).values()]
    for node in nodes:
        published_kind = node.get("resource_type") in ("model", "seed", "snapshot", "source")
        if not published_kind or node.get("schema") not in schemas:
            continue
        columns: dict[str, str] = {}
        pii: dict[str, str] = {}
        for name, column in node.get("columns", {}).items():
            columns[name] = column.get("description") or ""
            meta = {**column.get("meta", {}), **column.get("config", {}).get("meta", {})}
            if meta.get("pii"):
                if meta["pii"] not in PII_KINDS:
                    raise ValueError(f"{node['name']}.{name}: pii must be one of {PII_KINDS}, not {meta['pii']!r}")
                pii[name] = meta["pii"]
        tables.append(
            PublishedTable(
                schema=safe_identifier(node["schema"], "schema"),
                name=safe_identifier(node.get("alias") or node.get("identifier") or node["name"], "table"),
                description=node.get("description") or "",
                columns=columns,
                pii=pii,
            )
        )
    return sorted(tables, key=lambda table: table.relation)


def protect(kind: str, value: str | None, key: bytes | None) -> str | None:
    """A contact's e-mail or phone number as it may leave the warehouse.

    With a key: the HMAC-SHA256 of the normalised value (an e-mail lower-cased), hex, so BI can still count and join
    on it but no one without the key can test a guess. Without one: masked, keeping only an e-mail's domain and a
    phone number's last two digits."""
    if value is None:
        return None
    normalised = value.strip().lower() if kind == "email" else value.strip()
    if key:
        return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()
    if kind == "email":
        _, at, domain = normalised.rpartition("@")
        return f"***@{domain}" if at and domain else "***"
    return "+" + "*" * max(len(normalised) - 3, 0) + normalised[-2:]


def publish(
    working: Path,
    out_dir: Path,
    tables: Sequence[PublishedTable],
    *,
    run_id: str,
    checks_passed: int = 0,
    checks_warned: int = 0,
    pii_key: str | None = None,
    also: Callable[[Path], None] | None = None,
    log: Callable[[str], None] = print,
) -> Publication:
    """Publish `tables` of the working warehouse file `working` into `out_dir`, atomically.

    `also` receives the finished DuckDB file before anything is swapped in (the PostgreSQL copy): when it fails,
    nothing of this publication becomes visible."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out_dir)
    building = out_dir / f".{DATABASE_NAME}.{_safe_run_id(run_id)}.building"
    parquet_building = out_dir / f".{PARQUET_LINK}.{_safe_run_id(run_id)}.building"
    key = pii_key.encode() if pii_key else None
    published_at = dt.datetime.now(dt.UTC)
    con = duckdb.connect(str(building))
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{_sql_string(str(working))}' as working (read_only)")
        con.create_function("published_pii", lambda kind, value: protect(kind, value, key), ["VARCHAR", "VARCHAR"],
                            "VARCHAR")  # fmt: skip
        available = _tables_in(con, {table.schema for table in tables})
        row_counts: dict[str, int] = {}
        for table in tables:
            if (table.schema, table.name) not in available:
                continue
            con.execute(f"create schema if not exists {table.schema}")
            columns = _working_columns(con, table)
            con.execute(
                f"create table {table.relation} as select {_select_list(table, columns)} from working.{table.relation}"
            )
            _comment(con, table, columns, key)
            row_counts[table.relation] = con.execute(f"select count(*) from {table.relation}").fetchall()[0][0]
            log(f"published {table.relation}: {row_counts[table.relation]:,} rows")
        as_of = _as_of_date(con)
        _write_publication(con, run_id, published_at, as_of, row_counts, checks_passed, checks_warned, key)
        con.execute("detach working")
        _write_parquet(con, [*row_counts, "marts.publication"], parquet_building)
        con.execute("checkpoint")
    finally:
        con.close()
    if Path(f"{building}.wal").exists():
        raise RuntimeError(f"{building} kept a write-ahead log after closing; not publishing a file that needs one")
    _fsync(building)
    if also is not None:
        also(building)
    parquet_dir = out_dir / f"{PARQUET_LINK}-{_safe_run_id(run_id)}"
    if parquet_dir.exists():
        shutil.rmtree(parquet_dir)
    os.replace(parquet_building, parquet_dir)
    _swap_link(out_dir / PARQUET_LINK, parquet_dir.name)
    os.replace(building, out_dir / DATABASE_NAME)
    _fsync(out_dir)
    _prune_parquet(out_dir, keep=parquet_dir.name)
    return Publication(
        path=out_dir / DATABASE_NAME,
        parquet_dir=out_dir / PARQUET_LINK,
        run_id=run_id,
        published_at=published_at,
        as_of_date=as_of,
        row_counts=row_counts,
        checks_passed=checks_passed,
        checks_warned=checks_warned,
        pii_protection=_pii_protection(key),
        seconds=time.perf_counter() - started,
    )


def _tables_in(con: duckdb.DuckDBPyConnection, schemas: set[str]) -> set[tuple[str, str]]:
    rows = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = 'working' "
        "union select schema_name, view_name from duckdb_views() where database_name = 'working'"
    ).fetchall()
    return {(schema, name) for schema, name in rows if schema in schemas}


def _working_columns(con: duckdb.DuckDBPyConnection, table: PublishedTable) -> list[str]:
    """The columns the table has in the working warehouse, in order (the manifest may document fewer or more)."""
    return [
        name
        for (name,) in con.execute(
            "select column_name from duckdb_columns() where database_name = 'working' and schema_name = ? "
            "and table_name = ? order by column_index",
            [table.schema, table.name],
        ).fetchall()
    ]


def _select_list(table: PublishedTable, columns: list[str]) -> str:
    return ", ".join(
        f"published_pii('{table.pii[name]}', {_quoted(name)}::varchar) as {_quoted(name)}"
        if name in table.pii
        else _quoted(name)
        for name in columns
    )


def _comment(con: duckdb.DuckDBPyConnection, table: PublishedTable, columns: list[str], key: bytes | None) -> None:
    if table.description:
        con.execute(f"comment on table {table.relation} is '{_sql_string(table.description.strip())}'")
    for name, description in table.columns.items():
        if name not in columns:
            continue
        text = description.strip()
        if name in table.pii:
            text = f"{text} Published as {'a keyed hash (HMAC-SHA256)' if key else 'a masked value'}.".strip()
        if text:
            con.execute(f"comment on column {table.relation}.{_quoted(name)} is '{_sql_string(text)}'")


def _as_of_date(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    exists = con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'marts' and table_name = 'dim_date' "
        "and database_name = current_database()"
    ).fetchall()[0][0]
    if not exists:
        return None
    return con.execute("select max(date_day) from marts.dim_date where is_as_of_date").fetchall()[0][0]


def _write_publication(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    published_at: dt.datetime,
    as_of: dt.date | None,
    row_counts: Mapping[str, int],
    checks_passed: int,
    checks_warned: int,
    key: bytes | None,
) -> None:
    con.execute("create schema if not exists marts")
    con.execute(
        """
        create table marts.publication (
            published_at timestamptz not null,
            as_of_date date,
            run_id varchar not null,
            row_counts varchar not null,
            checks_passed integer not null,
            checks_warned integer not null,
            pii_protection varchar not null
        )
        """
    )
    con.execute(
        "insert into marts.publication values (?, ?, ?, ?, ?, ?, ?)",
        [published_at, as_of, run_id, json.dumps(dict(row_counts), sort_keys=True), checks_passed, checks_warned,
         _pii_protection(key)],
    )  # fmt: skip
    for statement in PUBLICATION_COMMENTS:
        con.execute(statement)


PUBLICATION_COMMENTS = [
    "comment on table marts.publication is 'This publication, one row: when it was published, for which as-of date, "
    "by which pipeline run, the rows of each table, and how many audits passed before it was allowed out.'",
    "comment on column marts.publication.published_at is 'When this copy was published (UTC).'",
    "comment on column marts.publication.as_of_date is 'The date the marts describe (the build''s \"today\").'",
    "comment on column marts.publication.run_id is 'The Dagster run that built and published this copy.'",
    "comment on column marts.publication.row_counts is 'Rows per published table, as JSON {\"schema.table\": rows}.'",
    "comment on column marts.publication.checks_passed is 'dbt tests and data-quality audits that passed in the run.'",
    "comment on column marts.publication.checks_warned is 'Checks of severity warn that failed: they annotate, and "
    "block nothing.'",
    "comment on column marts.publication.pii_protection is 'How contact e-mails and phone numbers are published: "
    "keyed hash (HMAC-SHA256) or masked.'",
]


def _pii_protection(key: bytes | None) -> str:
    return "keyed hash (HMAC-SHA256)" if key else "masked"


def _write_parquet(con: duckdb.DuckDBPyConnection, relations: Sequence[str], folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for relation in relations:
        schema, name = relation.split(".")
        (folder / schema).mkdir(parents=True, exist_ok=True)
        target = folder / schema / f"{name}.parquet"
        con.execute(f"copy {relation} to '{_sql_string(str(target))}' (format parquet, compression zstd)")


def _swap_link(link: Path, target: str) -> None:
    """Point `link` at `target` (a sibling folder) in one rename, so a reader resolves the old folder or the new."""
    if link.exists() and not link.is_symlink():
        # not ours to move or delete: it may hold someone's files
        raise RuntimeError(f"{link} is a folder, not the link publish keeps there: move it away and publish again")
    temporary = link.with_name(f".{link.name}.link")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(target, target_is_directory=True)
    os.replace(temporary, link)


def _prune_parquet(out_dir: Path, keep: str) -> None:
    folders = sorted(
        (path for path in out_dir.glob(f"{PARQUET_LINK}-*") if path.is_dir() and not path.is_symlink()),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    kept = {keep, *(path.name for path in folders[:_KEPT_PARQUET_FOLDERS])}
    for path in folders:
        if path.name not in kept:
            shutil.rmtree(path, ignore_errors=True)


def _remove_leftovers(out_dir: Path) -> None:
    """What a publication killed half-way left behind; publications never overlap (the one-writer pool)."""
    for path in out_dir.glob(".*.building*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe_run_id(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", run_id)[:64] or "run"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    return text.replace("'", "''")
