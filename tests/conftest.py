"""Shared fixtures: small worlds generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.lib.dbt_project import READS_ML
from simulator.world import Progress, generate

SEED = 7
# every raw table the ingest assets write (raw.load_ledger and raw.phone_numbers aside)
RAW_TABLES = [
    "account", "calendar_attendees", "calendar_events", "compensation_plans", "contact", "event", "fx_rates", "lead",
    "opportunity", "opportunity_history", "opportunity_stage", "phone_calls", "quotas", "task", "territories", "user",
    "user_role",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean `tiny` world (read-only for tests: copy it before changing anything)."""
    out = tmp_path_factory.mktemp("tiny_clean")
    generate("tiny", SEED, out, progress=Progress(quiet=True))
    return out


@pytest.fixture(scope="session")
def tiny_faulty_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same `tiny` world as `tiny_world`, with `--faults`."""
    out = tmp_path_factory.mktemp("tiny_faults")
    generate("tiny", SEED, out, faults=True, progress=Progress(quiet=True))
    return out


@pytest.fixture(scope="session")
def tiny_warehouse(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB warehouse with the clean `tiny` world ingested (read-only for tests: copy it before changing it)."""
    return _ingested(tiny_world, tmp_path_factory.mktemp("warehouse_clean") / "warehouse.duckdb")


@pytest.fixture(scope="session")
def tiny_faulty_warehouse(tiny_faulty_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB warehouse with the faulty `tiny` world ingested."""
    return _ingested(tiny_faulty_world, tmp_path_factory.mktemp("warehouse_faults") / "warehouse.duckdb")


@pytest.fixture(scope="session")
def tiny_marts(tiny_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clean tiny warehouse built as the refresh job builds it: every dbt model but those on the ML tables
    (`dbt build`, artifacts in `target/`), the ML stages (models in `models/`), then the models on their tables
    (artifacts in `target_ml/`)."""
    import shutil

    import duckdb

    from ml.forecast import run_forecast_stage
    from ml.win import run_win_stage
    from tests.test_warehouse import dbt

    folder = tmp_path_factory.mktemp("marts")
    database = folder / "warehouse.duckdb"
    shutil.copy(tiny_warehouse, database)
    dbt(["build", "--exclude", READS_ML], database, folder / "target")
    with duckdb.connect(str(database)) as con:
        as_of = con.execute("select max(snapshot_date) from marts.ml_opportunity_features").fetchone()[0]
        run_win_stage(con, folder / "models", as_of, log=lambda message: None)
        run_forecast_stage(con, as_of, log=lambda message: None)
    dbt(["build", "--select", READS_ML], database, folder / "target_ml")
    return database


def _ingested(world: Path, database: Path) -> Path:
    import duckdb

    from ingestion.run import ingest_everything

    with duckdb.connect(str(database)) as con:
        ingest_everything(con, world / "landing")
    return database


def rows_per_source_file(con) -> dict[str, list[tuple[str, int]]]:
    """Rows per raw and quarantine table ("schema.table") and landing file: what the kill tests compare with a clean
    run to find anything duplicated or lost."""
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('raw', 'quarantine') and table_name not in ('load_ledger', 'phone_numbers') "
        "order by all"
    ).fetchall()
    return {
        f"{schema}.{table}": sorted(
            con.execute(f'select _source_file, count(*) from {schema}."{table}" group by all').fetchall()
        )
        for schema, table in tables
    }


def run_refresh(folder: Path):
    """The `refresh` job (ingest, dbt, every check) as `make materialize` runs it, over `folder/landing`, with the
    warehouse and the Data Docs in `folder`; the job's result."""
    import dagster as dg

    from orchestration.definitions import defs

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WAREHOUSE_PATH", str(folder / "warehouse.duckdb"))
        patch.setenv("LANDING_DIR", str(folder / "landing"))
        patch.setenv("QUALITY_DIR", str(folder / "quality"))
        # make exports PUBLISH_DIR for DATA_DIR; a test publishes beside its own warehouse
        patch.setenv("PUBLISH_DIR", str(folder / "published"))
        patch.setenv("MODELS_DIR", str(folder / "models"))
        job = defs().resolve_job_def("refresh")
        return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


@pytest.fixture(scope="session")
def postgres_dsn(request: pytest.FixtureRequest) -> str:
    """A throwaway PostgreSQL server started for this session (tests/postgres_server.py), as a libpq DSN of its
    superuser; stopped at the end of the session, also when a test fails. Fails (never skips) when PostgreSQL is
    not installed, naming the package to install."""
    from tests.postgres_server import start_postgres

    server = start_postgres()
    request.addfinalizer(server.stop)
    return server.dsn
