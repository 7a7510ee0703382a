"""The PostgreSQL copy of the publication, against a real server (tests/postgres_server.py), never a mock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import duckdb
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from orchestration.lib.publish_postgres import PublishConfigError, publish_to_postgres, redacted


@pytest.fixture
def database(postgres_dsn: str) -> str:
    """A fresh, empty database on the session's server, as a superuser DSN (roles are shared by the server)."""
    name = f"publish_{uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(postgres_dsn, dbname=name)


def write_published(path: Path, publication: int, orders: int = 3, *, ml: bool = True) -> Path:
    """A published file as the publish step writes it: `marts` (and `ml`) tables with comments. Each publication
    has different rows, and `marts.mart_totals` and `ml.publication_check` restate what `marts.fct_orders` holds,
    so a reader can tell a consistent state from a mix."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute(
            """
            CREATE TABLE marts.fct_orders (
                order_id INTEGER PRIMARY KEY, publication INTEGER, amount DECIMAL(18, 2), ordered_date DATE,
                closed_at TIMESTAMP WITH TIME ZONE, is_won BOOLEAN, region VARCHAR
            )
            """
        )
        con.execute(
            """
            INSERT INTO marts.fct_orders
            SELECT i, $publication, CAST((i % 97) * 10 + $publication / 100 AS DECIMAL(18, 2)),
                DATE '2024-01-01' + CAST(i % 365 AS INTEGER),
                CASE WHEN i % 5 = 0 THEN NULL ELSE TIMESTAMPTZ '2024-03-01 12:00:00+00' + to_seconds(i) END,
                i % 3 = 0, CASE WHEN i % 7 = 0 THEN NULL ELSE 'EMEA' END
            FROM range(1, $orders + 1) AS t(i)
            """,
            {"publication": publication, "orders": orders},
        )
        con.execute(
            "CREATE TABLE marts.mart_totals AS SELECT $publication AS publication, sum(amount) AS total_amount, "
            "count(*) AS order_count FROM marts.fct_orders",
            {"publication": publication},
        )
        con.execute("COMMENT ON TABLE marts.fct_orders IS 'One row per order; the grain is order_id.'")
        con.execute("COMMENT ON COLUMN marts.fct_orders.amount IS 'Order amount in the reporting currency (USD).'")
        con.execute("COMMENT ON COLUMN marts.fct_orders.closed_at IS 'When the order closed, in UTC; null while open.'")
        con.execute("COMMENT ON TABLE marts.mart_totals IS 'One row: the totals of fct_orders.'")
        if ml:
            con.execute("CREATE SCHEMA ml")
            con.execute(
                "CREATE TABLE ml.publication_check AS SELECT $publication AS publication", {"publication": publication}
            )
    return path


def columns_of(pg: psycopg.Connection, schema: str, table: str) -> dict[str, str]:
    return dict(
        pg.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a
            WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """,
            [f"{schema}.{table}"],
        ).fetchall()
    )


def schema_names(pg: psycopg.Connection) -> set[str]:
    return {name for (name,) in pg.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'")}


def reader_dsn(database: str, role: str = "bi_reader") -> str:
    """A LOGIN user that is a member of the read-only group role, as a BI tool's connection would be."""
    user = f"analyst_{uuid4().hex[:8]}"
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(sql.Identifier(user), sql.Identifier(role)))
    return make_conninfo(database, user=user)


