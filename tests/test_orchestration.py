"""The Dagster code location: definitions load with the pinned asset keys, every writer is in the one-writer pool,
and a real materialization of the ingest job fills raw.*, quarantine.* and the ledger."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from orchestration.definitions import defs
from orchestration.defs.ingest.assets import NEW_FILES, calendars, csv_assets, new_files
from orchestration.defs.ingest.checks import ingest_checks
from orchestration.defs.ingest.sensors import landing_fingerprint, new_landing_files
from orchestration.defs.ml.assets import revenue_forecast_stage, win_probability_stage
from orchestration.defs.publish.assets import AUDITED, PUBLISHED_KEY, published
from orchestration.defs.quality.checks import quality_checks
from orchestration.defs.resources import WAREHOUSE_POOL, Landing, Warehouse, WarehouseBusyError
from orchestration.defs.transform.assets import models_on_ml, warehouse_models
from orchestration.lib.console import console
from orchestration.lib.dbt_project import build_args, dbt_cli
from orchestration.lib.recovery import recover_abandoned_runs
from orchestration.lib.report import stage_of
from tests.conftest import RAW_TABLES
from tests.test_warehouse import MARTS


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    return defs()


def test_the_definitions_load_with_the_pinned_asset_keys(definitions: dg.Definitions) -> None:
    keys = {key.to_user_string() for key in definitions.resolve_all_asset_keys()}
    raw = {key for key in keys if key.startswith("raw/")}
    # raw.load_ledger is a dbt source the ingest assets write as they go, not an asset of its own
    assert raw == {f"raw/{table}" for table in RAW_TABLES} | {"raw/load_ledger"}
    assert {f"marts/{name}" for name in MARTS} <= keys
    assert {key.split("/")[0] for key in keys} == {"landing", "raw", "staging", "intermediate", "marts", "ml",
                                                   "published"}  # fmt: skip
    assert {"ml/win_probability", "ml/revenue_forecast", "marts/fct_opportunity_scored"} <= keys


def test_the_dbt_models_hang_off_the_ingest_assets_in_one_graph(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    staging_parents = {
        parent.to_user_string()
        for key in graph.get_all_asset_keys()
        if key.path[0] == "staging"
        for parent in graph.get(key).parent_keys
    }
    assert {f"raw/{table}" for table in RAW_TABLES} <= staging_parents
    bookings = graph.get(dg.AssetKey(["marts", "fct_bookings"]))
    assert dg.AssetKey(["marts", "fct_opportunity"]) in bookings.parent_keys


def test_dbt_tests_are_asset_checks_on_the_models(definitions: dg.Definitions) -> None:
    checks = definitions.resolve_asset_graph().asset_check_keys
    on_marts = {check.asset_key.to_user_string() for check in checks if check.asset_key.path[0] == "marts"}
    assert {"marts/fct_opportunity", "marts/fct_activity", "marts/fct_bookings"} <= on_marts
    assert any(check.name.startswith("unique_fct_opportunity_opportunity_id") for check in checks)


def test_every_asset_that_writes_to_the_warehouse_is_in_the_one_writer_pool(definitions: dg.Definitions) -> None:
    # the gate only reads, but it reads the ledger the loads write: in the pool, it never sees a load half done
    assets = [new_files, *csv_assets, calendars, warehouse_models, win_probability_stage, revenue_forecast_stage,
              models_on_ml, published]  # fmt: skip
    assert {key for definition in assets for key in definition.keys} == set(definitions.resolve_all_asset_keys()) - {
        dg.AssetKey(["raw", "load_ledger"])
    }
    for definition in [*assets, *ingest_checks, *quality_checks]:
        assert definition.op.pool == WAREHOUSE_POOL, definition.op.name
    pool_file = Path("orchestration/dagster.yaml").read_text()
    assert "default_limit: 1" in pool_file


def test_the_dbt_project_is_two_builds_around_the_ml_assets_configured_per_run(definitions: dg.Definitions) -> None:
    # Regression: the models ran as five layered `dbt build`s sharing a config resource; four tests ran in none
    nodes = definitions.resolve_job_def("refresh").graph.node_defs
    dbt_nodes = [node.name for node in nodes if node.name in ("warehouse_models", "models_on_ml")]
    assert sorted(dbt_nodes) == ["models_on_ml", "warehouse_models"]
    assert not set(warehouse_models.keys) & set(models_on_ml.keys)
    for definition in (warehouse_models, models_on_ml):
        assert set(definition.op.config_schema.config_type.fields) == {"as_of_date", "full_refresh"}
    graph = definitions.resolve_asset_graph()
    # the models on ML outputs build after the ML assets, which build after the features mart
    assert graph.get(dg.AssetKey(["staging", "stg_ml__win_probabilities"])).parent_keys == {
        dg.AssetKey(["ml", "win_probability"])
    }
    assert dg.AssetKey(["marts", "ml_opportunity_features"]) in graph.get(dg.AssetKey(["ml", "win_models"])).parent_keys
    assert build_args("2025-06-30", full_refresh=True) == ["build", "--vars", '{"as_of_date": "2025-06-30"}',
                                                          "--full-refresh"]  # fmt: skip


def test_a_build_date_that_is_not_a_date_never_reaches_dbt() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        build_args("2025-06-31'; drop")


def test_publish_waits_for_every_mart_and_ml_table_and_the_blocking_checks_on_them(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    published_tables = {key for key in graph.get_all_asset_keys() if key.path[0] in ("marts", "ml")}
    assert set(graph.get(PUBLISHED_KEY).parent_keys) == published_tables == set(AUDITED)
    definitions_with_checks = [warehouse_models, models_on_ml, *quality_checks]
    blocking = [spec for definition in definitions_with_checks for spec in definition.check_specs
                if spec.blocking and spec.asset_key in published_tables]  # fmt: skip
    # dbt tests of severity error and the Great Expectations audits of severity ERROR
    assert any(spec.name.startswith("unique_") for spec in blocking)
    assert any(spec.name == "not_empty_when_its_source_has_rows" for spec in blocking)
    assert {"levels_add_up", "p10_at_most_p50"} <= {
        spec.name for spec in blocking if spec.asset_key == dg.AssetKey(["ml", "revenue_forecast"])
    }


def test_a_process_holding_the_working_warehouse_fails_the_run_at_once_naming_it(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; con = duckdb.connect({str(database)!r}); print('open', "
         "flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        started = time.perf_counter()
        busy = pytest.raises(WarehouseBusyError, match=rf"PID {holder.pid}\).*kill {holder.pid}")
        with busy, Warehouse(database=str(database)).get_connection(read_only=True):
            pass
        # Regression: DuckDBResource retried a locked file for about 100 s before failing without naming the holder
        assert time.perf_counter() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_every_ingest_asset_hangs_off_the_gate_whose_output_is_optional(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    raw = [key for key in graph.get_all_asset_keys() if key.path[0] == "raw" and key.path[1] != "load_ledger"]
    assert raw and all(NEW_FILES in graph.get(key).parent_keys for key in raw)
    # Dagster skips what is downstream of an output that was not yielded; only an optional output may be left out
    assert [out.is_required for out in new_files.op.outs.values()] == [False]
    assert graph.get(NEW_FILES).parent_keys == set()
    for job in ("refresh", "ingest"):
        assert "landing__new_files" in {node.name for node in definitions.resolve_job_def(job).graph.node_defs}


def test_every_step_of_the_refresh_has_a_stage_in_the_report(definitions: dg.Definitions) -> None:
    steps = [node.name for node in definitions.resolve_job_def("refresh").graph.node_defs]
    assert {step: stage_of(step) for step in steps if stage_of(step) == "other"} == {}
    assert {stage_of(step) for step in steps} == {"ingest", "dbt", "ML", "audits", "publish"}


def test_every_job_logs_to_the_console_without_a_line_per_skipped_step(definitions: dg.Definitions) -> None:
    for name in ("refresh", "ingest", "transform"):
        assert definitions.resolve_job_def(name).loggers["console"] is console


def test_every_raw_table_has_a_blocking_reconciliation_check(definitions: dg.Definitions) -> None:
    checks = definitions.resolve_asset_graph().asset_check_keys
    checked = {check.asset_key.to_user_string() for check in checks if check.name == "rows_reconcile"}
    assert checked == {f"raw/{table}" for table in RAW_TABLES if table != "calendar_attendees"}


def test_call_records_load_after_the_crm_tables_whose_phone_numbers_they_reuse(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    parents = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
               for key in graph.get_all_asset_keys()}  # fmt: skip
    assert parents["raw/phone_calls"] == {"landing/new_files", "raw/user", "raw/account", "raw/contact", "raw/lead"}
    # a record may land before its parent, so the CRM tables do not wait on each other (canonical.yaml)
    assert parents["raw/contact"] == parents["raw/task"] == {"landing/new_files"}


def test_the_ingest_job_has_a_sensor_and_a_daily_schedule(definitions: dg.Definitions) -> None:
    sensor = next(sensor for sensor in definitions.sensors if sensor.name == "new_landing_files")
    assert sensor.job_name == "ingest"
    schedule = next(schedule for schedule in definitions.schedules if schedule.name == "daily_ingest")
    assert (schedule.job_name, schedule.cron_schedule) == ("ingest", "0 6 * * *")


def test_the_sensor_requests_a_run_when_files_land_and_skips_when_nothing_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    (landing / "phone/2024-01-03").mkdir(parents=True)
    (landing / "phone/2024-01-03/calls_2024-01-03.csv").write_text("call_id\n")
    monkeypatch.setenv("LANDING_DIR", str(landing))
    first = new_landing_files(dg.build_sensor_context(cursor=None))
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
    again = new_landing_files(dg.build_sensor_context(cursor=first.cursor))
    assert isinstance(again, dg.SkipReason)
    (landing / "phone/2024-01-04").mkdir()
    (landing / "phone/2024-01-04/calls_2024-01-04.csv").write_text("call_id\n")
    assert landing_fingerprint(landing)[0] != first.cursor
    later = new_landing_files(dg.build_sensor_context(cursor=first.cursor))
    assert isinstance(later, dg.SensorResult) and later.run_requests[0].run_key == later.cursor


@pytest.mark.slow
def test_materializing_the_ingest_assets_fills_raw_quarantine_and_the_ledger(
    tiny_faulty_world: Path, tmp_path: Path
) -> None:
    database = tmp_path / "warehouse.duckdb"
    resources = {
        "warehouse": Warehouse(database=str(database)),
        "landing": Landing(path=str(tiny_faulty_world / "landing")),
    }
    result = dg.materialize([*csv_assets, calendars, *ingest_checks], resources=resources)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == len(RAW_TABLES) - 1 and all(check.passed for check in checks)
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert materialized == {f"raw/{table}" for table in RAW_TABLES}
    with duckdb.connect(str(database), read_only=True) as con:
        statuses = dict(con.execute("select status, count(*) from raw.load_ledger group by all").fetchall())
        quarantined = con.execute("select count(*) from quarantine.opportunity").fetchall()[0][0]
        occurrences = con.execute("select count(*) from raw.calendar_events").fetchall()[0][0]
        rejected = {path for (path,) in con.execute("select path from raw.load_ledger where status = 'rejected'")
                    .fetchall()}  # fmt: skip
    planted = pd.read_csv(tiny_faulty_world / "truth" / "faults.csv", dtype=str, keep_default_na=False)
    unreadable = set(planted.file[planted.fault_type.isin(["truncated_file", "non_utf8"])])
    # the truncated and the non-UTF-8 file, and calendars whose planted break leaves a VEVENT never closed
    assert statuses["loaded"] > 500 and unreadable <= rejected <= set(planted.file) and len(unreadable) == 2
    assert quarantined > 0 and occurrences > 1000
    assert os.path.getsize(database) > 0


def test_materializing_the_dbt_assets_builds_the_marts_and_reports_every_dbt_test(
    tiny_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(tiny_warehouse, database)
    monkeypatch.setenv("WAREHOUSE_PATH", str(database))  # dbt_project/profiles.yml reads it
    resources = {"dbt": dbt_cli(), "warehouse": Warehouse(database=str(database))}
    result = dg.materialize([warehouse_models], resources=resources)
    assert result.success
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert {f"marts/{name}" for name in MARTS} <= materialized
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) > 100 and all(evaluation.passed for evaluation in evaluations)
    # Regression: four relationships tests that read models of two layers (fct_opportunity.territory_id,
    # fct_activity.contact_id, fct_opportunity_stage_history and fct_pipeline_daily to fct_opportunity) ran in no
    # step, and their blocking checks showed "Skipped".
    checks = {spec.key for spec in warehouse_models.check_specs}
    assert any(spec.blocking for spec in warehouse_models.check_specs)
    assert checks - {evaluation.asset_check_key for evaluation in evaluations} == set()
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_bookings").fetchall()[0][0] > 0


POOLED_JOB = """
import os, time
import dagster as dg

