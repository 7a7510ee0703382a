"""Win probability (ml/): leakage guards, the fallback, the gate, point-in-time training and an idempotent stage,
on small synthetic worlds (no simulator, no dbt: each test runs in about a second)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml import store
from ml.features import (
    ACTIVITY_TYPES,
    CATEGORICAL,
    NUMERIC,
    WINDOWS,
    LeakageError,
    model_matrix,
    training_rows,
)
from ml.metrics import Scores, expected_calibration_error, score
from ml.plots import reliability_png
from ml.tables import TABLES
from ml.win import STAGE_RATE, fit_candidate, gate, run_win_stage, train

FIRST_SUNDAY = dt.date(2024, 1, 7)
STAGES = ("Prospecting", "Qualification", "Proposal", "Closing")


def synthetic_world(
    deals: int, seed: int, weeks: int = 60, win_shift: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(snapshots, outcomes) of a small sales process: each week an open deal advances a stage, is lost, or waits;
    how engaged its buyer is drives both its activity and its chance to advance. Returns frames shaped like
    `load_snapshots` and `load_outcomes`."""
    rng = np.random.default_rng(seed)
    rows, outcomes = [], []
    segments = np.array(["SMB", "Mid-Market", "Enterprise"])
    for deal in range(deals):
        opportunity_id = f"006{seed:03d}{deal:06d}"
        engagement = rng.normal()
        segment = rng.integers(0, 3)
        start_week = int(rng.integers(0, weeks - 4))
        stage, stage_week = 0, start_week
        for week in range(start_week, weeks):
            day = FIRST_SUNDAY + dt.timedelta(weeks=week)
            age = (week - start_week) * 7 + 3
            rate = np.exp(0.6 * engagement)
            counts = {
                f"{activity}_{days}d": float(rng.poisson(scale * rate * min(age, days)))
                for activity, scale in zip(ACTIVITY_TYPES, (0.4, 0.3, 0.1), strict=True)
                for days in WINDOWS
            }
            rows.append(
                {
                    "opportunity_id": opportunity_id, "snapshot_date": day, "stage_name": STAGES[stage],
                    "stage_order": float(stage + 1), "days_in_stage": float((week - stage_week) * 7 + 1),
                    "age_days": float(age), "amount_reporting": float(rng.lognormal(10, 1)),
                    "close_date_pushes": float(rng.integers(0, 2)), "days_to_expected_close": float(30 - age),
                    "owner_tenure_days": 400.0, **counts, "connected_calls_to_date": counts["calls_90d"] / 2,
                    "meetings_held_to_date": counts["meetings_90d"], "contacts_engaged_to_date": 2.0,
                    "days_since_last_activity": 2.0, "owner_closed_deals": 20.0, "owner_win_rate": 0.3,
                    "segment_closed_deals": 100.0, "segment_win_rate": 0.3, "forecast_category": "Pipeline",
                    "opportunity_type": "New Business", "segment": segments[segment], "region": "EMEA",
                    "crm_probability": (10.0, 20.0, 50.0, 80.0)[stage],
                }
            )  # fmt: skip
            health = engagement - 0.3 * segment + win_shift
            move = rng.random()
            if move < 0.6 / (1 + np.exp(-(health + 0.5))):
                if stage == len(STAGES) - 1:
                    outcomes.append((opportunity_id, day + dt.timedelta(days=3), True))
                    break
                stage, stage_week = stage + 1, week + 1
            elif move > 0.9:
                outcomes.append((opportunity_id, day + dt.timedelta(days=3), False))
                break
    snapshots = pd.DataFrame(rows)
    return snapshots, pd.DataFrame(outcomes, columns=["opportunity_id", "closed_date", "is_won"])


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic_world(1500, seed=1)


