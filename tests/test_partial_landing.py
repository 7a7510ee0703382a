"""The pipeline runs on a partial landing: a team that connects its CRM first and its phone system later (or only
its calendars) can run `refresh`; every raw table exists, empty where no file came, and the marts are empty where
there is no data."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from expectations.core import ERROR, Validator
from ingestion.run import ingest_everything
from orchestration.lib.quality import all_suites
from tests.conftest import RAW_TABLES, run_refresh

# what each partial landing copies from the tiny world's landing folder
PARTIAL_LANDINGS = {
    "only_calendars": ["calendar/*/*.ics"],
    "only_call_records": ["phone/*/*.csv"],
    "only_some_crm_objects": ["crm/*/Account.csv", "crm/*/Opportunity.csv", "crm/*/OpportunityHistory.csv"],
}


def _copy_landing(world: Path, patterns: list[str], landing: Path) -> int:
    copied = 0
    for pattern in patterns:
        for path in (world / "landing").glob(pattern):
            target = landing / path.relative_to(world / "landing")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
            copied += 1
    return copied


@pytest.fixture(scope="module", params=sorted(PARTIAL_LANDINGS))
def partial_run(request: pytest.FixtureRequest, tiny_world: Path, tmp_path_factory: pytest.TempPathFactory):
    """The `refresh` job, as `make materialize` runs it, on a landing folder holding one kind of file only."""
    folder = tmp_path_factory.mktemp(request.param)
    assert _copy_landing(tiny_world, PARTIAL_LANDINGS[request.param], folder / "landing") > 0
    return request.param, run_refresh(folder), folder / "warehouse.duckdb"


def _count(database: Path, table: str) -> int:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(f"select count(*) from {table}").fetchone()[0]


def test_refresh_succeeds_on_a_partial_landing(partial_run) -> None:
    # Regression: with no files for a source the quality steps crashed (NaTType does not support time) and dbt had
    # no raw tables to read, so a team that connects one source at a time could not run the pipeline at all.
    name, result, _ = partial_run
    failures = [
        f"{event.step_key}: {event.event_specific_data.error.message.splitlines()[0]}"
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    ]
    failed_checks = [
        (e.asset_key.to_user_string(), e.check_name, e.metadata.get("example_failing_rows"))
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert failed_checks == [], name
    assert result.success, f"{name}: {failures}"


def test_every_raw_table_exists_on_a_partial_landing(partial_run) -> None:
    _, _, database = partial_run
    with duckdb.connect(str(database), read_only=True) as con:
        tables = {row[0] for row in con.execute("select table_name from information_schema.tables "
                                                  "where table_schema = 'raw'").fetchall()}  # fmt: skip
    assert set(RAW_TABLES) <= tables


def test_the_marts_are_empty_where_there_is_no_data(partial_run) -> None:
    name, _, database = partial_run
    opportunities = _count(database, "marts.fct_opportunity")
    bookings = _count(database, "marts.fct_bookings")
    if name == "only_some_crm_objects":
        live = _count(database, "staging.stg_crm__opportunities where not is_deleted")
        assert opportunities > 0 and opportunities == live
        assert _count(database, "raw.phone_calls") == 0
    else:
        assert opportunities == 0 and bookings == 0
        source = "raw.calendar_events" if name == "only_calendars" else "raw.phone_calls"
        assert _count(database, source) > 0


def test_every_quality_suite_runs_on_empty_tables_without_an_error(tmp_path: Path) -> None:
    # Regression: an empty table's min and max are NaT, which the result bridge could not turn into JSON
    # ("NaTType does not support time"), so a source without files crashed the quality steps.
    (tmp_path / "landing").mkdir()
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        ingest_everything(con, tmp_path / "landing")
        raw_suites = [suite for suite in all_suites() if suite.name[:4] == "raw."]
        results = [Validator().run(con, suite, build_docs=False) for suite in raw_suites]
    assert len(results) >= 10 and {result.suite for result in results} <= {f"raw.{table}" for table in RAW_TABLES}
    errors = [(result.suite, outcome.check, outcome.error) for result in results for outcome in result.failed
              if outcome.severity == ERROR]  # fmt: skip
    assert errors == []
