"""Data quality: the Great Expectations suites pass a clean world, catch each planted or corrupted defect with the
check meant for it and name the offending rows; as Dagster asset checks, a failing ERROR check stops the assets
built from its table, and the Data Docs are built."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import duckdb
import pytest

from expectations import raw_suites
from expectations.core import ERROR, WARN, SuiteResult, TableSuite, Validator
from expectations.forecasts import forecast_suite
from expectations.marts_volume import MART_SOURCES
from ingestion.run import ingest_everything
from orchestration.defs.publish.assets import AUDITED, PUBLISHED_KEY, published
from orchestration.defs.quality.checks import quality_checks
from orchestration.defs.resources import Publishing, Quality, Warehouse
from orchestration.defs.transform.assets import warehouse_models
from orchestration.lib.dbt_project import compiled_tests, dbt_cli, failing_rows, run_dbt
from orchestration.lib.quality import all_suites
from tests.conftest import RAW_TABLES


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()  # in memory: these tests read results, not Data Docs


def suite_for(table: str) -> TableSuite:
    return next(suite for suite in all_suites() if suite.name == table)


def run(validator: Validator, database: Path, table: str) -> SuiteResult:
    with duckdb.connect(str(database), read_only=True) as con:
        return validator.run(con, suite_for(table), build_docs=False)


def failing(result: SuiteResult) -> dict[str, list[dict]]:
    """Failing checks of a result: check name -> example rows."""
    return {outcome.check: outcome.examples for outcome in result.failed}


def test_every_raw_table_exported_as_changes_and_the_marts_audited_for_volume_have_a_suite() -> None:
    # reference tables are replaced whole and their columns checked row by row by the loader: nothing left to watch
    replaced_whole = {"user_role", "quotas", "territories", "compensation_plans"}
    tables = {suite.name for suite in all_suites()}
    assert {f"raw.{table}" for table in RAW_TABLES if table not in replaced_whole} <= tables
    audited = {f"marts.{mart}" for mart in MART_SOURCES}
    assert {name for name in tables if name.startswith("marts.")} == {"marts.fct_activity", *audited}


def test_the_clean_tiny_world_passes_every_suite(tiny_marts: Path, validator: Validator) -> None:
    with duckdb.connect(str(tiny_marts), read_only=True) as con:
        results = [validator.run(con, suite, build_docs=False) for suite in all_suites()]
    failures = {result.suite: [(o.check, o.error, o.examples[:2]) for o in result.failed] for result in results}
    assert {suite: failed for suite, failed in failures.items() if failed} == {}
    assert sum(len(result.outcomes) for result in results) > 20


# --- dbt's row rules on damaged marts ---
# One copy of the built tiny warehouse takes every defect below, each planted on rows of its own, and one `dbt test`
# of the damaged marts judges them all: each test then finds its defect caught and named, and nothing else fails.

# the marts the defects are planted in: `dbt test` runs their own tests and the singular tests attached to them
DAMAGED_MARTS = ("fct_bookings", "fct_activity", "fct_opportunity_stage_history", "fct_pipeline_daily",
                 "mart_commissions", "fct_rep_daily_activity")  # fmt: skip
SECOND_VISITS = "select opportunity_id from marts.fct_opportunity_stage_history where visit_number = 2 order by 1"
SHIFT_SECOND_VISIT = ("update marts.fct_opportunity_stage_history set entered_at = entered_at {shift} "
                      "where opportunity_id = ? and visit_number = 2")  # fmt: skip


class Damaged(NamedTuple):
    """The damaged warehouse, the id of the row each defect was planted on, and the `dbt test` run that judged it:
    its process, the SQL of each test, and the first failing rows of each test that failed or warned."""

    database: Path
    planted: dict[str, str]
    run: subprocess.CompletedProcess[str]
    tests: dict[str, str]
    failed: dict[str, list[dict]]


@pytest.fixture(scope="module")
def damaged(tiny_marts: Path, tmp_path_factory: pytest.TempPathFactory) -> Damaged:
    folder = tmp_path_factory.mktemp("damaged")
    database = folder / "warehouse.duckdb"
    shutil.copy(tiny_marts, database)
    planted: dict[str, str] = {}
    with duckdb.connect(str(database)) as con:
        bookings = con.execute("select booking_id, opportunity_id from marts.fct_bookings order by 1").fetchall()
        (duplicated, _), (negated, _), (_, deleted) = bookings[0], bookings[1], bookings[2]
        planted["duplicated booking"] = duplicated
        con.execute(
            "insert into marts.fct_bookings select * from marts.fct_bookings where booking_id = ?", [duplicated]
        )
        planted["negative booking"] = negated
        con.execute("update marts.fct_bookings set amount = -amount where booking_id = ?", [negated])
        planted["deal without its booking"] = deleted
        con.execute("delete from marts.fct_bookings where opportunity_id = ?", [deleted])
        (activity,) = con.execute("select min(activity_id) from marts.fct_activity where is_customer_facing").fetchone()
        planted["activity without a rep"] = activity
        con.execute("update marts.fct_activity set rep_id = null where activity_id = ?", [activity])
        (overlapping,), (holed,) = con.execute(SECOND_VISITS).fetchmany(2)
        # the second visit of one deal now starts an hour before its first ends; another's an hour after
        planted["overlapping visits"] = overlapping
        con.execute(SHIFT_SECOND_VISIT.format(shift="- interval 1 hour"), [overlapping])
        planted["hole between visits"] = holed
        con.execute(SHIFT_SECOND_VISIT.format(shift="+ interval 1 hour"), [holed])
        (open_deal,) = con.execute(
            "select min(opportunity_id) from marts.fct_opportunity where not is_closed"
        ).fetchone()
        planted["open deal missing on the latest day"] = open_deal
        con.execute(
            "delete from marts.fct_pipeline_daily where opportunity_id = ? "
            "and pipeline_date = (select max(pipeline_date) from marts.fct_pipeline_daily)",
            [open_deal],
        )
        con.execute("update marts.mart_commissions set total_pay_amount = total_pay_amount + 1 where rowid = 0")
        con.execute("update marts.fct_rep_daily_activity set connect_rate = 1.5 where rowid = 0")
    target = folder / "target"
    run = run_dbt(["test", "--select", *DAMAGED_MARTS], database, target_path=target)
    results = json.loads((target / "run_results.json").read_text())
    failed = {result["unique_id"] for result in results["results"] if result["status"] in ("fail", "warn", "error")}
    tests = compiled_tests(results)
    with duckdb.connect(str(database), read_only=True) as con:
        rows = {test.split(".")[2]: failing_rows(con, tests[test]) for test in failed}
    return Damaged(database, planted, run, tests, rows)


def test_each_planted_defect_fails_the_test_meant_for_it_and_nothing_else_fails(damaged: Damaged) -> None:
    assert set(damaged.failed) == {
        "unique_fct_bookings_booking_id", "accepted_range_fct_bookings_amount__0", "bookings_reconcile_with_won_deals",
        "customer_facing_activity_has_rep", "stage_visits_do_not_overlap", "stage_visits_cover_deal_life",
        "latest_day_reconciles_with_open_deals", "total_pay_adds_up",
        "accepted_range_fct_rep_daily_activity_connect_rate__1__0",
    }  # fmt: skip
    # defects judged by one test are planted on different deals, so each test's rows name one defect each
    planted = damaged.planted
    assert len({planted["duplicated booking"], planted["negative booking"], planted["deal without its booking"]}) == 3
    assert planted["overlapping visits"] != planted["hole between visits"]


def test_a_negative_booking_is_caught_and_named(damaged: Damaged) -> None:
    (row,) = damaged.failed["accepted_range_fct_bookings_amount__0"]
    assert float(row["value_out_of_range"]) < 0
    with duckdb.connect(str(damaged.database), read_only=True) as con:
        amount = con.execute(
            "select amount from marts.fct_bookings where booking_id = ?", [damaged.planted["negative booking"]]
        ).fetchone()[0]
    assert amount < 0 and float(row["value_out_of_range"]) == float(amount)


def test_an_activity_with_no_rep_is_warned_about(damaged: Damaged) -> None:
    assert "customer_facing_activity_has_rep" in damaged.failed


def test_overlapping_stage_visits_are_caught_and_named(damaged: Damaged) -> None:
    overlapping = damaged.failed["stage_visits_do_not_overlap"]
    assert [(row["opportunity_id"], row["visit_number"]) for row in overlapping] == [
        (damaged.planted["overlapping visits"], 1)
    ]


def test_a_hole_between_stage_visits_breaks_the_cover_of_the_deals_life(damaged: Damaged) -> None:
    deals = {row["opportunity_id"] for row in damaged.failed["stage_visits_cover_deal_life"]}
    assert deals == {damaged.planted["hole between visits"]}


def test_bookings_off_by_one_won_deal_are_caught_and_the_deal_named(damaged: Damaged) -> None:
    rows = {row["opportunity_id"]: row for row in damaged.failed["bookings_reconcile_with_won_deals"]}
    row = rows.pop(damaged.planted["deal without its booking"])
    assert (row["bookings"], row["won_in_fct_opportunity"]) == (0, True)
    # the only other deal off is the one whose booking was duplicated (below)
    assert [row["bookings"] for row in rows.values()] == [2]


def test_the_latest_pipeline_day_off_by_one_open_deal_is_caught(damaged: Damaged) -> None:
    deals = [row["opportunity_id"] for row in damaged.failed["latest_day_reconciles_with_open_deals"]]
    assert deals[0] == damaged.planted["open deal missing on the latest day"]


def test_pay_that_does_not_add_up_is_caught(damaged: Damaged) -> None:
    assert damaged.failed["total_pay_adds_up"]


def test_a_duplicated_mart_row_is_caught_by_the_dbt_key_test_and_named(damaged: Damaged) -> None:
    # Keys belong to dbt (no check is written twice): the duplicate fails `unique` on the mart's key, and the
    # dbt asset step names the failing rows from the test's own query (`with_failing_rows`).
    assert damaged.run.returncode == 1
    assert "FAIL 1 unique_fct_bookings_booking_id" in damaged.run.stdout
    (unique_test,) = [sql for test, sql in damaged.tests.items() if "unique_fct_bookings_booking_id" in test]
    with duckdb.connect(str(damaged.database), read_only=True) as con:
        assert failing_rows(con, unique_test) == [
            {"unique_field": damaged.planted["duplicated booking"], "n_records": 2}
        ]


def test_a_rate_outside_0_and_1_is_caught(damaged: Damaged) -> None:
    assert damaged.failed["accepted_range_fct_rep_daily_activity_connect_rate__1__0"]


def test_a_missing_table_fails_its_checks_with_the_reason(tmp_path: Path, validator: Validator) -> None:
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    result = run(validator, empty, "marts.fct_activity")
    assert result.outcomes and not any(outcome.passed for outcome in result.outcomes)
    assert all("fct_activity" in (outcome.error or "") for outcome in result.outcomes)


def test_forecast_intervals_out_of_order_negative_amounts_and_levels_that_do_not_add_up_are_caught(
    tmp_path: Path, validator: Validator
) -> None:
    database = tmp_path / "forecast.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("create schema ml")
        con.execute(
            "create table ml.revenue_forecast as select forecast_date::date as forecast_date, 'v1' as model_version, "
            "period_grain, "
            "period_start::date as period_start, level, group_id, booked_to_date, open_pipeline_expected, "
            "new_pipeline_expected, p10, p50, p90 from (values "
            "('2025-06-01', 'month', '2025-06-01', 'company', 'company', 10.0, 20.0, 5.0, 30.0, 35.0, 40.0), "
            "('2025-06-01', 'month', '2025-06-01', 'rep', 'r1', 10.0, 10.0, 5.0, 20.0, 25.0, 30.0), "
            "('2025-06-01', 'month', '2025-06-01', 'rep', 'r2', 0.0, 10.0, 0.0, 12.0, 10.0, 20.0), "
            "('2025-06-01', 'month', '2025-06-01', 'team', 't1', 10.0, 40.0, -5.0, 0.0, 5.0, 9.0)"
            ") as t(forecast_date, period_grain, period_start, level, group_id, booked_to_date, "
            "open_pipeline_expected, new_pipeline_expected, p10, p50, p90)"
        )
        result = validator.run(con, forecast_suite(), build_docs=False)
    failures = failing(result)
    assert [row["group_id"] for row in failures["p10_at_most_p50"]] == ["r2"]
    assert [row["group_id"] for row in failures["new_pipeline_expected_not_negative"]] == ["t1"]
    assert [row["level"] for row in failures["levels_add_up"]] == ["team"]
    assert set(failures) == {"p10_at_most_p50", "new_pipeline_expected_not_negative", "levels_add_up"}


# --- the raw suites against the planted defects of `simulator generate --faults` ---
# A planted row fault (a negative amount, a future date) is the loader's to quarantine (tests/test_ingest_faults.py);
# no raw suite restates its rule (tests/test_rule_homes.py), so none is let through here to be caught twice.


def test_the_faulty_world_loads_clean_raw_tables_and_quarantines_the_defects(
    tiny_faulty_warehouse: Path, validator: Validator
) -> None:
    with duckdb.connect(str(tiny_faulty_warehouse), read_only=True) as con:
        results = [validator.run(con, suite, build_docs=False) for suite in raw_suites()]
        quarantined = con.execute("select count(*) from quarantine.opportunity").fetchone()[0]
    assert {r.suite: [o.check for o in r.failed] for r in results if r.failed} == {}
    assert quarantined > 0


def test_a_drop_with_90_percent_fewer_rows_is_flagged(tiny_world: Path, tmp_path: Path, validator: Validator) -> None:
    world = tmp_path / "world"
    shutil.copytree(tiny_world / "landing", world / "landing")
    latest = sorted((world / "landing" / "crm").iterdir())[-1] / "Task.csv"
    with open(latest, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    kept = rows[: 1 + max(1, (len(rows) - 1) // 20)]  # the header and 5 % of the records
    with open(latest, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(kept)
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        ingest_everything(con, world / "landing")
    outcome = next(o for o in run(validator, database, "raw.task").outcomes if o.check == "volume_vs_trailing_loads")
    assert not outcome.passed and outcome.severity == WARN
    assert outcome.examples[0]["export_date"] == latest.parent.name


def test_a_source_that_stopped_exporting_is_flagged_stale(
    tiny_warehouse: Path, tmp_path: Path, validator: Validator
) -> None:
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(tiny_warehouse, database)
    with duckdb.connect(str(database)) as con:
        newest = con.execute("select max(export_date) from raw.load_ledger where source = 'phone'").fetchone()[0]
        con.execute("delete from raw.load_ledger where source = 'phone' and export_date = ?", [newest])
    outcome = next(o for o in run(validator, database, "raw.phone_calls").outcomes if o.check == "phone_freshness")
    assert not outcome.passed and outcome.severity == WARN and outcome.observed_value is None
    assert outcome.examples[0]["source"] == "phone"


# --- as Dagster asset checks ---


def test_error_checks_are_blocking_and_warn_checks_are_not() -> None:
    specs = [spec for checks in quality_checks for spec in checks.check_specs]
    severity = {spec.name: spec.severity for suite in all_suites() for spec in suite.checks()}
    assert specs and all(spec.blocking == (severity[spec.key.name] == ERROR) for spec in specs)
    warn = {spec.key.name for spec in specs if not spec.blocking}
    assert {"volume_vs_trailing_loads", "crm_freshness", "attributed_share"} <= warn
    # what is left to Great Expectations (null-rate drift, volume, freshness, shares) warns, except the audit that
    # keeps an empty mart from being published and the forecast's audits; row rules block in dbt
    forecast_audits = {spec.name for spec in forecast_suite().checks()}
    assert {"levels_add_up", "p10_at_most_p50", "p50_at_most_p90", "p10_not_negative"} <= forecast_audits
    errors = {name for name, level in severity.items() if level == ERROR}
    assert errors == {"not_empty_when_its_source_has_rows", *forecast_audits}


def audit_run(database: Path, folder: Path, assets: list) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    """`assets` (dbt's, or the marts as specs of tables already built), the mart and ML audits and `publish` run in one
    Dagster job on `database`, publishing into `folder/published`; the result and the run's log messages."""
    mart_checks = [
        checks for checks in quality_checks if next(iter(checks.check_keys)).asset_key.path[0] in ("marts", "ml")
    ]
    job = dg.define_asset_job("audit", selection=dg.AssetSelection.all() | dg.AssetSelection.all_asset_checks())
    definitions = dg.Definitions(
        assets=[*assets, published],
        asset_checks=mart_checks,
        jobs=[job],
        resources={
            "dbt": dbt_cli(),
            "warehouse": Warehouse(database=str(database)),
            "quality": Quality(path=str(folder / "quality")),
            "publishing": Publishing(path=str(folder / "published")),
        },
    )
    instance = dg.DagsterInstance.ephemeral()
    result = definitions.resolve_job_def("audit").execute_in_process(instance=instance, raise_on_error=False)
    messages = [record.user_message for record in instance.all_logs(result.run_id)]
    return result, messages


@pytest.fixture
def faulty_run(tiny_faulty_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The dbt models, the mart audits and publish materialized in Dagster on the faulty tiny world."""
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(tiny_faulty_warehouse, database)
    monkeypatch.setenv("WAREHOUSE_PATH", str(database))
    result, messages = audit_run(database, tmp_path, [warehouse_models])
    return result, messages, tmp_path


WARN_SEVERITY = dg.AssetCheckSeverity.WARN


def test_a_failing_error_check_stops_the_marts_built_from_its_table_and_withholds_publishing(faulty_run) -> None:
    result, messages, folder = faulty_run
    assert not result.success
    # the planted orphans and unknown stages are facts of a CRM: dbt names them in warnings, which block nothing
    warned = [e for e in result.get_asset_check_evaluations() if not e.passed and e.severity == WARN_SEVERITY]
    assert {e.check_name.split("_")[0] for e in warned} <= {"relationships", "undefined", "in", "open"}
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed and e.severity != WARN_SEVERITY]
    assert failed and all(e.severity == dg.AssetCheckSeverity.ERROR for e in failed)
    failed_assets = {e.asset_key.to_user_string() for e in failed}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # dbt built the model and ran its tests; what is built from a model whose test failed was skipped
    assert "marts/fct_opportunity_stage_history" in materialized
    assert failed_assets & {"marts/fct_opportunity_stage_history", "marts/fct_pipeline_daily"}
    assert "marts/fct_stage_conversion" not in materialized
    # the row rules that fail on the planted defects are dbt tests now, attached to the marts they judge
    assert {e.check_name for e in failed} & {"stage_visits_cover_deal_life", "latest_day_reconciles_with_open_deals"}
    # nothing is published, and the run says which test failed, on which rows, and that publishing was withheld
    assert "published/sales" not in materialized and not (folder / "published" / "sales.duckdb").exists()
    withheld = [message for message in messages if "Publishing is withheld" in message]
    assert any("stage_visits_cover_deal_life" in message and "first failing rows" in message for message in withheld)


def test_an_error_audit_of_great_expectations_withholds_publishing_and_keeps_the_last_good_copy(
    tiny_marts: Path, tmp_path: Path
) -> None:
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(tiny_marts, database)
    marts = [dg.AssetSpec(key) for key in AUDITED]
    good, _ = audit_run(database, tmp_path, marts)
    assert good.success
    with duckdb.connect(str(database)) as con:
        con.execute("delete from marts.dim_contact")  # a join that stopped matching: every row rule still passes
    bad, messages = audit_run(database, tmp_path, marts)
    assert not bad.success
    failed = [e.check_name for e in bad.get_asset_check_evaluations() if not e.passed]
    assert failed == ["not_empty_when_its_source_has_rows"]
    assert not [e for e in bad.get_asset_materialization_events() if e.asset_key == PUBLISHED_KEY]
    assert any("Publishing is withheld" in message for message in messages)
    with duckdb.connect(str(tmp_path / "published" / "sales.duckdb"), read_only=True) as con:
        assert con.execute("select run_id from marts.publication").fetchall() == [(good.run_id,)]
        assert con.execute("select count(*) from marts.dim_contact").fetchall()[0][0] > 0


def test_a_clean_world_passes_every_check_of_the_refresh_and_gets_its_data_docs(tiny_refresh) -> None:
    # the session's one `refresh` of the clean tiny world (tests/test_ml_pipeline.py reads the same run)
    result, folder = tiny_refresh
    evaluations = result.get_asset_check_evaluations()
    failed = {(e.asset_key.to_user_string(), e.check_name): e.metadata for e in evaluations if not e.passed}
    assert failed == {} and result.success
    quality_names = {(suite.asset, spec.name) for suite in all_suites() for spec in suite.checks()}
    evaluated = {(tuple(e.asset_key.path), e.check_name) for e in evaluations}
    assert quality_names <= evaluated, "every suite ran on its table"
    assert (folder / "quality" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()


def test_the_validator_keeps_no_data_frame_once_a_suite_has_run(tiny_marts: Path, monkeypatch) -> None:
    # Regression: GX's execution engine cached every frame it validated; a bench-scale run grew ~2 GB per table.
    import gc
    import weakref

    import expectations.core as core

    frames = []
    to_numpy = core._numpy_numbers
    monkeypatch.setattr(core, "_numpy_numbers", lambda frame: frames.append(weakref.ref(to_numpy(frame))) or frame)
    with duckdb.connect(str(tiny_marts), read_only=True) as con:
        Validator().run(con, suite_for("marts.fct_activity"), build_docs=False)
    gc.collect()
    assert len(frames) == 1 and all(frame() is None for frame in frames)
