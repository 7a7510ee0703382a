"""The ML stages in the refresh job, as `make demo` runs them: features -> win probability -> forecast -> the dbt
models on their tables -> audits -> publish, on the tiny world (too little history for the boosted model, so the
stage-rate fallback serves and says so); a second refresh that rebuilds appends nothing; the ml tables are
documented dbt sources. The first refresh is the session's `tiny_refresh` (tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from ml.forecast import LEVELS
from ml.tables import TABLES, ensure_tables
from orchestration.lib.dbt_project import PROJECT_DIR
from tests.conftest import run_refresh

ML_ROWS = "select count(*) from ml.{table}"
# the ml tables a run appends to (the backtests are recomputed)
APPENDED_TABLES = ("win_probability", "win_models", "revenue_forecast")
# the run config of `make materialize REBUILD=1`: build, score and publish although nothing new landed
REBUILD = PROJECT_DIR.parent / "orchestration" / "rebuild.yaml"


def ml_rows(database: Path) -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as con:
        return {table: con.execute(ML_ROWS.format(table=table)).fetchone()[0] for table in APPENDED_TABLES}


@pytest.fixture(scope="module")
def two_refreshes(tiny_refresh, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The session's refresh of the tiny world, then the job again on a copy of its folder, rebuilding although
    nothing new landed (`make materialize REBUILD=1`), with the ml row counts after each."""
    _, folder = tiny_refresh
    again = tmp_path_factory.mktemp("ml_refresh") / "again"
    shutil.copytree(folder, again, symlinks=True)
    second = run_refresh(again, run_config=yaml.safe_load(REBUILD.read_text()))
    return {
        "second": second,
        "after_first": ml_rows(folder / "warehouse.duckdb"),
        "after_second": ml_rows(again / "warehouse.duckdb"),
    }


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def test_the_refresh_scores_forecasts_builds_on_them_and_publishes(tiny_refresh) -> None:
    result, folder = tiny_refresh
    assert result.success
    assert {
        "ml/win_models", "ml/win_probability", "ml/win_backtest", "ml/revenue_forecast", "ml/forecast_backtest",
        "marts/fct_opportunity_scored", "marts/mart_forecast_accuracy", "published/sales",
    } <= materialized(result)  # fmt: skip
    with duckdb.connect(str(folder / "published" / "sales.duckdb"), read_only=True) as con:
        open_deals = con.execute("select count(*) from marts.fct_opportunity where status = 'open'").fetchone()[0]
        scored = con.execute("select count(*), count(p_win) from marts.fct_opportunity_scored").fetchone()
        forecasts = con.execute("select count(*) from ml.revenue_forecast").fetchone()[0]
        later_cutoffs = con.execute(
            "select count(*) from ml.win_probability where training_cutoff > as_of_date"
        ).fetchone()[0]
    assert scored == (open_deals, open_deals) and open_deals > 0
    assert forecasts > 0 and later_cutoffs == 0


def test_too_little_history_serves_stage_rates_and_says_so_in_the_metadata_and_the_model_card(tiny_refresh) -> None:
    result, folder = tiny_refresh
    models = next(
        event for event in result.get_asset_materialization_events() if event.asset_key.path == ["ml", "win_models"]
    )
    metadata = models.materialization.metadata
    assert metadata["serving_kind"].value == "stage_rate"
    assert "fewer than 200" in metadata["fallback"].value
    card = json.loads(Path(metadata["model_card"].value).read_text())
    assert "fewer than 200" in json.dumps(card)
    assert Path(metadata["model_card"].value).parent == folder / "models"


def test_the_reliability_curve_and_the_fan_chart_are_images_in_the_metadata(tiny_refresh) -> None:
    result, _ = tiny_refresh
    events = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert events["ml/win_backtest"]["reliability_curve"].value.startswith("![reliability curve](data:image/png;")
    assert events["ml/revenue_forecast"]["fan_chart"].value.startswith("![company fiscal-quarter forecast](data:")


def test_a_second_refresh_that_rebuilds_appends_nothing_and_still_publishes(two_refreshes: dict) -> None:
    assert two_refreshes["second"].success
    assert two_refreshes["after_second"] == two_refreshes["after_first"]
    assert all(two_refreshes["after_first"].values())
    assert "published/sales" in materialized(two_refreshes["second"])


def test_every_ml_table_is_a_documented_dbt_source_with_the_columns_it_is_created_with() -> None:
    sources = yaml.safe_load((PROJECT_DIR / "models" / "staging" / "ml" / "_ml__sources.yml").read_text())
    documented = {
        f"ml.{table['name']}": [column["name"] for column in table.get("columns", [])]
        for source in sources["sources"]
        if source["name"] == "ml"
        for table in source["tables"]
    }
    with duckdb.connect() as con:
        ensure_tables(con)
        created = {
            f"ml.{name}": [column for (column,) in con.execute(
                "select column_name from duckdb_columns() where schema_name = 'ml' and table_name = ? "
                "order by column_index", [name]).fetchall()]
            for name in (table.split(".")[1] for table in TABLES)
        }  # fmt: skip
    assert documented == created


def test_the_forecast_levels_are_the_ones_dbt_compares_with_bookings() -> None:
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    assert tuple(project["vars"]["forecast_levels"]) == LEVELS
