"""The ML assets: win probabilities for every open deal, and the revenue forecast, with their backtests.

Thin wrappers: they read the features and outcomes from the working warehouse, call `ml` (plain scikit-learn, no
Dagster), write the `ml` schema back, and put what a person checks in the metadata (the promotion gate's decision,
the metrics beside the baselines, the reliability curve and the forecast's fan chart). They run after the marts and
before the dbt models that read them (`models_on_ml`), the audits and `publish`.
"""

import base64
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import duckdb
import pandas as pd

from ml.tables import ensure_tables
from orchestration.defs.resources import WAREHOUSE_POOL, ModelStore, Warehouse

if TYPE_CHECKING:
    from ml.forecast import ForecastStageResult
    from ml.win import WinStageResult

FEATURES = dg.AssetKey(["marts", "ml_opportunity_features"])
OUTCOMES = dg.AssetKey(["marts", "fct_opportunity"])
BOOKINGS = dg.AssetKey(["marts", "fct_bookings"])
WIN_MODELS = dg.AssetKey(["ml", "win_models"])
WIN_PROBABILITY = dg.AssetKey(["ml", "win_probability"])
WIN_BACKTEST = dg.AssetKey(["ml", "win_backtest"])
REVENUE_FORECAST = dg.AssetKey(["ml", "revenue_forecast"])
FORECAST_BACKTEST = dg.AssetKey(["ml", "forecast_backtest"])


class WinProbabilityConfig(dg.Config):
    """How the win-probability stage trains and backfills."""

    backfill_weeks: int = 52
    """On the first run, score the weekly snapshot dates of this many past weeks (each by a model trained only on
    what was known at that date): the backtest and the history finance reads."""
    retrain_every_days: int = 7
    """Train a new candidate when the serving model's training cutoff is this many days old (weekly by default)."""
    backfill_retrain_days: int = 28
    """Within the backfill, retrain every this many days (monthly)."""


class RevenueForecastConfig(dg.Config):
    """How far back the revenue forecast is backfilled and backtested."""

    backfill_months: int = 12
    """On the first run, forecast every scoring date of this many past months; the backtest's rolling origins."""


def as_of_date(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The build's as-of date: the latest snapshot of the features mart (which always holds the as-of date when a
    deal is open); None when no deal is open, as in a landing without CRM opportunities yet."""
    return con.execute(f"select max(snapshot_date) from {'.'.join(FEATURES.path)}").fetchone()[0]


NOTHING_OPEN = (
    "marts.ml_opportunity_features has no rows: no deal is open, so nothing was scored or forecast (the ml tables "
    "are there, empty). Land CRM opportunities to score them."
)


def nothing_open(context: dg.AssetExecutionContext, keys: tuple[dg.AssetKey, ...]) -> list[dg.MaterializeResult]:
    """The results of a stage that had no open deal to work on: its tables exist, empty, and say why."""
    context.log.warning(NOTHING_OPEN)
    return [
        dg.MaterializeResult(asset_key=key, metadata={"dagster/row_count": 0, "note": NOTHING_OPEN}) for key in keys
    ]


def png_markdown(png: bytes | None, title: str) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI (Markdown with a data URI)."""
    if not png:
        return dg.MetadataValue.md(f"_{title}: nothing to plot yet_")
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_none_")
    header = "| " + " | ".join(map(str, frame.columns)) + " |\n|" + "---|" * len(frame.columns) + "\n"
    rows = "\n".join(
        "| " + " | ".join(f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    )
    return dg.MetadataValue.md(header + rows)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            WIN_MODELS,
            deps=[FEATURES, OUTCOMES],
            description="One row per trained win-probability model: training window, sample sizes, calibration, "
            "and the promotion gate's decision. Artifacts and JSON model cards in MODELS_DIR, by content hash.",
            kinds={"scikitlearn", "duckdb"},
        ),
        dg.AssetSpec(
            WIN_PROBABILITY,
            deps=[WIN_MODELS, FEATURES],
            description="One row per open deal per scoring date: the calibrated win probability from the model "
            "serving that day, and the factors that moved it. Appended, never overwritten.",
            kinds={"scikitlearn", "duckdb"},
        ),
        dg.AssetSpec(
            WIN_BACKTEST,
            deps=[WIN_PROBABILITY, OUTCOMES],
            description="The model beside its baselines on every scored (deal, date) whose outcome is known: AUC, "
            "Brier and its skill, log loss, calibration error, expected versus actual won amount.",
            kinds={"duckdb"},
        ),
    ],
    group_name="ml",
    pool=WAREHOUSE_POOL,
    name="win_probability_stage",
)
def win_probability_stage(
    context: dg.AssetExecutionContext, config: WinProbabilityConfig, warehouse: Warehouse, model_store: ModelStore
):
    """Trains (weekly, gated) and scores (every snapshot date not yet scored, the first run backfilling a year)."""
    from ml.win import run_win_stage  # scikit-learn: imported by the runs that train, not by every definitions load

    with warehouse.get_connection() as con:
        as_of = as_of_date(con)
        if as_of is None:
            ensure_tables(con)
        else:
            result = run_win_stage(
                con, Path(model_store.path), as_of, backfill_weeks=config.backfill_weeks,
                retrain_every_days=config.retrain_every_days, backfill_retrain_days=config.backfill_retrain_days,
                log=context.log.info,
            )  # fmt: skip
    if as_of is None:
        yield from nothing_open(context, (WIN_MODELS, WIN_PROBABILITY, WIN_BACKTEST))
        return
    for decision in result.gate_decisions:
        (context.log.info if decision.served else context.log.warning)(
            f"model {decision.model_version} ({decision.model_kind}, data to {decision.training_cutoff}): "
            f"{'serves' if decision.served else 'refused'}: {decision.reason}"
        )
    if result.fallback_reason:
        context.log.warning(f"serving empirical stage win rates: {result.fallback_reason}")
    yield dg.MaterializeResult(asset_key=WIN_MODELS, metadata=model_metadata(result))
    yield dg.MaterializeResult(
        asset_key=WIN_PROBABILITY,
        metadata={
            "as_of_date": str(result.as_of),
            "dagster/row_count": result.scored_rows,
            "rows_appended": result.scored_rows,
            "dates_scored": len(result.dates_scored),
            "first_date_scored": str(result.dates_scored[0]) if result.dates_scored else "",
            "serving_model": result.serving_version or "",
            "seconds": round(result.seconds, 2),
        },
    )
    yield dg.MaterializeResult(asset_key=WIN_BACKTEST, metadata=backtest_metadata(result))


