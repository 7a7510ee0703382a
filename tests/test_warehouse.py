"""The dbt warehouse on a tiny simulated world: the marts reconcile with the simulator's ground truth, a build as
of a date does not change when later data arrives, and the project keeps its contracts, tests and style. That an
incremental build matches a full one is tests/test_warehouse_consistency.py's to show."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ingestion.run import ingest_everything
from orchestration.lib.dbt_project import PROJECT_DIR, READS_ML, run_dbt
from simulator.world import Progress, advance

MARTS = [
    "dim_rep", "dim_account", "dim_contact", "dim_territory", "dim_date", "fct_opportunity",
    "fct_opportunity_stage_history", "fct_stage_conversion", "fct_pipeline_daily", "fct_activity",
    "fct_rep_daily_activity", "mart_pipeline_summary", "mart_rep_performance", "fct_bookings",
    "mart_quota_attainment", "mart_commissions", "ml_opportunity_features",
]  # fmt: skip
# the marts on the ML assets' tables, built after those assets (tag reads_ml)
MARTS_ON_ML = ["fct_opportunity_scored", "mart_forecast_accuracy"]
FISCAL_YEAR_START_MONTH = 2  # dbt_project.yml's var, and the simulator's company


def dbt(args: list[str], warehouse: Path, target: Path) -> subprocess.CompletedProcess[str]:
    result = run_dbt(args, warehouse, target_path=target)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


def fiscal_period(day: dt.date) -> str:
    year = day.year + (1 if FISCAL_YEAR_START_MONTH > 1 and day.month >= FISCAL_YEAR_START_MONTH else 0)
    return f"FY{year}-Q{(day.month - FISCAL_YEAR_START_MONTH) % 12 // 3 + 1}"


def test_every_mart_is_built_with_rows(tiny_marts: Path) -> None:
    with duckdb.connect(str(tiny_marts), read_only=True) as con:
        counts = {name: con.sql(f"select count(*) from marts.{name}").fetchall()[0][0] for name in MARTS + MARTS_ON_ML}
    assert all(counts.values()), counts


def test_bookings_per_fiscal_quarter_equal_the_simulators_truth(tiny_marts: Path, tiny_world: Path) -> None:
    """Won deals per fiscal quarter are the same deals; the amounts agree to the rounding of each booking.

    fct_bookings rounds each deal's reporting-currency amount to the cent, as a ledger would; the truth file rounds
    each day's exact sum. The two may differ by at most half a cent per deal.
    """
    truth = pd.read_csv(tiny_world / "truth" / "bookings.csv", dtype={"bookings_amount": str})
    expected: dict[str, tuple[int, Decimal]] = {}
    for day, amount, deals in zip(truth.booking_date, truth.bookings_amount, truth.won_deals, strict=True):
        period = fiscal_period(dt.date.fromisoformat(day))
        count, total = expected.get(period, (0, Decimal(0)))
        expected[period] = (count + int(deals), total + Decimal(amount))
    with duckdb.connect(str(tiny_marts), read_only=True) as con:
        rows = con.sql(
            "select fiscal_period, count(*), sum(amount_reporting) from marts.fct_bookings group by 1"
        ).fetchall()
    built = {period: (count, total) for period, count, total in rows}
    assert {period: count for period, (count, _) in built.items()} == {p: c for p, (c, _) in expected.items()}
    for period, (count, total) in expected.items():
        assert abs(built[period][1] - total) <= Decimal("0.005") * count, period
    assert len(expected) >= 2


def test_won_and_lost_counts_equal_the_simulators_truth(tiny_marts: Path, tiny_world: Path) -> None:
    truth = pd.read_csv(tiny_world / "truth" / "opportunity_outcomes.csv")
    closed = truth[truth.is_closed_as_of_end]
    expected = {
        "won": int((closed.outcome == "Closed Won").sum()),
        "lost": int((closed.outcome == "Closed Lost").sum()),
    }
    with duckdb.connect(str(tiny_marts), read_only=True) as con:
        rows = con.sql("select status, count(*) from marts.fct_opportunity where is_closed group by 1").fetchall()
    assert dict(rows) == expected


def test_the_build_ran_the_unit_tests_and_data_tests_and_all_passed(tiny_marts: Path) -> None:
    results = json.loads((tiny_marts.parent / "target" / "run_results.json").read_text())["results"]
    kinds: dict[str, int] = {}
    for result in results:
        kind = result["unique_id"].split(".")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "exposure":  # exposures are declared, not run
            continue
        assert result["status"] in ("success", "pass"), (result["unique_id"], result["status"], result["message"])
    assert kinds["unit_test"] >= 7
    assert kinds["test"] >= 100
    # every model but those on the ML assets' tables, which build after those assets (tests/test_ml_pipeline.py)
    manifest = json.loads((tiny_marts.parent / "target" / "manifest.json").read_text())
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert len(models) == len(list((PROJECT_DIR / "models").rglob("*.sql")))
    assert kinds["model"] == len([model for model in models if "reads_ml" not in model["tags"]])
    assert kinds["exposure"] == 3


def mart_digests(database: Path) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent digest of every mart's rows."""
    with duckdb.connect(str(database), read_only=True) as con:
        return {
            name: con.sql(f"select count(*), sum(hash(t)::hugeint)::varchar from marts.{name} as t").fetchall()[0]
            for name in MARTS
        }


