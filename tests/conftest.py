"""Shared fixtures and constants: small worlds, their warehouses and one refresh, each made once per test session.

The test pyramid (README, "Tests"): pure helpers are tested alone in milliseconds; the end-to-end tests share the
session's worlds (`tiny_world`, `tiny_faulty_world`), their ingested warehouses, the built marts (`tiny_marts`) and
one run of the `refresh` job (`tiny_refresh`), and copy them before changing anything. A test that needs any of them
is marked `slow` here (`pytest_collection_modifyitems`), so `make test-fast` (`pytest -m "not slow"`) leaves it out
and `make test` runs it.

Under pytest-xdist (`make test` runs two workers, each on whole modules: `--dist loadfile`, so a module's fixtures
are made once) each worker has its own session, so the session's files (worlds, warehouses, marts) are built by the
first worker that asks for them, under a file lock, in a folder the workers share (`_shared`); the others wait and
read the same files. They are read-only: DuckDB admits many read-only processes on a file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestration.lib.dbt_project import READS_ML, run_dbt
from simulator.world import Progress, generate

SEED = 7
# every raw table the ingest assets write (raw.load_ledger and raw.phone_numbers aside)
RAW_TABLES = [
    "account", "calendar_attendees", "calendar_events", "compensation_plans", "contact", "event", "fx_rates", "lead",
    "opportunity", "opportunity_history", "opportunity_stage", "phone_calls", "quotas", "task", "territories", "user",
    "user_role",
]  # fmt: skip
# A test whose fixtures include one of these needs a generated world (or a server) and is `slow`.
SLOW_FIXTURES = frozenset({"tiny_world", "tiny_faulty_world", "postgres_dsn"})
# Slow tests that need no world, in modules that do not mark them themselves: node id -> what makes them slow.
SLOW_TESTS = {
    "tests/test_warehouse.py::test_the_models_are_sqlfluff_clean": "SQLFluff lints every model (45 s)",
    "tests/test_orchestration.py::test_a_killed_run_gives_back_its_pool_slot_so_the_next_run_does_not_wait_forever": (
        "runs and kills `dagster job execute`"
    ),
}
QUIET = Progress(quiet=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Parse the dbt project now when its manifest is stale, once, before xdist starts its workers: each worker loads
    the code location, which would parse it otherwise, and two parses writing one manifest corrupt it."""
    if session.config.getoption("dist", "no") != "no" and not os.environ.get("PYTEST_XDIST_WORKER"):
        from orchestration.lib.dbt_project import prepared_project

        prepared_project()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test that needs a world, directly or through a fixture built on one: the fast tier cannot
    pick up an end-to-end test by accident, and no test is ever left out of `make test`."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.nodeid in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


def _shared(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder `name`, filled by `build` once per test run, whichever xdist worker asks first (the others wait
    on the lock and reuse it); a build that failed is started again by the next one that asks."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # every worker's base temporary folder is a child of the run's
    folder = root / name
    with FileLock(f"{folder}.lock"):
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".complete").touch()
    return folder


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean `tiny` world (read-only for tests: copy it before changing anything)."""
    return _shared(tmp_path_factory, "tiny_clean", lambda out: generate("tiny", SEED, out, progress=QUIET))


@pytest.fixture(scope="session")
def tiny_faulty_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same `tiny` world as `tiny_world`, with `--faults`."""
    return _shared(
        tmp_path_factory, "tiny_faults", lambda out: generate("tiny", SEED, out, faults=True, progress=QUIET)
    )


@pytest.fixture(scope="session")
def tiny_world_next_day(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of `tiny_world` after `simulator advance --days 1`: one more daily drop (read-only for tests)."""
    from simulator.world import advance

    def advanced(out: Path) -> None:
        shutil.copytree(tiny_world, out, dirs_exist_ok=True)
        advance(out, 1, progress=QUIET)

    return _shared(tmp_path_factory, "tiny_next_day", advanced)


@pytest.fixture(scope="session")
def tiny_warehouse(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB warehouse with the clean `tiny` world ingested (read-only for tests: copy it before changing it)."""
    folder = _shared(tmp_path_factory, "warehouse_clean", lambda out: _ingest(tiny_world, out / "warehouse.duckdb"))
    return folder / "warehouse.duckdb"


@pytest.fixture(scope="session")
def tiny_faulty_warehouse(tiny_faulty_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB warehouse with the faulty `tiny` world ingested."""
    folder = _shared(
        tmp_path_factory, "warehouse_faults", lambda out: _ingest(tiny_faulty_world, out / "warehouse.duckdb")
    )
    return folder / "warehouse.duckdb"


@pytest.fixture(scope="session")
def tiny_marts(tiny_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clean tiny warehouse built as the refresh job builds it: every dbt model but those on the ML tables
    (`dbt build`, artifacts in `target/`), the ML stages (models in `models/`), then the models on their tables
    (artifacts in `target_ml/`)."""
    return _shared(tmp_path_factory, "marts", lambda folder: _build_marts(tiny_warehouse, folder)) / "warehouse.duckdb"


@pytest.fixture(scope="session")
def tiny_refresh(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory):
    """One run of the `refresh` job over the clean tiny world's landing, as `make demo` runs it: the job's result,
    and the folder holding its landing, warehouse, Data Docs (`quality/`), models and publication (`published/`).
    Read-only for tests: copy the folder to run the job again. The result lives in the process that ran the job:
    under xdist, each worker that needs it runs the job once."""
    folder = tmp_path_factory.mktemp("refresh")
    shutil.copytree(tiny_world / "landing", folder / "landing")
    return run_refresh(folder), folder


def _ingest(world: Path, database: Path) -> None:
    import duckdb

    from ingestion.run import ingest_everything

    with duckdb.connect(str(database)) as con:
        ingest_everything(con, world / "landing")


def _build_marts(warehouse: Path, folder: Path) -> None:
    import duckdb

    from ml.forecast import run_forecast_stage
    from ml.win import run_win_stage

    database = folder / "warehouse.duckdb"
    shutil.copy(warehouse, database)
    dbt(["build", "--exclude", READS_ML], database, folder / "target")
    with duckdb.connect(str(database)) as con:
        as_of = con.execute("select max(snapshot_date) from marts.ml_opportunity_features").fetchone()[0]
        run_win_stage(con, folder / "models", as_of, log=lambda message: None)
        run_forecast_stage(con, as_of, log=lambda message: None)
    dbt(["build", "--select", READS_ML], database, folder / "target_ml")


def dbt(args: list[str], warehouse: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """A dbt command on `warehouse` with its artifacts in `target`, which must succeed (its output says why not)."""
    result = run_dbt(args, warehouse, target_path=target)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


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


def run_refresh(folder: Path, run_config: dict | None = None):
    """The `refresh` job (ingest, dbt, every check) as `make materialize` runs it, over `folder/landing`, with the
    warehouse and the Data Docs in `folder`; the job's result. `run_config` is the job's run config (the `-c` file
    of `dagster job execute`), if any."""
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
        return job.execute_in_process(
            run_config=run_config, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
        )


@pytest.fixture(scope="session")
def postgres_dsn(request: pytest.FixtureRequest) -> str:
    """A throwaway PostgreSQL server started for this session (tests/postgres_server.py), as a libpq DSN of its
    superuser; stopped at the end of the session, also when a test fails. Fails (never skips) when PostgreSQL is
    not installed, naming the package to install."""
    from tests.postgres_server import start_postgres

    server = start_postgres()
    request.addfinalizer(server.stop)
    return server.dsn