def test_a_publication_arrives_in_postgres_with_its_rows_types_and_comments(tmp_path: Path, database: str):
    published = write_published(tmp_path / "sales.duckdb", publication=1, orders=10)
    with duckdb.connect(str(published)) as con:
        con.execute("CREATE TYPE mood AS ENUM ('calm', 'busy')")
        con.execute(
            """
            CREATE TABLE marts.dim_oddities AS SELECT
                CAST(170141183460469231731687303715884105727 AS HUGEINT) AS huge, CAST('busy' AS mood) AS mood,
                [1, NULL, 3] AS numbers, ['a', 'b'] AS labels, {'x': 1, 'y': 'two'} AS shape, [[1], [2, 3]] AS ragged,
                INTERVAL 1 MONTH AS period, TIMESTAMP_NS '2024-01-01 00:00:00.123456789' AS at_ns,
                CAST(2.5 AS DOUBLE) AS ratio, CAST(255 AS UTINYINT) AS small
            """
        )
    log: list[str] = []

    publication = publish_to_postgres(published, database + " password=hunter2", log=log.append)

    assert publication.tables == ("marts.dim_oddities", "marts.fct_orders", "marts.mart_totals", "ml.publication_check")
    assert publication.rows["marts.fct_orders"] == 10
    with psycopg.connect(database) as pg:
        assert columns_of(pg, "marts", "fct_orders") == {
            "order_id": "integer",
            "publication": "integer",
            "amount": "numeric(18,2)",
            "ordered_date": "date",
            "closed_at": "timestamp with time zone",
            "is_won": "boolean",
            "region": "text",
        }
        assert pg.execute("SELECT * FROM marts.fct_orders WHERE order_id IN (5, 7) ORDER BY order_id").fetchall() == [
            (5, 1, Decimal("50.01"), date(2024, 1, 6), None, False, "EMEA"),
            (7, 1, Decimal("70.01"), date(2024, 1, 8), datetime(2024, 3, 1, 12, 0, 7, tzinfo=UTC), False, None),
        ]
        assert pg.execute("SELECT total_amount, order_count FROM marts.mart_totals").fetchone() == (
            Decimal("550.10"),
            10,
        )
        assert columns_of(pg, "marts", "dim_oddities") == {
            "huge": "numeric(39,0)",
            "mood": "text",
            "numbers": "integer[]",
            "labels": "text[]",
            "shape": "jsonb",
            "ragged": "jsonb",
            "period": "text",
            "at_ns": "timestamp without time zone",
            "ratio": "double precision",
            "small": "smallint",
        }
        assert pg.execute("SELECT * FROM marts.dim_oddities").fetchone() == (
            Decimal(2**127 - 1),
            "busy",
            [1, None, 3],
            ["a", "b"],
            {"x": 1, "y": "two"},
            [[1], [2, 3]],
            "1 month",
            datetime(2024, 1, 1, 0, 0, 0, 123457),
            2.5,
            255,
        )
        assert pg.execute("SELECT obj_description('marts.fct_orders'::regclass, 'pg_class')").fetchone() == (
            "One row per order; the grain is order_id.",
        )
        assert pg.execute(
            "SELECT col_description('marts.fct_orders'::regclass, attnum) FROM pg_attribute "
            "WHERE attrelid = 'marts.fct_orders'::regclass AND attname IN ('amount', 'closed_at') ORDER BY attnum"
        ).fetchall() == [
            ("Order amount in the reporting currency (USD).",),
            ("When the order closed, in UTC; null while open.",),
        ]
        assert pg.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'marts.fct_orders'::regclass "
            "AND contype = 'p'"
        ).fetchone() == ("PRIMARY KEY (order_id)",)
    assert any("marts.fct_orders: 10 rows" in line for line in log)
    assert not any("hunter2" in line for line in log)


