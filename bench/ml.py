"""`python -m bench.ml --warehouse W --truth T`: the win-probability stage against the simulator's ground truth.

Runs `ml.win.run_win_stage` on a copy of the warehouse (the given file is only read), then scores every backfilled
(deal, scoring day) pair whose outcome is known by the as-of date: the model, each baseline, and the true
probability (the `true_p_win` of the deal's latest stage entry before the end of the scoring day, from
`stage_entries.csv`). Prints the figures beside the goals of issue 14 and whether each is met, and the stage's
timings at the scale of the given warehouse: the whole stage (backfill included), one training on everything known
at the as-of date, and scoring every deal open that day (with its top factors).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml.features import FEATURES_TABLE, load_outcomes, load_snapshots
from ml.metrics import score
from ml.win import METHODS, run_win_stage, scored_pairs, train

AUC_WITHIN_TRUTH = 0.03
BRIER_BELOW_STAGE_RATE = 0.20
MAX_ECE = 0.03
# seconds: the demo's whole ML stage has 60, and this part a budget of 25 of them; at bench scale, issue 14's
MAX_STAGE_SECONDS_DEMO = 25.0
MAX_TRAIN_SECONDS = 300.0
MAX_SCORE_SECONDS = 30.0


def truth_for_pairs(pairs: pd.DataFrame, truth_dir: Path) -> np.ndarray:
    """The true probability of each (deal, day): that of the deal's latest stage entry before the end of the day."""
    con = duckdb.connect()
    con.register("pairs", pairs[["opportunity_id", "as_of_date"]].reset_index(names="row"))
    entries = (truth_dir / "stage_entries.csv").as_posix()
    found = con.execute(
        f"""
        with entries as (
            select opportunity_id, cast(entered_at as timestamptz) as entered_at, true_p_win
            from read_csv('{entries}', header = true, all_varchar = true)
        ),
        days as (
            select row, opportunity_id, timezone('UTC', cast(cast(as_of_date as date) + 1 as timestamp)) as end_at
            from pairs
        )
        select days.row, entries.true_p_win
        from days asof left join entries
            on days.opportunity_id = entries.opportunity_id and days.end_at > entries.entered_at
        order by days.row
        """
    ).df()
    return pd.to_numeric(found["true_p_win"]).to_numpy(dtype=float)


