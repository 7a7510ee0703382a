"""The ML helpers alone, on a handful of numbers: the scores (ml/metrics.py), the model store (ml/store.py) and the
leakage guard of the features (ml/features.py). No warehouse, no training: the fast tier (`make test-fast`). The
stages that train and score are tested on synthetic worlds in tests/test_ml_win.py and tests/test_ml_forecast.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml import store
from ml.features import INPUTS, LeakageError, check_no_leakage, model_inputs
from ml.metrics import equal_count_bins, expected_calibration_error, reliability_curve, score

# ---------------------------------------------------------------------------------------------------------- scores


def test_perfect_forecasts_score_perfectly() -> None:
    scores = score(np.array([True, False, True, False]), np.array([1.0, 0.0, 1.0, 0.0]))
    assert (scores.n, scores.base_rate, scores.auc, scores.brier, scores.brier_skill, scores.ece) == (
        4, 0.5, 1.0, 0.0, 1.0, 0.0,
    )  # fmt: skip
    assert scores.log_loss < 1e-5


def test_forecasting_the_base_rate_has_no_skill_and_no_calibration_error() -> None:
    outcomes = np.array([True, False, False, False])
    scores = score(outcomes, np.full(4, 0.25))
    assert scores.brier == pytest.approx(0.1875)
    assert scores.brier_skill == pytest.approx(0.0)
    assert scores.auc == pytest.approx(0.5)
    # calibrated over the whole sample; ten equal-count bins of four rows put each row in a bin of its own
    assert expected_calibration_error(outcomes, np.full(4, 0.25), bins=1) == pytest.approx(0.0)
    assert scores.ece == pytest.approx(0.375)


def test_a_certain_forecast_that_was_wrong_has_a_large_but_finite_log_loss() -> None:
    scores = score(np.array([True, False]), np.array([0.0, 0.0]))
    assert math.isfinite(scores.log_loss) and scores.log_loss > 5


def test_with_one_class_only_there_is_no_auc_and_no_skill() -> None:
    scores = score(np.array([True, True, True]), np.array([0.9, 0.8, 0.7]))
    assert scores.auc is None
    assert math.isnan(scores.brier_skill)


def test_forecasts_outside_0_and_1_are_clipped_before_scoring() -> None:
    assert score(np.array([True, False]), np.array([1.7, -0.4])).brier == 0.0


def test_amounts_give_the_expected_and_the_actual_won_amount() -> None:
    scores = score(np.array([True, False, True]), np.array([0.5, 0.5, 1.0]), amount=np.array([100.0, 40.0, 10.0]))
    assert (scores.expected_won_amount, scores.actual_won_amount) == (80.0, 110.0)
    assert score(np.array([True]), np.array([0.5])).expected_won_amount is None


def test_no_outcome_at_all_scores_nan_rather_than_failing() -> None:
    scores = score(np.array([], dtype=bool), np.array([]))
    assert scores.n == 0 and math.isnan(scores.brier) and math.isnan(scores.ece) and scores.auc is None


def test_the_bins_hold_nearly_equal_counts_by_increasing_forecast() -> None:
    forecasts = np.array([0.9, 0.1, 0.5, 0.3, 0.7])
    bins = equal_count_bins(forecasts, bins=2)
    assert [forecasts[rows].tolist() for rows in bins] == [[0.1, 0.3, 0.5], [0.7, 0.9]]
    assert len(equal_count_bins(forecasts, bins=10)) == 5  # never an empty bin


def test_the_reliability_curve_gives_mean_forecast_observed_rate_and_rows_per_bin() -> None:
    outcomes = np.array([0, 0, 1, 1])
    forecasts = np.array([0.1, 0.3, 0.6, 0.8])
    assert reliability_curve(outcomes, forecasts, bins=2) == [
        (pytest.approx(0.2), 0.0, 2),
        (pytest.approx(0.7), 1.0, 2),
    ]
    assert expected_calibration_error(outcomes, forecasts, bins=2) == pytest.approx(0.25)


# ------------------------------------------------------------------------------------------------- the model store


def test_a_model_is_stored_by_content_hash_with_its_card_beside_it(tmp_path: Path) -> None:
    version, card = store.save({"weights": [1, 2, 3]}, {"kind": "toy"}, tmp_path)
    written = json.loads(card.read_text())
    assert len(version) == store.VERSION_LENGTH and written["sha256"].startswith(version)
    assert (written["model_version"], written["kind"]) == (version, "toy")
    assert card == store.card_path(version, tmp_path)
    assert store.load(version, tmp_path) == {"weights": [1, 2, 3]}
    assert sorted(path.suffix for path in tmp_path.iterdir()) == [".joblib", ".json"]  # no temporary file left


def test_another_model_gets_another_version(tmp_path: Path) -> None:
    first, _ = store.save({"weights": [1]}, {}, tmp_path)
    second, _ = store.save({"weights": [2]}, {}, tmp_path)
    assert first != second


def test_a_version_with_no_artifact_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="0 artifacts for model version 'abc'"):
        store.load("abc", tmp_path)


# ------------------------------------------------------------------------------------------ the leakage guard


@pytest.mark.parametrize("column", ["IS_WON", "Close_Date", "outcome"])
def test_an_outcome_column_is_refused_whatever_its_case(column: str) -> None:
    with pytest.raises(LeakageError, match=column):
        check_no_leakage(["stage_name", column])


def test_a_frame_missing_a_declared_input_is_refused_naming_it() -> None:
    frame = pd.DataFrame({column: [1] for column in INPUTS}).drop(columns=["segment", "age_days"])
    with pytest.raises(KeyError, match="age_days, segment"):
        model_inputs(frame)


def test_the_model_inputs_are_the_declared_columns_in_their_declared_order() -> None:
    frame = pd.DataFrame({column: [1] for column in reversed(INPUTS)}).assign(owner_id="x")
    assert tuple(model_inputs(frame).columns) == INPUTS