def test_the_reader_role_can_select_but_cannot_insert_or_create(tmp_path: Path, database: str):
    publish_to_postgres(write_published(tmp_path / "sales.duckdb", publication=1), database, log=lambda _: None)

    with psycopg.connect(reader_dsn(database), autocommit=True) as reader:
        assert reader.execute("SELECT count(*) FROM marts.fct_orders").fetchone() == (3,)
        assert reader.execute("SELECT publication FROM ml.publication_check").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("INSERT INTO marts.mart_totals (publication) VALUES (99)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("CREATE TABLE marts.scratch (x integer)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("CREATE TABLE public.scratch (x integer)")
    with psycopg.connect(database) as pg:
        assert pg.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'bi_reader'").fetchone() == (False,)


def test_publishing_again_replaces_the_tables_and_leaves_no_staging_or_retired_schema(tmp_path: Path, database: str):
    publish_to_postgres(write_published(tmp_path / "first.duckdb", publication=1, orders=3), database, log=print)
    second = write_published(tmp_path / "second.duckdb", publication=2, orders=5)
    with duckdb.connect(str(second)) as con:
        con.execute("CREATE TABLE marts.dim_region AS SELECT 'EMEA' AS region")
        con.execute("DROP TABLE marts.mart_totals")

    publication = publish_to_postgres(second, database, log=print)

    assert publication.tables == ("marts.dim_region", "marts.fct_orders", "ml.publication_check")
    with psycopg.connect(database) as pg:
        assert pg.execute("SELECT count(*), min(publication), max(publication) FROM marts.fct_orders").fetchone() == (
            5,
            2,
            2,
        )
        assert pg.execute("SELECT to_regclass('marts.mart_totals')").fetchone() == (None,)
        assert schema_names(pg) == {"public", "information_schema", "marts", "ml"}
        assert pg.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'bi_reader'").fetchone() == (1,)
    with psycopg.connect(reader_dsn(database)) as reader:
        assert reader.execute("SELECT region FROM marts.dim_region").fetchone() == ("EMEA",)


def test_a_published_file_without_ml_retires_the_ml_schema_of_the_previous_publication(tmp_path: Path, database: str):
    publish_to_postgres(write_published(tmp_path / "with_ml.duckdb", publication=1), database, log=print)

    without_ml = publish_to_postgres(write_published(tmp_path / "no_ml.duckdb", 2, ml=False), database, log=print)
    empty_ml = write_published(tmp_path / "empty_ml.duckdb", publication=3, ml=False)
    with duckdb.connect(str(empty_ml)) as con:
        con.execute("CREATE SCHEMA ml")
    with_empty_ml = publish_to_postgres(empty_ml, database, log=print)

    assert without_ml.retired_schemas == ("ml",)
    assert with_empty_ml.retired_schemas == ()
    assert with_empty_ml.tables == ("marts.fct_orders", "marts.mart_totals")
    with psycopg.connect(database) as pg:
        assert schema_names(pg) == {"public", "information_schema", "marts"}
        assert pg.execute("SELECT publication FROM marts.mart_totals").fetchone() == (3,)


@pytest.mark.parametrize(
    ("schemas", "role", "named"),
    [
        (("marts; drop table x",), "bi_reader", "marts; drop table x"),
        (("marts",), 'bi_reader"; drop role postgres; --', "bi_reader"),
        (("Marts",), "bi_reader", "Marts"),
        (("marts", "marts__incoming"), "bi_reader", "marts__incoming"),
        (("m" * 53,), "bi_reader", "m" * 53),
        (("",), "bi_reader", "''"),
    ],
)
def test_a_bad_schema_or_role_name_is_rejected_before_any_sql_runs(
    tmp_path: Path, schemas: tuple[str, ...], role: str, named: str
):
    nowhere = "host=/nonexistent/socket dbname=nothing"

    with pytest.raises(PublishConfigError, match="invalid (schema|reader role) name") as rejected:
        publish_to_postgres(tmp_path / "missing.duckdb", nowhere, schemas=schemas, reader_role=role, log=print)

    assert named in str(rejected.value)


def test_the_logged_connection_string_never_shows_the_password():
    assert "hunter2" not in redacted("postgresql://publisher:hunter2@db.internal:5432/warehouse")
    assert "hunter2" not in redacted("host=db.internal user=publisher password=hunter2 dbname=warehouse")
    assert "db.internal" in redacted("host=db.internal user=publisher password=hunter2 dbname=warehouse")


# Each reader statement restates one invariant: fct_orders, mart_totals and ml.publication_check all come from the
# same publication. The first two list the tables in opposite orders (PostgreSQL locks them in that order, so they
# can deadlock with the swap); the third looks fct_orders up only while it executes, through a volatile function,
# after a pause: the widest window for a statement to mix two publications.
READER_QUERIES = (
    """
    SELECT t.publication, t.total_amount, o.amount, o.low, o.high, c.publication
    FROM (SELECT sum(amount) AS amount, min(publication) AS low, max(publication) AS high FROM marts.fct_orders) AS o
    CROSS JOIN marts.mart_totals AS t CROSS JOIN ml.publication_check AS c
    """,
    """
    SELECT t.publication, t.total_amount, o.amount, o.low, o.high, c.publication
    FROM ml.publication_check AS c CROSS JOIN marts.mart_totals AS t
    CROSS JOIN (
        SELECT sum(amount) AS amount, min(publication) AS low, max(publication) AS high FROM marts.fct_orders
    ) AS o
    """,
    """
    SELECT t.publication, t.total_amount, (s.figures).amount, (s.figures).low, (s.figures).high, t.publication
    FROM marts.mart_totals AS t CROSS JOIN LATERAL (SELECT pg_sleep(0.005), public.order_figures() AS figures) AS s
    """,
)
ORDER_FIGURES = """
    CREATE TYPE public.figures AS (amount numeric, low integer, high integer);
    CREATE FUNCTION public.order_figures() RETURNS public.figures LANGUAGE sql VOLATILE AS
    'SELECT sum(amount), min(publication), max(publication) FROM marts.fct_orders';
"""


def test_readers_querying_during_the_swaps_see_one_whole_publication_and_no_error(tmp_path: Path, database: str):
    publications, orders = 6, 10_000
    files = [write_published(tmp_path / f"sales_{n}.duckdb", n, orders + 997 * n) for n in range(1, publications + 1)]
    publish_to_postgres(files[0], database, log=lambda _: None)
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(ORDER_FIGURES)
    stop = threading.Event()
    reads: list[tuple[int, float]] = []
    inconsistent: list[tuple[object, ...]] = []
    errors: list[BaseException] = []

    def read(query: str) -> None:
        try:
            with psycopg.connect(reader_dsn(database), autocommit=True) as reader:
                while not stop.is_set():
                    started = time.perf_counter()
                    row = reader.execute(query).fetchone()
                    reads.append((row[0], time.perf_counter() - started))
                    publication, total, amount, low, high, check = row
                    if not (publication == low == high == check and total == amount):
                        inconsistent.append(row)
                    # A millisecond between statements, as any client has: with none, three readers keep every table
                    # locked all the time and the swap may need tens of attempts (measured: up to 41, 31 s).
                    time.sleep(0.001)
        except BaseException as error:  # every failure counts, whatever its type
            errors.append(error)

    readers = [threading.Thread(target=read, args=(query,)) for query in READER_QUERIES]
    for thread in readers:
        thread.start()
    attempts, swaps, stale_after_return = [], [], []
    try:
        time.sleep(0.3)
        for number, published in enumerate(files[1:], start=2):
            publication = publish_to_postgres(published, database, log=lambda _: None)
            attempts.append(publication.swap_attempts)
            swaps.append(publication.swap_seconds)
            with psycopg.connect(database) as fresh:
                if fresh.execute("SELECT publication FROM marts.mart_totals").fetchone() != (number,):
                    stale_after_return.append(number)
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in readers:
            thread.join(timeout=60)

    seen = {publication for publication, _ in reads}
    print(
        f"\nreaders during the swap: {len(reads)} reads by {len(readers)} readers, {len(errors)} errors, "
        f"{len(inconsistent)} inconsistent; {publications - 1} publications seen as {sorted(seen)}; "
        f"longest read {max(seconds for _, seconds in reads) * 1000:.0f} ms; swap attempts {attempts}; "
        f"longest swap {max(swaps) * 1000:.0f} ms"
    )
    assert errors == []
    assert inconsistent == []
    assert stale_after_return == []
    assert seen == set(range(1, publications + 1))