def weekly_truth_auc(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> float:
    """The true probabilities' AUC over every Sunday snapshot of a closed deal: the ceiling issue 14 quotes."""
    snapshots = con.execute(
        f"select opportunity_id, snapshot_date as as_of_date from {FEATURES_TABLE} where dayofweek(snapshot_date) = 0"
    ).df()
    outcomes = load_outcomes(con)[["opportunity_id", "is_won"]]
    pairs = snapshots.merge(outcomes, on="opportunity_id", how="inner").reset_index(drop=True)
    return score(pairs["is_won"].to_numpy(dtype=bool), truth_for_pairs(pairs, truth_dir)).auc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ml", description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=Path("data/warehouse.duckdb"))
    parser.add_argument("--truth", type=Path, default=Path("data/truth"))
    parser.add_argument("--backfill-weeks", type=int, default=52)
    parser.add_argument("--work", type=Path, default=None, help="folder for the copy and the models (default: temp)")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_ml_"))
    work.mkdir(parents=True, exist_ok=True)
    database = work / "warehouse.duckdb"
    shutil.copy(args.warehouse, database)
    models = work / "models"
    shutil.rmtree(models, ignore_errors=True)
    con = duckdb.connect(str(database))
    # the whole stage from scratch: a warehouse the refresh job has run on already holds its ml tables
    con.execute("drop schema if exists ml cascade")
    as_of = con.execute(f"select max(snapshot_date) from {FEATURES_TABLE}").fetchone()[0]

    started = time.perf_counter()
    result = run_win_stage(con, models, as_of, backfill_weeks=args.backfill_weeks, log=lambda message: None)
    stage_seconds = time.perf_counter() - started

    pairs = scored_pairs(con, as_of)
    pairs["true_probability"] = truth_for_pairs(pairs, args.truth)
    y = pairs["is_won"].to_numpy(dtype=bool)
    amount = pairs["amount_reporting"].to_numpy(dtype=float)
    figures = {
        method: score(y, pairs[method].to_numpy(dtype=float), amount)
        for method in (*METHODS, "true_probability")
        if pairs[method].notna().all()
    }

    weekly = weekly_truth_auc(con, args.truth)

    started = time.perf_counter()
    snapshots = load_snapshots(con, as_of)
    outcomes = load_outcomes(con)
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model = train(snapshots, outcomes, as_of)
    train_seconds = time.perf_counter() - started
    open_deals = snapshots[snapshots["snapshot_date"] == as_of]
    started = time.perf_counter()
    model.score(open_deals)
    score_seconds = time.perf_counter() - started

    print(f"warehouse {args.warehouse} as of {as_of}: {len(snapshots):,} snapshot rows, {len(open_deals):,} open deals")
    print(
        f"backfill: {len(result.dates_scored)} scoring days from {result.dates_scored[0]} "
        f"({result.scored_rows:,} rows), {result.models_trained} models trained"
    )
    for decision in result.gate_decisions:
        verdict = "serves " if decision.served else "refused"
        model_name = f"{decision.model_kind} {decision.model_version}"
        print(f"  {decision.training_cutoff} {model_name:<31} {verdict} {decision.reason}")
    if result.fallback_reason:
        print(f"fallback: {result.fallback_reason}")
    print(f"\n{len(pairs):,} (deal, scoring day) pairs with a known outcome; base rate {y.mean():.3f}")
    print(f"{'method':<24}{'AUC':>8}{'Brier':>9}{'skill':>8}{'log loss':>10}{'ECE':>8}{'expected/actual won':>22}")
    for method, figure in figures.items():
        ratio = figure.expected_won_amount / figure.actual_won_amount if figure.actual_won_amount else float("nan")
        print(
            f"{method:<24}{figure.auc:>8.4f}{figure.brier:>9.4f}{figure.brier_skill:>8.3f}{figure.log_loss:>10.4f}"
            f"{figure.ece:>8.4f}{ratio:>22.3f}"
        )

    model_figures, truth, stage_rate = figures["model"], figures["true_probability"], figures["empirical_stage_rate"]
    brier_cut = 1 - model_figures.brier / stage_rate.brier
    demo_scale = len(snapshots) < 200_000
    goals = [
        (
            f"AUC within {AUC_WITHIN_TRUTH} of the true probabilities' ({truth.auc:.4f})",
            model_figures.auc >= truth.auc - AUC_WITHIN_TRUTH,
            f"{model_figures.auc:.4f} ({model_figures.auc - truth.auc:+.4f})",
        ),
        (
            f"Brier at least {BRIER_BELOW_STAGE_RATE:.0%} below the stage-rate baseline's ({stage_rate.brier:.4f})",
            brier_cut >= BRIER_BELOW_STAGE_RATE,
            f"{model_figures.brier:.4f} ({brier_cut:.1%} below; truth {1 - truth.brier / stage_rate.brier:.1%})",
        ),
        (f"calibration error at most {MAX_ECE}", model_figures.ece <= MAX_ECE, f"{model_figures.ece:.4f}"),
    ]
    if demo_scale:
        goals.append(
            (
                f"whole stage, backfill included, within {MAX_STAGE_SECONDS_DEMO:.0f} s",
                stage_seconds <= MAX_STAGE_SECONDS_DEMO,
                f"{stage_seconds:.1f} s",
            )
        )
    goals += [
        (
            f"one training within {MAX_TRAIN_SECONDS:.0f} s",
            train_seconds <= MAX_TRAIN_SECONDS,
            f"{train_seconds:.1f} s",
        ),
        (
            f"scoring every open deal within {MAX_SCORE_SECONDS:.0f} s",
            score_seconds <= MAX_SCORE_SECONDS,
            f"{score_seconds:.1f} s",
        ),
    ]
    print(
        f"for reference, over every weekly (Sunday) snapshot of a closed deal, not only the backfill: the true "
        f"probabilities' AUC is {weekly:.4f} (issue 14 quotes 0.887)"
    )
    print("\ngoals")
    for goal, met, measured in goals:
        print(f"  [{'pass' if met else 'FAIL'}] {goal}: {measured}")
    print(
        f"\ntimings: whole stage {stage_seconds:.1f} s; loading features {load_seconds:.1f} s; one training "
        f"{train_seconds:.1f} s; scoring {len(open_deals):,} open deals with factors {score_seconds:.1f} s"
    )
    return 0 if all(met for _, met, _ in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
