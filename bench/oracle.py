"""`python -m bench oracle`: the forecast noise floor, measured on futures of the simulated world.

A forecast can only be as good as the world is predictable. For each origin (a forecast date), the oracle runs N
futures of the world from that date (`simulator.future`: the same world before it, another random future after it;
future seeds 1..N) and takes each period's bookings in every future. It knows everything the simulator knows at the
origin, the latent health of every open deal included, and nothing after it: its error is the floor no model can
beat on average. Its point forecast is the mean (the median is reported too), its interval p10-p90, and both are
compared with what the world itself (no future seed) booked.

Bookings follow fct_bookings: won deals, by close date, each deal's amount in the reporting currency at its close
date's rate rounded to the cent. Only periods that end by the world's last day are scored (the world's actuals are
incomplete after it), so late origins score fewer horizons.

Writes `bench/out/oracle/<preset>-<seed>.csv` (origin, period_grain, period_start, horizon, actual, mean, p10, p50,
p90, n_futures) and `...-futures.csv` (every future's bookings), and prints the tables for docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.config import WorldConfig, load_config
from simulator.deals import FxRates
from simulator.future import Future, FutureOutcomes
from simulator.timeutil import fiscal_quarter_start
from simulator.world import build_world

GRAINS = ("fiscal_quarter", "month")
HORIZONS = (0, 1, 2)
COLUMNS = ["origin", "period_grain", "period_start", "horizon", "actual", "mean", "p10", "p50", "p90", "n_futures"]


@dataclass(frozen=True)
class Period:
    grain: str
    start: dt.date
    end: dt.date  # exclusive
    horizon: int


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_start(grain: str, day: dt.date, fiscal_start_month: int) -> dt.date:
    if grain == "month":
        return day.replace(day=1)
    start = fiscal_quarter_start(np.array([np.datetime64(day, "D")]), fiscal_start_month)[0]
    return start.astype(dt.date)


def scored_periods(origin: dt.date, cfg: WorldConfig, grains: tuple[str, ...]) -> list[Period]:
    """The periods containing the origin and the next two, at each grain, that end by the world's last day."""
    periods = []
    for grain in grains:
        length = 3 if grain == "fiscal_quarter" else 1
        first = period_start(grain, origin, cfg.fiscal_year_start_month)
        for horizon in HORIZONS:
            start = add_months(first, horizon * length)
            end = add_months(start, length)
            if end <= cfg.end_date + dt.timedelta(days=1):
                periods.append(Period(grain, start, end, horizon))
    return periods


def default_origins(cfg: WorldConfig, every: str = "month") -> list[dt.date]:
    """First days of the months (or fiscal quarters) in the last twelve months of the world."""
    months = [add_months(cfg.end_date.replace(day=1), -k) for k in range(11, -1, -1)]
    months = [month for month in months if month > cfg.start_date]
    if every == "month":
        return months
    return [m for m in months if (m.month - cfg.fiscal_year_start_month) % 3 == 0]


def bookings(deals: pd.DataFrame, fx: FxRates, periods: list[Period]) -> list[float]:
    """Bookings in the reporting currency in each period, as fct_bookings counts them."""
    won = deals[deals.is_won.to_numpy()]
    day = won.closed_at.to_numpy().astype("datetime64[D]")
    amount = won.amount.to_numpy() * fx.rates(won.currency.to_numpy(), day)
    amount = np.floor(amount * 100 + 0.5) / 100  # decimal(18, 2), as the warehouse casts it
    return [
        float(amount[(day >= np.datetime64(p.start, "D")) & (day < np.datetime64(p.end, "D"))].sum()) for p in periods
    ]


# ---------------------------------------------------------------- worker processes
_ENGINE: FutureOutcomes | None = None


def _start_worker(preset: str, seed: int, until: dt.date) -> None:
    global _ENGINE
    cfg = load_config(preset)
    _ENGINE = FutureOutcomes(build_world(cfg, seed), until)


def _bookings_of(task: tuple[dt.date | None, int | None, list[Period]]) -> list[float]:
    """One future's bookings in the periods (the world's own when the origin is None)."""
    origin, future_seed, periods = task
    assert _ENGINE is not None
    if origin is None:
        deals = _ENGINE.of_world()
    else:
        deals = _ENGINE.of_future(Future(future_seed, origin), until=max(p.end for p in periods))
    return bookings(deals, _ENGINE.world.fx, periods)


