"""Scores of revenue forecasts against the bookings that followed: WAPE, bias and the coverage of the 80% interval.

An origin is the first forecast date of each month (`monthly_origins`); each origin's forecasts of every period whose
end is known (period_end <= the evaluation's as-of date; the current, partial period is left out, not scored on half
its bookings) are scored per grain, horizon, level and method, over the groups of the level: those with a forecast
by any method or with bookings. A group a method has no row for was forecast 0.

- wape = sum |actual - forecast| / sum actual; bias = sum (forecast - actual) / sum actual (both None when nothing
  was booked); coverage_80 = the share of groups whose actual lies in [p10, p90] (None for point baselines).
- `summarize` pools the origins: the totals behind each row are kept (actual_total, forecast_total, absolute_error),
  so pooled WAPE and bias are ratios of sums, not means of ratios.

The table is rebuilt on each run rather than appended: it is derived from the append-only forecasts and today's
bookings, and an old evaluation kept beside it would score against bookings since restated.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

METHODS = ("model", "naive", "seasonal_naive", "crm_weighted_pipeline", "commit_rollup")
COLUMNS = [
    "period_grain", "period_start", "period_end", "horizon", "level", "method", "n", "actual_total",
    "forecast_total", "absolute_error", "wape", "bias", "coverage_80",
]  # fmt: skip


def monthly_origins(forecast_dates: list[dt.date], as_of: dt.date, months: int = 12) -> list[dt.date]:
    """The first forecast date of each calendar month among the last `months` months up to `as_of`."""
    first_month = as_of.year * 12 + as_of.month - months
    firsts: dict[int, dt.date] = {}
    for day in sorted(forecast_dates):
        month = day.year * 12 + day.month - 1
        if first_month <= month and day <= as_of:
            firsts.setdefault(month, day)
    return list(firsts.values())


def empty_scores() -> pd.DataFrame:
    return pd.DataFrame(columns=[*COLUMNS, "origin_date"])


def score(forecasts: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    """One row per period, level and method of one origin.

    `forecasts`: period_grain, horizon, period_start, period_end, level, group_id, method, forecast and, for
    interval forecasts, p10 and p90. A method is scored on a period when it has a company row for it.
    `actuals`: period_grain, horizon, level, group_id, actual, for the periods to score.
    """
    period, keys = ["period_grain", "horizon"], ["period_grain", "horizon", "level"]
    forecasts = forecasts.merge(actuals[period].drop_duplicates(), on=period)
    if "p10" not in forecasts:
        forecasts = forecasts.assign(p10=np.nan, p90=np.nan)
    defined = forecasts.loc[forecasts["level"] == "company", [*period, "method"]].drop_duplicates()
    interval = set(forecasts.loc[forecasts["p10"].notna(), "method"])
    groups = pd.concat([forecasts[[*keys, "group_id"]], actuals[[*keys, "group_id"]]]).drop_duplicates()
    grid = groups.merge(defined, on=period)
    grid = grid.merge(forecasts[[*keys, "group_id", "method", "forecast", "p10", "p90"]], how="left")
    grid = grid.merge(actuals[[*keys, "group_id", "actual"]], how="left", on=[*keys, "group_id"])
    grid[["forecast", "actual"]] = grid[["forecast", "actual"]].fillna(0.0)
    has_interval = grid["method"].isin(interval)
    low, high = grid["p10"].fillna(0.0), grid["p90"].fillna(0.0)
    grid["covered"] = ((grid["actual"] >= low) & (grid["actual"] <= high)).where(has_interval).astype(float)
    grid["absolute_error"] = (grid["actual"] - grid["forecast"]).abs()
    out = grid.groupby([*keys, "method"], as_index=False).agg(
        n=("group_id", "size"),
        actual_total=("actual", "sum"),
        forecast_total=("forecast", "sum"),
        absolute_error=("absolute_error", "sum"),
        coverage_80=("covered", "mean"),
    )
    positive = out["actual_total"] > 0
    out["wape"] = (out["absolute_error"] / out["actual_total"]).where(positive)
    out["bias"] = ((out["forecast_total"] - out["actual_total"]) / out["actual_total"]).where(positive)
    out["coverage_80"] = out["coverage_80"].where(out["method"].isin(interval))
    bounds = forecasts[[*period, "period_start", "period_end"]].drop_duplicates(period)
    out = out.merge(bounds, on=period)
    out["horizon"] = out["horizon"].astype(int)
    order = {method: i for i, method in enumerate(METHODS)}
    out = out.sort_values([*keys, "method"], key=lambda c: c.map(order) if c.name == "method" else c)
    return out[COLUMNS].reset_index(drop=True)


def metrics(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float | None]:
    """WAPE and bias of forecasts against actuals, with the totals they are ratios of."""
    total = float(actual.sum())
    error = float(np.abs(actual - forecast).sum())
    predicted = float(forecast.sum())
    return {
        "actual_total": total,
        "forecast_total": predicted,
        "absolute_error": error,
        "wape": error / total if total > 0 else None,
        "bias": (predicted - total) / total if total > 0 else None,
    }


def summarize(evaluation: pd.DataFrame, grain: str, level: str) -> pd.DataFrame:
    """Per method and horizon, pooled over the origins: origins, n (groups x origins), wape, bias, coverage_80."""
    rows = evaluation[(evaluation["period_grain"] == grain) & (evaluation["level"] == level)]
    out = []
    for (method, horizon), part in rows.groupby(["method", "horizon"]):
        pooled = metrics(part["actual_total"].to_numpy(dtype=float), part["forecast_total"].to_numpy(dtype=float))
        pooled["absolute_error"] = float(part["absolute_error"].sum())
        total = pooled["actual_total"]
        covered = part.dropna(subset=["coverage_80"])
        out.append(
            {
                "method": method,
                "horizon": int(horizon),
                "origins": len(part),
                "n": int(part["n"].sum()),
                "wape": pooled["absolute_error"] / total if total > 0 else None,
                "bias": pooled["bias"],
                "coverage_80": float((covered["coverage_80"] * covered["n"]).sum() / covered["n"].sum())
                if len(covered)
                else None,
            }
        )
    order = {method: i for i, method in enumerate(METHODS)}
    frame = pd.DataFrame(out, columns=["method", "horizon", "origins", "n", "wape", "bias", "coverage_80"])
    frame = frame.sort_values(["horizon", "method"], key=lambda c: c.map(order) if c.name == "method" else c)
    return frame.reset_index(drop=True)


def coverage(evaluation: pd.DataFrame) -> dict[str, float | None]:
    """Share of the model's (origin, period, group) actuals inside [p10, p90]: over all levels ('all') and per
    level."""
    model = evaluation[(evaluation["method"] == "model") & evaluation["coverage_80"].notna()]
    out: dict[str, float | None] = {}
    for name, part in [("all", model), *model.groupby("level")]:
        weights = part["n"].to_numpy(dtype=float)
        covered = (part["coverage_80"].to_numpy(dtype=float) * weights).sum()
        out[name] = float(covered / weights.sum()) if len(part) else None
    return out