@dg.asset(pool="warehouse_writer")
def pooled() -> None:
    time.sleep(float(os.environ.get("HOLD_SECONDS", "0")))

defs = dg.Definitions(assets=[pooled], jobs=[dg.define_asset_job("pooled_job", executor_def=dg.in_process_executor)])
"""


def test_a_killed_run_gives_back_its_pool_slot_so_the_next_run_does_not_wait_forever(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy("orchestration/dagster.yaml", home / "dagster.yaml")
    (tmp_path / "pooled.py").write_text(POOLED_JOB)
    command = [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-f", str(tmp_path / "pooled.py"),
               "-j", "pooled_job"]  # fmt: skip
    env = {**os.environ, "DAGSTER_HOME": str(home), "HOLD_SECONDS": "300"}
    killed = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    with dg.DagsterInstance.from_config(str(home)) as instance:
        deadline = time.monotonic() + 120
        while not instance.event_log_storage.get_concurrency_run_ids() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert instance.event_log_storage.get_concurrency_run_ids(), "the first run never took the pool slot"
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
        recovered = recover_abandoned_runs(instance, log=lambda _: None)
        assert [run.job_name for run in recovered] == ["pooled_job"]
        assert instance.get_run_by_id(recovered[0].run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_run_ids() == set()
    # Regression: the next run waited for the dead run's slot forever, at 100 % CPU and without a log line
    rerun = subprocess.run(command, env={**env, "HOLD_SECONDS": "0"}, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