def warehouse(path: Path, snapshots: pd.DataFrame, outcomes: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    """A DuckDB file with the two marts the stage reads."""
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.register("snapshots", snapshots)
    con.execute("create table marts.ml_opportunity_features as select * from snapshots")
    frame = outcomes.assign(closed_at=pd.to_datetime(outcomes["closed_date"]).dt.tz_localize("UTC"))
    con.register("outcomes", frame)
    con.execute(
        "create table marts.fct_opportunity as select opportunity_id, true as is_closed, is_won, closed_at "
        "from outcomes"
    )
    return con


def ml_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    return {name: con.execute(f"select * from {name} order by all").df() for name in TABLES}


@pytest.mark.parametrize("column", ["is_won", "closed_at", "final_stage", "close_amount", "Status", "won_amount"])
def test_a_frame_carrying_a_column_known_only_after_the_outcome_is_refused(world, column: str) -> None:
    snapshots, _ = world
    with pytest.raises(LeakageError, match=column):
        model_matrix(snapshots.head(5).assign(**{column: 1}))


def test_a_column_outside_the_declared_features_is_ignored(world) -> None:
    snapshots, _ = world
    frame = snapshots.head(50)
    with_extra = frame.assign(secret_score=np.arange(50), owner_id="x")
    pd.testing.assert_frame_equal(model_matrix(frame), model_matrix(with_extra))


def test_training_rows_hold_only_snapshots_and_outcomes_known_at_the_cutoff(world) -> None:
    snapshots, outcomes = world
    cutoff = FIRST_SUNDAY + dt.timedelta(weeks=30)
    rows = training_rows(snapshots, outcomes, cutoff)
    closed_by = outcomes.set_index("opportunity_id")["closed_date"]
    assert (rows.features["snapshot_date"] <= cutoff).all()
    assert (closed_by.loc[rows.features["opportunity_id"]] <= cutoff).all()
    assert len(rows.features) == len(rows.is_won) > 0


@pytest.mark.slow  # trains twice on 3,000 synthetic deals
def test_shuffled_labels_bring_the_auc_to_about_one_half() -> None:
    """Outcomes shuffled between deals carry no signal, so a model trained on them scores about 0.5 on the
    time-based validation deals; more would mean a deal's rows sit on both sides of the split, or the label
    reaches the features. The same pipeline on the real outcomes learns (AUC above 0.7)."""
    snapshots, outcomes = synthetic_world(3000, seed=5)
    cutoff = snapshots["snapshot_date"].max()
    shuffled = outcomes.assign(is_won=np.random.default_rng(3).permutation(outcomes["is_won"].to_numpy()))
    for labels, expected in ((outcomes, None), (shuffled, 0.5)):
        holdout = fit_candidate(snapshots, labels, cutoff).holdout
        auc = score(holdout.is_won, holdout.forecasts["model"]).auc
        assert auc > 0.7 if expected is None else auc == pytest.approx(expected, abs=0.05)


def test_fewer_than_200_won_deals_fall_back_to_stage_win_rates_and_say_so(tmp_path: Path) -> None:
    snapshots, outcomes = synthetic_world(500, seed=4, win_shift=-1.0)
    assert outcomes["is_won"].sum() < 200
    cutoff = snapshots["snapshot_date"].max()
    model = train(snapshots, outcomes, cutoff)
    assert model.kind == STAGE_RATE and "too little history" in model.reason

    con = warehouse(tmp_path / "warehouse.duckdb", snapshots, outcomes)
    result = run_win_stage(con, tmp_path / "models", cutoff, backfill_weeks=4, log=lambda message: None)
    assert result.serving_kind == STAGE_RATE and "too little history" in result.fallback_reason
    card = json.loads(result.model_card_path.read_text())
    assert card["model_kind"] == STAGE_RATE and "too little history" in card["kind_reason"]
    closing = con.execute(
        "select scores.p_win from ml.win_probability as scores join marts.ml_opportunity_features as features "
        "on scores.opportunity_id = features.opportunity_id and scores.as_of_date = features.snapshot_date "
        "where features.stage_name = 'Closing' limit 1"
    ).fetchone()
    assert closing is not None and 0 < closing[0] < 1


def scores(brier: float, ece: float) -> Scores:
    return Scores(n=100, base_rate=0.3, auc=0.8, brier=brier, brier_skill=0.0, log_loss=0.5, ece=ece)


def test_the_gate_passes_a_calibrated_model_that_beats_the_stage_rates() -> None:
    passed, reason = gate(scores(brier=0.15, ece=0.02), scores(brier=0.18, ece=0.10))
    assert passed and "beats" in reason


@pytest.mark.parametrize(
    ("candidate", "why"),
    [(scores(brier=0.19, ece=0.02), "does not beat"), (scores(brier=0.15, ece=0.06), "calibration error")],
)
def test_the_gate_refuses_a_model_worse_than_the_stage_rates_or_miscalibrated(candidate: Scores, why: str) -> None:
    passed, reason = gate(candidate, scores(brier=0.18, ece=0.10))
    assert not passed and why in reason


@pytest.mark.slow  # runs the whole stage, backfill included
def test_a_refused_model_never_serves_and_the_previous_one_keeps_serving(
    world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshots, outcomes = world
    calls = []

    def first_passes_then_none(candidate: Scores, baseline: Scores) -> tuple[bool, str]:
        calls.append(candidate)
        return (True, "first") if len(calls) == 1 else (False, "worse than the stage rates")

    monkeypatch.setattr("ml.win.gate", first_passes_then_none)
    con = warehouse(tmp_path / "warehouse.duckdb", snapshots, outcomes)
    as_of = snapshots["snapshot_date"].max()
    result = run_win_stage(con, tmp_path / "models", as_of, backfill_weeks=6, log=lambda message: None)

    first, refused, *_ = result.gate_decisions
    assert len(calls) == result.models_trained >= 2
    assert first.served and not refused.served and "keeps serving" in refused.reason
    served_by = con.execute("select distinct model_version from ml.win_probability").fetchall()
    assert served_by == [(first.model_version,)]
    assert con.execute(
        "select is_served from ml.win_models where model_version = ?", [refused.model_version]
    ).fetchone() == (False,)


@pytest.mark.slow  # runs the whole stage, backfill included
def test_no_day_is_scored_by_a_model_trained_after_it(world, tmp_path: Path) -> None:
    snapshots, outcomes = world
    con = warehouse(tmp_path / "warehouse.duckdb", snapshots, outcomes)
    as_of = snapshots["snapshot_date"].max()
    result = run_win_stage(con, tmp_path / "models", as_of, backfill_weeks=10, log=lambda message: None)
    assert result.models_trained >= 3
    counts = con.execute(
        "select count(*), count(*) filter (where training_cutoff > as_of_date), count(distinct as_of_date) "
        "from ml.win_probability"
    ).fetchone()
    assert counts[0] > 0 and counts[1] == 0 and counts[2] == 10


@pytest.mark.slow  # runs the whole stage, backfill included
def test_running_the_stage_twice_changes_nothing_and_a_new_day_only_appends(world, tmp_path: Path) -> None:
    snapshots, outcomes = world
    con = warehouse(tmp_path / "warehouse.duckdb", snapshots, outcomes)
    last = snapshots["snapshot_date"].max()
    earlier = last - dt.timedelta(weeks=1)
    models = tmp_path / "models"
    first = run_win_stage(con, models, earlier, backfill_weeks=5, log=lambda message: None)
    before = ml_tables(con)
    again = run_win_stage(con, models, earlier, backfill_weeks=5, log=lambda message: None)
    assert first.scored_rows > 0 and again.scored_rows == again.models_trained == 0
    for name, frame in ml_tables(con).items():
        pd.testing.assert_frame_equal(frame, before[name], obj=name)

    later = run_win_stage(con, models, last, backfill_weeks=5, log=lambda message: None)
    assert later.dates_scored == [last]
    after = ml_tables(con)["ml.win_probability"]
    kept = after[after["as_of_date"] < pd.Timestamp(last)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before["ml.win_probability"])


def test_top_factors_are_json_with_positive_contributions_up_and_negative_down(world) -> None:
    snapshots, outcomes = world
    model = train(snapshots, outcomes, snapshots["snapshot_date"].max())
    frame = snapshots.tail(40)
    p, ups, downs = model.score(frame)
    np.testing.assert_allclose(p, model.predict(frame))
    assert any(json.loads(up) for up in ups) and any(json.loads(down) for down in downs)
    for up, down in zip(ups, downs, strict=True):
        up, down = json.loads(up), json.loads(down)
        assert len(up) <= 3 and len(down) <= 3
        assert all(entry["contribution"] > 0 for entry in up) and all(entry["contribution"] < 0 for entry in down)
        assert [entry["contribution"] for entry in up] == sorted((entry["contribution"] for entry in up), reverse=True)
        assert all(set(entry) == {"feature", "value", "contribution"} for entry in up + down)


def test_the_calibration_sample_decides_between_sigmoid_and_isotonic(world) -> None:
    snapshots, outcomes = world
    candidate = fit_candidate(snapshots, outcomes, snapshots["snapshot_date"].max())
    assert candidate.model.calibrator.method == "sigmoid"  # a few hundred calibration deals
    assert set(candidate.holdout.forecasts) == {
        "model", "crm_stage_probability", "empirical_stage_rate", "logistic_regression",
    }  # fmt: skip


def test_a_model_saved_twice_gets_one_version_and_loads_back(world, tmp_path: Path) -> None:
    snapshots, outcomes = world
    model = train(snapshots, outcomes, snapshots["snapshot_date"].max())
    version, card = store.save(model, {"note": "a"}, tmp_path)
    again, _ = store.save(model, {"note": "b"}, tmp_path)
    assert version == again and len(version) == store.VERSION_LENGTH
    assert json.loads(card.read_text())["model_version"] == version
    np.testing.assert_allclose(
        store.load(version, tmp_path).predict(snapshots.head(20)), model.predict(snapshots.head(20))
    )


def test_the_calibration_error_of_known_forecasts() -> None:
    assert expected_calibration_error(np.array([0, 1] * 10), np.full(20, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(np.ones(20), np.full(20, 0.5)) == pytest.approx(0.5)
    # every bin holds two forecasts 0.2 off the outcome
    forecasts = np.r_[np.full(10, 0.2), np.full(10, 0.8)]
    outcomes = np.r_[np.zeros(10), np.ones(10)]
    assert expected_calibration_error(outcomes, forecasts) == pytest.approx(0.2)


def test_the_reliability_curve_is_a_png() -> None:
    png = reliability_png(np.array([0, 1] * 50), np.linspace(0, 1, 100))
    assert png.startswith(b"\x89PNG")


def test_the_declared_features_name_no_column_twice() -> None:
    declared = [*NUMERIC, *CATEGORICAL]
    assert len(declared) == len(set(declared))