@pytest.fixture(scope="module")
def advanced_world(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """A copy of the tiny world built as of its last day D (marts digested), then advanced one day and loaded."""
    folder = tmp_path_factory.mktemp("advance")
    world = folder / "world"
    shutil.copytree(tiny_world, world)
    database = folder / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        ingest_everything(con, world / "landing")
    as_of = json.loads((world / "truth" / "world.json").read_text())["current_end"]
    dbt(["build", "--exclude", READS_ML, "--vars", json.dumps({"as_of_date": as_of})], database, folder / "target")
    before = mart_digests(database)
    advance(world, 1, progress=Progress(quiet=True))
    with duckdb.connect(str(database)) as con:
        ingest_everything(con, world / "landing")
    return {"folder": folder, "database": database, "as_of": as_of, "before": before}


def test_a_build_as_of_a_day_is_the_same_after_the_world_advances(advanced_world: dict) -> None:
    database, as_of = advanced_world["database"], advanced_world["as_of"]
    copy = advanced_world["folder"] / "as_of_again.duckdb"
    shutil.copy(database, copy)
    dbt(
        ["build", "--exclude", READS_ML, "--vars", json.dumps({"as_of_date": as_of})],
        copy,
        advanced_world["folder"] / "target_again",
    )
    assert mart_digests(copy) == advanced_world["before"]
    dbt(
        ["build", "--exclude", READS_ML, "--full-refresh", "--vars", json.dumps({"as_of_date": as_of})],
        copy,
        advanced_world["folder"] / "target_again",
    )
    assert mart_digests(copy) == advanced_world["before"]


def test_no_model_reads_the_wall_clock() -> None:
    clock = re.compile(r"current_date|current_timestamp|\bnow\(\)|getdate|sysdate|localtimestamp", re.IGNORECASE)
    sql = [*(PROJECT_DIR / "models").rglob("*.sql"), *(PROJECT_DIR / "macros").rglob("*.sql")]
    assert [path.name for path in sql if clock.search(path.read_text())] == []


def test_every_mart_has_an_enforced_contract_and_states_its_grain(tiny_marts: Path) -> None:
    manifest = json.loads((tiny_marts.parent / "target" / "manifest.json").read_text())
    marts = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }
    assert sorted(marts) == sorted(MARTS + MARTS_ON_ML)
    for name, node in marts.items():
        assert node["config"]["contract"]["enforced"], name
        assert node["description"].startswith("One row per"), name
        assert all(column.get("data_type") for column in node["columns"].values()), name


def test_every_model_states_its_grain(tiny_marts: Path) -> None:
    manifest = json.loads((tiny_marts.parent / "target" / "manifest.json").read_text())
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert [node["name"] for node in models if "one row per" not in node["description"].lower()] == []


def test_the_models_are_sqlfluff_clean() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("sqlfluff")), "lint", "models", "--processes", "2",
         "--disable-progress-bar"],
        cwd=PROJECT_DIR, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