# ---------------------------------------------------------------- the oracle
def run(
    preset: str,
    seed: int,
    origins: list[dt.date],
    futures: int,
    grains: tuple[str, ...] = GRAINS,
    workers: int = 2,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary per origin, grain and horizon; every future's bookings) for `futures` futures of each origin."""
    cfg = load_config(preset)
    plans = {origin: scored_periods(origin, cfg, grains) for origin in origins}
    plans = {origin: periods for origin, periods in plans.items() if periods}
    every_period = sorted({(p.grain, p.start, p.end) for periods in plans.values() for p in periods})
    world_periods = [Period(grain, start, end, -1) for grain, start, end in every_period]
    tasks = [(None, None, world_periods)]
    tasks += [(origin, k, periods) for origin, periods in plans.items() for k in range(1, futures + 1)]
    workers = max(1, min(workers, os.cpu_count() or 1))
    until = cfg.end_date
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(preset, seed, until)) as pool:
        results = list(pool.map(_bookings_of, tasks, chunksize=2))
    actual = {(grain, start): value for (grain, start, _), value in zip(every_period, results[0], strict=True)}
    samples = [
        {"origin": origin, "period_grain": p.grain, "period_start": p.start, "horizon": p.horizon,
         "future_seed": k, "bookings": value}
        for (origin, k, periods), values in zip(tasks[1:], results[1:], strict=True)
        for p, value in zip(periods, values, strict=True)
    ]  # fmt: skip
    samples = pd.DataFrame(samples)
    keys = ["origin", "period_grain", "period_start", "horizon"]
    summary = samples.groupby(keys, sort=False).bookings.agg(
        mean="mean",
        p10=lambda v: np.quantile(v, 0.1),
        p50="median",
        p90=lambda v: np.quantile(v, 0.9),
        n_futures="size",
    )
    summary = summary.reset_index()
    periods = zip(summary.period_grain, summary.period_start, strict=True)
    summary.insert(4, "actual", [actual[(grain, start)] for grain, start in periods])
    return summary[COLUMNS], samples


def scores(summary: pd.DataFrame) -> pd.DataFrame:
    """Per grain and horizon (and over all horizons): WAPE of the median and of the mean, bias of the median (as a
    share of actual bookings) and how often the p10-p90 interval held the actual."""
    rows = []
    by_horizon = list(summary.groupby(["period_grain", "horizon"], sort=False))
    overall = [((grain, "all"), group) for grain, group in summary.groupby("period_grain", sort=False)]
    for (grain, horizon), group in by_horizon + overall:
        actual = group.actual.sum()
        rows.append({
            "period_grain": grain, "horizon": horizon, "n": len(group),
            "wape_p50": (group.actual - group.p50).abs().sum() / actual,
            "wape_mean": (group.actual - group["mean"]).abs().sum() / actual,
            "bias_p50": (group.p50 - group.actual).sum() / actual,
            "coverage_80": ((group.actual >= group.p10) & (group.actual <= group.p90)).mean(),
        })  # fmt: skip
    return pd.DataFrame(rows)


def render(summary: pd.DataFrame, scored: pd.DataFrame) -> str:
    def money(value: float) -> str:
        return f"{value / 1e6:,.2f}"

    lines = ["bookings in USD millions; APE = |actual - p50| / actual", ""]
    for grain, group in summary.groupby("period_grain", sort=False):
        lines += [
            f"{grain}:",
            "",
            "| origin | horizon | period | actual | p10 | p50 | p90 | mean | APE | in p10-p90 |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in group.sort_values(["origin", "horizon"]).itertuples():
            covered = "yes" if r.p10 <= r.actual <= r.p90 else "no"
            lines.append(
                f"| {r.origin} | {r.horizon} | {r.period_start} | {money(r.actual)} | {money(r.p10)} | "
                f"{money(r.p50)} | {money(r.p90)} | {money(r.mean)} | {abs(r.actual - r.p50) / r.actual:.1%} | "
                f"{covered} |"
            )
        lines.append("")
    lines += [
        "| grain | horizon | n | WAPE (p50) | WAPE (mean) | bias (p50) | coverage 80% |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in scored.itertuples():
        lines.append(
            f"| {r.period_grain} | {r.horizon} | {r.n} | {r.wape_p50:.1%} | {r.wape_mean:.1%} | {r.bias_p50:+.1%} | "
            f"{r.coverage_80:.0%} |"
        )
    return "\n".join(lines)


def main(preset: str, seed: int, futures: int, origins: str, grains: str, workers: int, out: Path | None) -> int:
    started = time.perf_counter()
    cfg = load_config(preset)
    if origins in ("monthly", "quarterly"):
        chosen = default_origins(cfg, "month" if origins == "monthly" else "fiscal_quarter")
    else:
        chosen = [dt.date.fromisoformat(text.strip()) for text in origins.split(",") if text.strip()]
    for origin in chosen:
        if not cfg.start_date < origin <= cfg.end_date:
            raise SystemExit(f"origin {origin} is outside the world ({cfg.start_date} to {cfg.end_date})")
    picked = tuple(g.strip() for g in grains.split(","))
    if unknown := set(picked) - set(GRAINS):
        raise SystemExit(f"unknown grain(s) {sorted(unknown)}; choose from {', '.join(GRAINS)}")
    unscored = [origin for origin in chosen if not scored_periods(origin, cfg, picked)]
    summary, samples = run(preset, seed, chosen, futures, picked, workers)
    out = out or Path("bench/out/oracle")
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / f"{preset}-{seed}.csv", index=False, float_format="%.2f", lineterminator="\n")
    samples.to_csv(out / f"{preset}-{seed}-futures.csv", index=False, float_format="%.2f", lineterminator="\n")
    elapsed = time.perf_counter() - started
    print(f"oracle: preset {preset!r} seed {seed}, {futures} futures x {len(chosen)} origins, {workers} workers")
    if unscored:
        print(f"origins with no period ending by {cfg.end_date} (not scored): {', '.join(map(str, unscored))}")
    print()
    print(render(summary, scores(summary)))
    print(f"\nwrote {out / f'{preset}-{seed}.csv'}; wall time {elapsed:.1f} s on {os.cpu_count()} cores")
    return 0