def model_metadata(result: "WinStageResult") -> dict[str, object]:
    decisions = pd.DataFrame(
        [
            (d.model_version, d.model_kind, str(d.training_cutoff), "serves" if d.served else "refused", d.reason)
            for d in result.gate_decisions
        ],
        columns=["model", "kind", "data to", "gate", "why"],
    )
    metadata: dict[str, object] = {
        "serving_model": result.serving_version or "",
        "serving_kind": result.serving_kind or "",
        "models_trained": result.models_trained,
        "gate_decisions": markdown_table(decisions),
        "fallback": result.fallback_reason or "none: the gradient-boosted model has enough history",
    }
    if result.model_card_path:
        metadata["model_card"] = dg.MetadataValue.path(str(result.model_card_path))
    return metadata


def backtest_metadata(result: "WinStageResult") -> dict[str, object]:
    metrics = pd.DataFrame([{"method": method, **values} for method, values in result.metrics.items()])
    return {
        "metrics": markdown_table(metrics),
        "reliability_curve": png_markdown(result.reliability_png, "reliability curve"),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            REVENUE_FORECAST,
            deps=[WIN_PROBABILITY, FEATURES, BOOKINGS, OUTCOMES],
            description="Bookings expected per month and fiscal quarter (this one and the next two) at company, "
            "team, territory and rep level, with p10/p50/p90. Appended, never overwritten.",
            kinds={"numpy", "duckdb"},
        ),
        dg.AssetSpec(
            FORECAST_BACKTEST,
            deps=[REVENUE_FORECAST, BOOKINGS],
            description="Rolling-origin backtest of the forecast beside naive, seasonal naive, CRM-weighted "
            "pipeline and commit roll-up: WAPE, bias and 80% interval coverage per origin, grain, level, horizon.",
            kinds={"duckdb"},
        ),
    ],
    group_name="ml",
    pool=WAREHOUSE_POOL,
    name="revenue_forecast_stage",
)
def revenue_forecast_stage(context: dg.AssetExecutionContext, config: RevenueForecastConfig, warehouse: Warehouse):
    """Forecasts every scoring date not yet forecast (the first run backfilling a year), then the backtest."""
    from ml.forecast import run_forecast_stage  # scikit-learn, as above

    with warehouse.get_connection() as con:
        as_of = as_of_date(con)
        if as_of is None:
            ensure_tables(con)
        else:
            result = run_forecast_stage(con, as_of, backfill_months=config.backfill_months, log=context.log.info)
    if as_of is None:
        yield from nothing_open(context, (REVENUE_FORECAST, FORECAST_BACKTEST))
        return
    if result.skipped_dates:
        context.log.warning(
            f"no win probabilities for {len(result.skipped_dates)} snapshot dates, not forecast: "
            f"{', '.join(map(str, result.skipped_dates[:5]))}"
        )
    yield dg.MaterializeResult(asset_key=REVENUE_FORECAST, metadata=forecast_metadata(result))
    yield dg.MaterializeResult(
        asset_key=FORECAST_BACKTEST,
        metadata={
            "dagster/row_count": result.backtest_rows,
            "company_fiscal_quarter": markdown_table(result.company_quarter_backtest),
            "coverage_80": result.coverage_80 if result.coverage_80 is not None else float("nan"),
            "coverage_80_by_level": dg.MetadataValue.json(result.coverage_80_by_level),
        },
    )


def forecast_metadata(result: "ForecastStageResult") -> dict[str, object]:
    return {
        "as_of_date": str(result.as_of),
        "model_version": result.model_version,
        "rows_appended": result.forecast_rows,
        "dates_forecast": len(result.forecast_dates),
        "fan_chart": png_markdown(result.fan_chart_png, "company fiscal-quarter forecast"),
        "seconds": round(result.seconds, 2),
    }
