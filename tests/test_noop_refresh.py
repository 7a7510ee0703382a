"""A refresh with nothing new costs nothing: it loads, builds, audits and publishes nothing and leaves the warehouse
file as it was; a drop for one source still rebuilds everything after it. And the pieces of that: the pending work a
gate sees, the run's console log without a line per skipped step, and the report's one line."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ingestion.mapping import load_mappings
from orchestration.defs.ingest.assets import NEW_FILES, rebuild_requested
from orchestration.lib.console import SkippedSteps
from orchestration.lib.pending import pending_work
from orchestration.lib.report import RunFacts, built_summary, loaded_in_run, nothing_new
from tests.conftest import run_refresh

# the drop held back from the first refresh and landed before the third: call records only
HELD_BACK = "phone"


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ledger_rows(database: Path) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute("select load_id, path, status from raw.load_ledger order by load_id").fetchall()


def publication(folder: Path) -> str:
    with duckdb.connect(str(folder / "published" / "sales.duckdb"), read_only=True) as con:
        return con.execute("select run_id from marts.publication").fetchone()[0]


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


@pytest.fixture(scope="module")
def three_refreshes(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The refresh job over the tiny world without its last call-record drop; again with nothing new; then again
    once that drop has landed. The warehouse's bytes, its ledger and the publication after each."""
    folder = tmp_path_factory.mktemp("noop_refresh")
    shutil.copytree(tiny_world / "landing", folder / "landing")
    last_drop = sorted((folder / "landing" / HELD_BACK).iterdir())[-1]
    held_back = tmp_path_factory.mktemp("held_back") / last_drop.name
    shutil.move(last_drop, held_back)
    database = folder / "warehouse.duckdb"
    runs: dict = {"folder": folder, "held_back": held_back}
    runs["first"] = run_refresh(folder)
    runs["after_first"] = (database.stat().st_size, file_digest(database), ledger_rows(database), publication(folder))
    runs["second"] = run_refresh(folder)
    runs["after_second"] = (database.stat().st_size, file_digest(database), ledger_rows(database), publication(folder))
    shutil.copytree(held_back, last_drop)
    runs["third"] = run_refresh(folder)
    runs["after_third"] = (database.stat().st_size, file_digest(database), ledger_rows(database), publication(folder))
    return runs


def test_the_first_refresh_loads_builds_and_publishes(three_refreshes: dict) -> None:
    first = three_refreshes["first"]
    assert first.success
    assert {"landing/new_files", "raw/opportunity", "marts/fct_opportunity", "ml/win_probability",
            "published/sales"} <= materialized(first)  # fmt: skip
    assert three_refreshes["after_first"][3] == first.run_id


def test_a_refresh_with_nothing_new_loads_builds_audits_and_publishes_nothing(three_refreshes: dict) -> None:
    second = three_refreshes["second"]
    assert second.success
    assert materialized(second) == set()
    assert second.get_asset_check_evaluations() == []
    # only the gate ran; every load, build, ML stage, audit and the publication was skipped by Dagster
    ran = {event.step_key for event in second.all_events if event.event_type_value == "STEP_SUCCESS"}
    skipped = {event.step_key for event in second.all_events if event.event_type_value == "STEP_SKIPPED"}
    assert ran == {"landing__new_files"}
    assert {"raw__phone_calls", "calendars", "warehouse_models", "win_probability_stage", "revenue_forecast_stage",
            "models_on_ml", "published__sales"} <= skipped  # fmt: skip
    assert any(step.startswith("quality_") for step in skipped)
    # the gate's answer is an observation in the asset's history, not a materialization
    observed = [event for event in second.all_events if event.event_type_value == "ASSET_OBSERVATION"]
    assert [event.asset_key for event in observed] == [NEW_FILES]
    assert observed[0].event_specific_data.asset_observation.metadata["new_files"].value == 0


def test_a_refresh_with_nothing_new_leaves_the_warehouse_file_and_the_publication_as_they_were(
    three_refreshes: dict,
) -> None:
    size, digest, ledger, published_by = three_refreshes["after_first"]
    assert three_refreshes["after_second"] == (size, digest, ledger, published_by)


def test_a_drop_for_one_source_rebuilds_everything_after_it(three_refreshes: dict) -> None:
    third = three_refreshes["third"]
    assert third.success
    built = materialized(third)
    # every ingest asset runs (those with no new file load nothing) so that the dbt build, which reads them all, runs
    assert {"raw/phone_calls", "raw/opportunity", "raw/calendar_events", "marts/fct_activity",
            "marts/fct_opportunity_scored", "ml/revenue_forecast", "published/sales"} <= built  # fmt: skip
    loads = {event.asset_key.to_user_string(): event.materialization.metadata
             for event in third.get_asset_materialization_events()}  # fmt: skip
    assert loads["raw/phone_calls"]["files_loaded"].value == 1 and loads["raw/phone_calls"]["dagster/row_count"].value
    assert loads["raw/opportunity"]["files_loaded"].value == 0
    assert loads["landing/new_files"]["new_files"].value == 1
    assert third.get_asset_check_evaluations()
    new_rows = set(three_refreshes["after_third"][2]) - set(three_refreshes["after_first"][2])
    assert {(path.split("/")[0], status) for _, path, status in new_rows} == {(HELD_BACK, "loaded")}
    assert three_refreshes["after_third"][3] == third.run_id


def test_the_report_describes_the_run_not_the_warehouse_history(three_refreshes: dict) -> None:
    database = three_refreshes["folder"] / "warehouse.duckdb"
    with duckdb.connect(str(database), read_only=True) as con:
        third = loaded_in_run(con, three_refreshes["third"].run_id).splitlines()
        first = loaded_in_run(con, three_refreshes["first"].run_id).splitlines()
        nothing = loaded_in_run(con, three_refreshes["second"].run_id)
    # Regression: the summary counted every file the ledger ever saw, so a run that loaded nothing looked busy
    assert [line.split()[:2] for line in third[1:]] == [["phone_calls", "1"]]
    assert len(first) > 10 and nothing.startswith("loaded: no new file")
    keys = ["landing/new_files", "raw/user", "staging/stg_a", "marts/fct_b", "marts/dim_c", "ml/win_models",
            "published/sales"]  # fmt: skip
    facts = RunFacts("r", "SUCCESS", 1.0, 2.0, materialized=keys, checks_passed=3, checks_warned=1)
    assert built_summary(facts) == "built: 1 staging, 2 marts, 1 ml; checks: 3 passed, 1 warned, 0 failed"


def test_the_gate_sees_new_files_and_loads_not_yet_published(tiny_world: Path, tiny_warehouse: Path, tmp_path) -> None:
    mappings = load_mappings()
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        loaded = con.execute("select count(*) from raw.load_ledger where status = 'loaded'").fetchall()[0][0]
        latest_load = con.execute("select max(finished_at) from raw.load_ledger").fetchall()[0][0]
        never_published = pending_work(con, tiny_world / "landing", mappings, None)
        published_since = pending_work(con, tiny_world / "landing", mappings, latest_load + dt.timedelta(seconds=1))
        published_before = pending_work(con, tiny_world / "landing", mappings, latest_load - dt.timedelta(days=1))
        landing = tmp_path / "landing"
        shutil.copytree(tiny_world / "landing", landing)
        resent = sorted((landing / "crm").glob("*/Account.csv"))[-1]
        resent.write_text(resent.read_text() + resent.read_text().splitlines()[-1] + "\n")  # a corrected re-send
        after = latest_load + dt.timedelta(seconds=1)
        resent_only = pending_work(con, landing, mappings, after)
        calls = sorted((landing / "phone").glob("*/calls_*.csv"))[0].read_text().splitlines(keepends=True)
        (landing / "phone" / "2099-01-01").mkdir()
        (landing / "phone" / "2099-01-01" / "calls_2099-01-01.csv").write_text("".join(calls[:-1]))  # a new drop
        new_drop = pending_work(con, landing, mappings, after)
    assert never_published.new_files == {} and never_published.unpublished_loads == loaded > 0
    assert published_since.nothing and published_since.describe() == "nothing new landed"
    assert not published_before.nothing and published_before.unpublished_loads > 0
    assert resent_only.new_files == {"account": [resent.relative_to(landing).as_posix()]}
    # a path the ledger never saw is new without hashing the rest
    assert new_drop.new_files == {"phone_calls": ["phone/2099-01-01/calls_2099-01-01.csv"]}
    assert len({published_since.digest, resent_only.digest, new_drop.digest}) == 3


def test_the_gate_reads_the_warehouse_and_writes_nothing(tiny_warehouse: Path, tiny_world: Path) -> None:
    before = file_digest(tiny_warehouse)
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        pending_work(con, tiny_world / "landing", load_mappings(), None)
    assert file_digest(tiny_warehouse) == before


def test_a_run_configured_to_rebuild_the_models_builds_even_when_nothing_new_landed() -> None:
    assert rebuild_requested({"ops": {"warehouse_models": {"config": {"full_refresh": True}}}})
    assert rebuild_requested({"ops": {"models_on_ml": {"config": {"as_of_date": "2025-06-30"}}}})
    assert not rebuild_requested({"loggers": {"console": {"config": {"log_level": "INFO"}}}})
    assert not rebuild_requested({"ops": {"warehouse_models": {"config": {"full_refresh": False}}}})


def _record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("dagster", level, __file__, 1, message, None, None)


def test_the_console_log_drops_the_skipped_steps_and_their_checks_and_nothing_else() -> None:
    skipped = SkippedSteps()
    prefix = "refresh - 1234 - warehouse_models - "
    assert not skipped.filter(_record(prefix + "Skipping step warehouse_models due to skipped dependencies: ['x']."))
    quiet = "Blocking asset check 'marts/fct_x:unique_id' emitted no result in step 'warehouse_models'; downstream "
    kept = "Blocking asset check 'marts/fct_x:unique_id' emitted no result in step 'models_on_ml'; downstream "
    assert not skipped.filter(_record(quiet + "step 'published__sales' will proceed without gating on it."))
    assert skipped.filter(_record(kept + "step 'published__sales' will proceed without gating on it."))
    assert skipped.filter(_record(prefix + "dbt build failed", logging.ERROR))


def test_a_refresh_that_did_nothing_is_reported_in_one_line(tmp_path: Path) -> None:
    facts = RunFacts("abc123", "SUCCESS", 100.0, 102.5, step_seconds={"landing__new_files": 0.4})
    assert facts.did_nothing and not facts.built_models
    seconds = {"start-up": 6.0, "ingest": 0.4, "between steps": 2.1, "report": 0.6}
    line = nothing_new(facts, tmp_path / "published" / "sales.duckdb", "data/landing", seconds)
    assert line == (
        "nothing new landed in data/landing: run abc123 loaded, rebuilt, audited and published nothing; nothing has "
        "been published yet (9.1 s: start-up 6.0, run 2.5, report 0.6)"
    )
    assert "\n" not in line
    # a run that loaded or checked anything, or failed, is not "nothing"
    assert not RunFacts("r", "SUCCESS", 1.0, 2.0, materialized=["raw/user"]).did_nothing
    assert not RunFacts("r", "SUCCESS", 1.0, 2.0, checks_passed=1).did_nothing
    assert not RunFacts("r", "FAILURE", 1.0, 2.0).did_nothing
