"""Win probability: the chance each open deal is won, trained on snapshots of deals already closed.

A gradient-boosted model (scikit-learn's HistGradientBoostingClassifier) and a logistic regression are fitted on
the snapshots of deals that closed before the most recent ones; the boosted model is calibrated on the snapshots of
those most recent ones (the split is in time and by deal, so no deal is on both sides) and served blended with the
logistic regression (see `Calibrator`). With too little history (fewer than `MIN_CLASS_DEALS` won or lost deals)
the model is the empirical win rate of each stage instead, and says so.

`run_win_stage` is the one entry point the orchestration calls: it backfills a year of weekly scoring days on its
first run (each scored by a model trained only on what was known that day), then scores each new day, gates every
newly trained model, and appends to the `ml` tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from ml import store
from ml.features import (
    CATEGORICAL,
    FACTORS,
    FEATURES_TABLE,
    INPUTS,
    MODEL_CATEGORICAL,
    NUMERIC,
    TrainingSet,
    load_outcomes,
    load_snapshots,
    model_inputs,
    model_matrix,
    training_rows,
)
from ml.metrics import Scores, reliability_curve, score
from ml.plots import reliability_png
from ml.tables import append, ensure_tables

GRADIENT_BOOSTING = "gradient_boosting"
STAGE_RATE = "stage_rate"

MIN_CLASS_DEALS = 200  # won and lost closed deals each, below which the model falls back to stage win rates
CALIBRATION_SHARE = 0.2  # the most recently closed deals, held out of the fit to calibrate and gate
# Isotonic regression overfits small calibration samples (scikit-learn's user guide puts the line near 1,000);
# counted in deals, since a deal's weekly rows share one outcome. Measured on the demo backfill, where calibration
# samples hold 400-1,000 deals: sigmoid gave AUC 0.857 against isotonic's 0.855 (isotonic's steps tie forecasts).
ISOTONIC_MIN_DEALS = 1000
GATE_MAX_ECE = 0.05
TOP_FACTORS = 3
MIN_CONTRIBUTION = 0.001  # a factor moving p by less than a tenth of a point is not worth showing
CONTRIBUTION_CHUNK_ROWS = 400_000  # perturbed rows predicted at once when explaining: bounds memory at bench scale
PARALLEL_MIN_ROWS = 200_000
MAX_TRAIN_DEALS = 200_000  # deals sampled for a fit at bench scale; more adds time, not accuracy
# rows a logistic regression (about 60 coefficients) is fitted on: on 900,000 rows its fit took 15 s of the 56
LOGISTIC_MAX_ROWS = 250_000
RANDOM_STATE = 42
BOOSTING_PARAMETERS = {
    "learning_rate": 0.06,
    "max_iter": 150,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 200,
    "l2_regularization": 5.0,
    "early_stopping": False,
}
METHODS = ("model", "crm_stage_probability", "empirical_stage_rate", "logistic_regression")


# ---------------------------------------------------------------- the models


@dataclass
class StageRates:
    """The share of closed deals won among those seen in each stage (each deal counted once per stage)."""

    rates: dict[str, float]
    overall: float

    @classmethod
    def fit(cls, features: pd.DataFrame, is_won: np.ndarray) -> StageRates:
        deals = pd.DataFrame(
            {"opportunity_id": features["opportunity_id"], "stage_name": features["stage_name"], "won": is_won}
        ).drop_duplicates(["opportunity_id", "stage_name"])
        overall = float(deals.drop_duplicates("opportunity_id")["won"].mean()) if len(deals) else float("nan")
        rates = deals.groupby("stage_name")["won"].mean()
        return cls(rates={str(stage): float(rate) for stage, rate in rates.items()}, overall=overall)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The rate of each row's stage; the overall rate for a stage never seen closed; with no closed deals at
        all, the CRM's probability (or an even chance)."""
        p = frame["stage_name"].map(self.rates).astype(float).fillna(self.overall)
        if p.isna().any():
            crm = frame["crm_probability"] / 100.0 if "crm_probability" in frame else pd.Series(np.nan, frame.index)
            p = p.fillna(crm.astype(float)).fillna(0.5)
        return p.to_numpy(dtype=float)


@dataclass
class Calibrator:
    """Maps the two fitted models' log-odds (gradient boosting, logistic regression) to one calibrated probability.

    The boosted model's log-odds are calibrated on the calibration deals: sigmoid (Platt scaling) or, with at
    least `ISOTONIC_MIN_DEALS` of them, isotonic regression. The result is averaged in log-odds with the logistic
    regression's, which its loss already calibrates. Measured on the demo backfill (all scored pairs): the blend
    scored AUC 0.862, Brier 0.144, calibration error 0.009, where the boosted model alone scored 0.857, 0.147 and
    0.016. Two things scored worse: weights learned on the calibration deals (they swung between 0.05 and 0.8 from
    month to month, the two log-odds being collinear), and a second Platt scaling of the average (AUC 0.859: fitted
    on the models that had not yet seen the calibration deals, it mis-scales the refitted ones).
    """

    method: str
    rows: int
    deals: int
    boosted: LogisticRegression | IsotonicRegression

    @classmethod
    def fit(cls, log_odds: np.ndarray, is_won: np.ndarray, deals: int) -> Calibrator:
        if deals >= ISOTONIC_MIN_DEALS:
            isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(log_odds[:, 0], is_won)
            return cls("isotonic", len(is_won), deals, isotonic)
        return cls("sigmoid", len(is_won), deals, LogisticRegression(C=1e4).fit(log_odds[:, :1], is_won))

    def __call__(self, log_odds: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            boosted = _logit(self.boosted.predict(log_odds[:, 0]))
        else:
            boosted = self.boosted.decision_function(log_odds[:, :1])
        return 1.0 / (1.0 + np.exp(-(boosted + log_odds[:, 1]) / 2.0))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


@dataclass
class WinModel:
    """A served win-probability model: `kind` is gradient_boosting or stage_rate, `reason` says why."""

    kind: str
    reason: str
    training_cutoff: dt.date
    stage_rates: StageRates
    reference: dict[str, Any]  # per input column: the training median (numeric) or most common value
    categories: dict[str, list[str]] = field(default_factory=dict)
    booster: HistGradientBoostingClassifier | None = None
    calibrator: Calibrator | None = None
    logistic: Pipeline | None = None  # the logistic-regression baseline fitted on the same rows, for the backtest
    summary: dict[str, Any] = field(default_factory=dict)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The calibrated probability of winning for each row of a features frame."""
        if self.kind == STAGE_RATE:
            return self.stage_rates.predict(frame)
        return np.clip(self.calibrator(self.log_odds(model_matrix(frame))), 0.0, 1.0)

    def log_odds(self, matrix: pd.DataFrame) -> np.ndarray:
        """The two fitted models' uncalibrated log-odds (boosted, logistic), one column each."""
        return _log_odds(self.booster, self.logistic, self.categories, matrix)

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Signed contribution of each factor (`FACTORS`, in order) to each row's probability.

        A factor's contribution is p(the deal) minus p(the same deal with that factor's columns set to their
        training reference: the median, or the most common value). Positive: the deal's actual value makes it
        likelier to win than a typical value would. They are one-at-a-time effects, so they need not add up to p
        minus the probability of a typical deal.
        """
        return self._explain(frame)[1]

    def factors(self, frame: pd.DataFrame, top: int = TOP_FACTORS) -> tuple[list[str], list[str]]:
        """The top factors pushing each row's probability up and down, as JSON lists of
        {"feature", "value", "contribution"} (see `contributions` for what a contribution means)."""
        return self.score(frame, top)[1:]

    def score(self, frame: pd.DataFrame, top: int = TOP_FACTORS) -> tuple[np.ndarray, list[str], list[str]]:
        """p_win, top factors up, top factors down: each row's probability is computed once, with its
        contributions."""
        inputs = model_inputs(frame).reset_index(drop=True)
        p, contributions = self._explain(inputs)
        return p, *_top_factors(inputs, contributions, top)

    def _explain(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(p, contributions): the rows and every perturbed copy of them predicted in one call per chunk."""
        inputs = model_inputs(frame).reset_index(drop=True)
        groups = list(FACTORS.values())
        copies = len(groups) + 1  # the row itself, then one copy per factor
        p = np.empty(len(inputs))
        out = np.empty((len(inputs), len(groups)))
        chunk = max(1, CONTRIBUTION_CHUNK_ROWS // copies)
        for start in range(0, len(inputs), chunk):
            part = inputs.iloc[start : start + chunk]
            n = len(part)
            perturbed = {}
            for column in INPUTS:
                values = np.tile(part[column].to_numpy(dtype=object if column in CATEGORICAL else float), copies)
                for g, group in enumerate(groups, start=1):
                    if column in group and column in self.reference:
                        values[g * n : (g + 1) * n] = self.reference[column]
                perturbed[column] = values
            predicted = self.predict(pd.DataFrame(perturbed)).reshape(copies, n).T
            p[start : start + n] = predicted[:, 0]
            out[start : start + n] = predicted[:, :1] - predicted[:, 1:]
        return p, out


def _log_odds(
    booster: HistGradientBoostingClassifier, logistic: Pipeline, categories: dict[str, list[str]], matrix: pd.DataFrame
) -> np.ndarray:
    with threadpool_limits(_threads(len(matrix))):
        boosted = booster.decision_function(_encode(matrix, categories))
        linear = logistic.decision_function(_logistic_frame(matrix))
    return np.column_stack([boosted, linear])


def _top_factors(inputs: pd.DataFrame, contributions: np.ndarray, top: int) -> tuple[list[str], list[str]]:
    names = list(FACTORS)
    shown = [[_display(value) for value in inputs[name].tolist()] for name in names]
    order = np.argsort(-contributions, axis=1, kind="stable")
    rounded = np.round(contributions, 4)
    ups, downs = [], []
    for row in range(len(contributions)):
        ranked = order[row]
        up = [g for g in ranked[:top] if contributions[row, g] >= MIN_CONTRIBUTION]
        down = [g for g in ranked[::-1][:top] if contributions[row, g] <= -MIN_CONTRIBUTION]
        for picked, out in ((up, ups), (down, downs)):
            entries = [
                {"feature": names[g], "value": shown[g][row], "contribution": float(rounded[row, g])} for g in picked
            ]
            out.append(json.dumps(entries))
    return ups, downs


def _display(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, int | float | np.number):
        value = float(value)
        return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _encode(matrix: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    """Categorical columns as codes of the training vocabulary (unknown or missing: NaN, which the booster treats as
    missing)."""
    encoded = matrix.copy()
    for column in MODEL_CATEGORICAL:
        codes = pd.Categorical(matrix[column], categories=categories[column]).codes.astype(float)
        encoded[column] = np.where(codes < 0, np.nan, codes)
    return encoded


def _references(features: pd.DataFrame) -> dict[str, Any]:
    reference: dict[str, Any] = {}
    for column in NUMERIC:
        # a column with no value at all (no activity yet, no FX rate for any amount) has a missing reference
        values = features[column].to_numpy(dtype=float)
        reference[column] = float(np.nanmedian(values)) if not np.isnan(values).all() else float("nan")
    for column in CATEGORICAL:
        counts = features[column].value_counts()
        reference[column] = str(counts.index[0]) if len(counts) else None
    # the stage is one factor: its order must be the reference stage's own, not the median of all orders
    same_stage = features.loc[features["stage_name"] == reference["stage_name"], "stage_order"]
    if len(same_stage):
        reference["stage_order"] = float(same_stage.iloc[0])
    return reference


def _logistic_baseline(matrix: pd.DataFrame, is_won: np.ndarray) -> Pipeline:
    """Standardised numeric features and one-hot categories (the stage among them) into a logistic regression."""
    if len(matrix) > LOGISTIC_MAX_ROWS:
        rows = np.sort(np.random.default_rng(RANDOM_STATE).choice(len(matrix), LOGISTIC_MAX_ROWS, replace=False))
        matrix, is_won = matrix.iloc[rows], is_won[rows]
    numeric = [column for column in matrix.columns if column not in MODEL_CATEGORICAL]
    categorical = [*MODEL_CATEGORICAL, "stage"]
    frame = _logistic_frame(matrix)
    transform = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    return Pipeline([("features", transform), ("model", LogisticRegression(max_iter=2000))]).fit(frame, is_won)


def _logistic_frame(matrix: pd.DataFrame) -> pd.DataFrame:
    frame = matrix.copy()
    frame["stage"] = matrix["stage_order"].astype(str)
    for column in MODEL_CATEGORICAL:
        frame[column] = matrix[column].astype(object).where(matrix[column].notna(), "(missing)")
    return frame


def predict_logistic(model: WinModel, frame: pd.DataFrame) -> np.ndarray:
    """The logistic-regression baseline trained with `model`; NaN when it has none (a stage-rate fallback)."""
    if model.logistic is None:
        return np.full(len(frame), np.nan)
    return model.logistic.predict_proba(_logistic_frame(model_matrix(frame)))[:, 1]


# ---------------------------------------------------------------- training


@dataclass
class Holdout:
    """The calibration deals' rows, and each method's out-of-sample forecast for them (for the gate and card)."""

    features: pd.DataFrame
    is_won: np.ndarray
    forecasts: dict[str, np.ndarray]


@dataclass
class Candidate:
    model: WinModel
    holdout: Holdout | None


def train(snapshots: pd.DataFrame, outcomes: pd.DataFrame, cutoff: dt.date) -> WinModel:
    """A win-probability model trained only on what was known at the end of `cutoff`."""
    return fit_candidate(snapshots, outcomes, cutoff).model


def fit_candidate(snapshots: pd.DataFrame, outcomes: pd.DataFrame, cutoff: dt.date) -> Candidate:
    """Train at `cutoff` and keep the calibration deals' out-of-sample forecasts for the gate.

    The boosted model and the logistic regression are fitted on the deals that closed first, the calibrator on the
    most recent `CALIBRATION_SHARE` of them; then both models are refitted on every deal and served through that
    calibrator. Refitting puts the newest outcomes in the model: on the demo backfill it raised AUC from 0.854 to
    0.857 and left calibration error under 0.02.
    """
    rows = training_rows(snapshots, outcomes, cutoff)
    deals = pd.DataFrame({"opportunity_id": rows.features["opportunity_id"], "won": rows.is_won}).drop_duplicates(
        "opportunity_id"
    )
    n_won, n_lost = int(deals["won"].sum()), int((~deals["won"]).sum())
    summary = _summary(rows, cutoff, n_won, n_lost)
    stage_rates = StageRates.fit(rows.features, rows.is_won)
    reference = _references(rows.features) if len(rows.features) else {}
    if n_won < MIN_CLASS_DEALS or n_lost < MIN_CLASS_DEALS:
        reason = (
            f"too little history: {n_won} won and {n_lost} lost deals closed by {cutoff}, fewer than "
            f"{MIN_CLASS_DEALS} of each; serving empirical stage win rates"
        )
        return Candidate(WinModel(STAGE_RATE, reason, cutoff, stage_rates, reference, summary=summary), None)

    rows = _sample_deals(rows)
    fit, calibration = _split_by_close(rows)
    matrix = model_matrix(rows.features)
    categories = {column: sorted(matrix[column].dropna().unique().tolist()) for column in MODEL_CATEGORICAL}
    y_calibration = rows.is_won[calibration]
    if len(np.unique(y_calibration)) < 2:
        reason = (
            f"the most recently closed deals by {cutoff} were all won or all lost; serving empirical stage win rates"
        )
        return Candidate(WinModel(STAGE_RATE, reason, cutoff, stage_rates, reference, summary=summary), None)
    with threadpool_limits(_threads(len(matrix))):
        early_booster = _booster(matrix[fit], rows.is_won[fit], categories)
        early_logistic = _logistic_baseline(matrix[fit], rows.is_won[fit])
        log_odds = _log_odds(early_booster, early_logistic, categories, matrix[calibration])
        deal_ids = rows.features["opportunity_id"].to_numpy()[calibration]
        calibrator = Calibrator.fit(log_odds, y_calibration, len(np.unique(deal_ids)))
        holdout_features = rows.features[calibration].reset_index(drop=True)
        forecasts = {
            "model": _cross_calibrated(log_odds, y_calibration, deal_ids),
            "crm_stage_probability": holdout_features["crm_probability"].to_numpy(dtype=float) / 100.0
            if "crm_probability" in holdout_features
            else np.full(len(holdout_features), np.nan),
            "empirical_stage_rate": StageRates.fit(rows.features[fit], rows.is_won[fit]).predict(holdout_features),
            "logistic_regression": 1.0 / (1.0 + np.exp(-log_odds[:, 1])),
        }
        booster = _booster(matrix, rows.is_won, categories)  # refitted on every deal, early ones dropped
        logistic = _logistic_baseline(matrix, rows.is_won)
    holdout = Holdout(holdout_features, y_calibration, forecasts)
    summary.update(
        calibration=calibrator.method,
        calibration_rows=calibrator.rows,
        calibration_deals=calibrator.deals,
        fit_rows=int(fit.sum()),
        holdout_metrics={
            name: score(y_calibration, p).as_dict() for name, p in forecasts.items() if not np.isnan(p).all()
        },
    )
    model = WinModel(
        kind=GRADIENT_BOOSTING,
        reason=f"{n_won} won and {n_lost} lost deals closed by {cutoff}",
        training_cutoff=cutoff,
        stage_rates=stage_rates,
        reference=reference,
        categories=categories,
        booster=booster,
        calibrator=calibrator,
        logistic=logistic,
        summary=summary,
    )
    return Candidate(model, holdout)


def _booster(
    matrix: pd.DataFrame, is_won: np.ndarray, categories: dict[str, list[str]]
) -> HistGradientBoostingClassifier:
    encoded = _encode(matrix, categories)
    return HistGradientBoostingClassifier(
        **BOOSTING_PARAMETERS,
        categorical_features=[column in MODEL_CATEGORICAL for column in encoded.columns],
        random_state=RANDOM_STATE,
    ).fit(encoded, is_won)


def _threads(rows: int) -> int | None:
    """Native threads for fitting and predicting `rows` rows: one below `PARALLEL_MIN_ROWS`.

    On the shared 2-core machine, with another process busy, fitting the demo's 18,000 rows took 0.8 s on one
    OpenMP thread, 8 s with the default and 78 s with two (threads spin waiting for a core); the logistic
    regression took 0.2 s on one BLAS thread and 2.8 s by default. Parallelism pays only on large frames.
    """
    return 1 if rows < PARALLEL_MIN_ROWS else None


def stage_rate_model(snapshots: pd.DataFrame, outcomes: pd.DataFrame, cutoff: dt.date, reason: str) -> WinModel:
    """The empirical stage win rates at `cutoff`, served when no trained model may."""
    rows = training_rows(snapshots, outcomes, cutoff)
    n_won = int(pd.Series(rows.is_won).groupby(rows.features["opportunity_id"].to_numpy()).first().sum())
    deals = rows.features["opportunity_id"].nunique()
    summary = _summary(rows, cutoff, n_won, deals - n_won)
    reference = _references(rows.features) if len(rows.features) else {}
    return WinModel(STAGE_RATE, reason, cutoff, StageRates.fit(rows.features, rows.is_won), reference, summary=summary)


def _summary(rows: TrainingSet, cutoff: dt.date, n_won: int, n_lost: int) -> dict[str, Any]:
    dates = rows.features["snapshot_date"]
    return {
        "training_cutoff": cutoff.isoformat(),
        "training_window": [str(dates.min()) if len(dates) else None, cutoff.isoformat()],
        "n_train_rows": len(rows.features),
        "n_won": n_won,
        "n_lost": n_lost,
        "data_version": _data_version(rows),
    }


def _data_version(rows: TrainingSet) -> str:
    """A hash of the training rows' keys, inputs and labels: the same data gives the same version."""
    frame = rows.features.loc[:, ["opportunity_id", "snapshot_date", *INPUTS]].copy()
    frame["is_won"] = rows.is_won
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def _sample_deals(rows: TrainingSet) -> TrainingSet:
    """At most `MAX_TRAIN_DEALS` deals, drawn at random (whole deals, so a deal's rows stay together)."""
    deal_ids = rows.features["opportunity_id"].unique()
    if len(deal_ids) <= MAX_TRAIN_DEALS:
        return rows
    keep = np.random.default_rng(RANDOM_STATE).choice(deal_ids, MAX_TRAIN_DEALS, replace=False)
    mask = rows.features["opportunity_id"].isin(keep).to_numpy()
    return TrainingSet(rows.features[mask].reset_index(drop=True), rows.is_won[mask], rows.closed_date[mask])


def _split_by_close(rows: TrainingSet) -> tuple[np.ndarray, np.ndarray]:
    """Row masks (fit, calibration): the most recently closed `CALIBRATION_SHARE` of deals calibrate, the rest fit.
    The split is by deal, so no deal's rows are on both sides; deals closed on the same day are ordered by id."""
    deals = pd.DataFrame({"opportunity_id": rows.features["opportunity_id"], "closed_date": rows.closed_date})
    deals = deals.drop_duplicates("opportunity_id").sort_values(["closed_date", "opportunity_id"], kind="stable")
    calibrating = deals["opportunity_id"].iloc[int(len(deals) * (1 - CALIBRATION_SHARE)) :]
    calibration = rows.features["opportunity_id"].isin(calibrating).to_numpy()
    return ~calibration, calibration


def _cross_calibrated(log_odds: np.ndarray, is_won: np.ndarray, deal_ids: np.ndarray) -> np.ndarray:
    """Out-of-sample calibrated forecasts for the calibration rows: two folds by deal, each calibrated on the other.
    The gate judges these, not the in-sample fit of the final calibrator."""
    fold = (pd.util.hash_array(np.asarray(deal_ids, dtype=object)) % 2).astype(int)
    out = np.empty(len(is_won))
    for k in (0, 1):
        other = fold == 1 - k
        if len(np.unique(is_won[other])) < 2 or not (fold == k).any():
            return Calibrator.fit(log_odds, is_won, len(np.unique(deal_ids)))(log_odds)
        calibrator = Calibrator.fit(log_odds[other], is_won[other], len(np.unique(deal_ids[other])))
        out[fold == k] = calibrator(log_odds[fold == k])
    return out


# ---------------------------------------------------------------- evaluation and the gate


def evaluate(
    is_won: np.ndarray, forecasts: dict[str, np.ndarray], amount: np.ndarray | None = None
) -> dict[str, Scores]:
    """Each method's scores on the same rows (rows a method has no forecast for are left out of its scores)."""
    scores = {}
    for method, p in forecasts.items():
        known = ~np.isnan(p)
        if known.any():
            scores[method] = score(is_won[known], p[known], None if amount is None else amount[known])
    return scores


def gate(candidate_metrics: Scores, baseline_metrics: Scores) -> tuple[bool, str]:
    """Whether a newly trained model may serve, and why: it must beat the empirical stage-rate baseline on Brier
    score and be calibrated to within `GATE_MAX_ECE`, both on the calibration deals (out of sample: see
    `_cross_calibrated`). A refused model never serves; the model serving before it keeps serving.

    It is not also compared with the serving model: on the calibration deals that model has seen more recent
    outcomes than the candidate's held-out fit, and on the demo backfill that comparison refused one good model in
    thirteen.
    """
    if not candidate_metrics.brier < baseline_metrics.brier:
        return False, (
            f"Brier {candidate_metrics.brier:.4f} does not beat the stage-rate baseline's {baseline_metrics.brier:.4f}"
        )
    if not candidate_metrics.ece <= GATE_MAX_ECE:
        return False, f"calibration error {candidate_metrics.ece:.4f} is above {GATE_MAX_ECE}"
    return True, (
        f"Brier {candidate_metrics.brier:.4f} beats the stage-rate baseline's {baseline_metrics.brier:.4f}; "
        f"calibration error {candidate_metrics.ece:.4f}"
    )


# ---------------------------------------------------------------- the stage


@dataclass(frozen=True)
class GateDecision:
    """A newly trained model and whether it serves; `reason` is the gate's (or the fallback's) explanation."""

    model_version: str
    model_kind: str
    training_cutoff: dt.date
    served: bool
    reason: str


@dataclass
class WinStageResult:
    """What a run did, for the asset's metadata: rows and days scored, models trained and the gate's decisions, the
    model serving at the end (its card, and why it is the stage-rate fallback if it is), and the backtest."""

    as_of: dt.date
    scored_rows: int
    dates_scored: list[dt.date]
    models_trained: int
    gate_decisions: list[GateDecision]
    serving_version: str | None
    serving_kind: str | None
    fallback_reason: str | None
    model_card_path: Path | None
    metrics: dict[str, dict[str, Any]]  # method -> scores over every scored (deal, day) with a known outcome
    reliability_png: bytes | None
    seconds: float


@dataclass
class _Served:
    model: WinModel
    version: str
    card_path: Path


def run_win_stage(
    con: duckdb.DuckDBPyConnection,
    models_dir: Path,
    as_of: dt.date,
    backfill_weeks: int = 52,
    retrain_every_days: int = 7,
    backfill_retrain_days: int = 28,
    log: Callable[[str], None] = print,
) -> WinStageResult:
    """Score every snapshot day not yet scored up to `as_of`, training and gating models as they fall due.

    First run: the snapshot days of the last `backfill_weeks` weeks and `as_of`, with a model retrained every
    `backfill_retrain_days` (the backtest and the history). Later runs: the snapshot days after the latest scored
    one. A model is trained at a day when the newest model's cutoff is `retrain_every_days` old on the as-of day,
    `backfill_retrain_days` on an earlier one; each day is scored by a model whose training cutoff is on or before
    it. A day's rows are appended in one transaction with the models trained for it, so a run that stops part-way
    resumes where it stopped, and a second run with nothing new changes nothing.
    """
    started = time.perf_counter()
    ensure_tables(con)
    dates = _dates_to_score(con, as_of, backfill_weeks)
    decisions: list[GateDecision] = []
    scored_rows = 0
    serving, newest = _registry_models(con, models_dir)
    if dates:
        log(f"win probability: scoring {len(dates)} days from {dates[0]} to {dates[-1]}")
        snapshots = load_snapshots(con, as_of)
        outcomes = load_outcomes(con)
        outcomes = outcomes[outcomes["closed_date"] <= as_of]
        closed_stages = _closed_deal_stages(snapshots, outcomes)
        block: list[dt.date] = []
        registry_rows: list[dict[str, Any]] = []
        for day in dates:
            interval = retrain_every_days if day == as_of else backfill_retrain_days
            if newest is None or (day - newest.model.training_cutoff).days >= interval:
                scored_rows += _score_block(con, snapshots, block, serving, newest, closed_stages, registry_rows)
                block, registry_rows = [], []
                serving, newest, registry_rows, trained = _train_and_gate(
                    snapshots, outcomes, day, serving, models_dir, log
                )
                decisions += trained
            block.append(day)
        scored_rows += _score_block(con, snapshots, block, serving, newest, closed_stages, registry_rows)
    metrics, png = _evaluate_and_record(con, as_of)
    fallback = serving.model.reason if serving is not None and serving.model.kind == STAGE_RATE else None
    if fallback:
        log(f"win probability: fallback: {fallback}")
    seconds = time.perf_counter() - started
    log(f"win probability: {scored_rows} rows on {len(dates)} days, {len(decisions)} models trained, {seconds:.1f}s")
    return WinStageResult(
        as_of=as_of,
        scored_rows=scored_rows,
        dates_scored=dates,
        models_trained=len(decisions),
        gate_decisions=decisions,
        serving_version=serving.version if serving else None,
        serving_kind=serving.model.kind if serving else None,
        fallback_reason=fallback,
        model_card_path=serving.card_path if serving else None,
        metrics=metrics,
        reliability_png=png,
        seconds=seconds,
    )


def _dates_to_score(con: duckdb.DuckDBPyConnection, as_of: dt.date, backfill_weeks: int) -> list[dt.date]:
    last_scored = con.execute("select max(as_of_date) from ml.win_probability").fetchone()[0]
    start = last_scored if last_scored is not None else as_of - dt.timedelta(weeks=backfill_weeks)
    found = con.execute(
        f"select distinct snapshot_date from {FEATURES_TABLE} where snapshot_date > ? and snapshot_date <= ? "
        "order by snapshot_date",
        [start, as_of],
    ).fetchall()
    return [row[0] for row in found]


def _registry_models(con: duckdb.DuckDBPyConnection, models_dir: Path) -> tuple[_Served | None, _Served | None]:
    """The model serving now (the newest served) and the newest trained one, from the registry."""
    picked = []
    for condition in ("is_served", "true"):
        row = con.execute(
            f"select model_version, card_path from ml.win_models where {condition} "
            "order by training_cutoff desc, model_kind = 'gradient_boosting' desc limit 1"
        ).fetchone()
        if row is None:
            picked.append(None)
            continue
        try:
            picked.append(_Served(store.load(row[0], models_dir), row[0], Path(row[1])))
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"ml.win_models names model {row[0]}, but {models_dir} has no artifact for it ({error}). Restore the "
                "model store (MODELS_DIR), or drop the ml schema to train and backfill again from scratch."
            ) from error
    return picked[0], picked[1]


def _train_and_gate(
    snapshots: pd.DataFrame,
    outcomes: pd.DataFrame,
    cutoff: dt.date,
    serving: _Served | None,
    models_dir: Path,
    log: Callable[[str], None],
) -> tuple[_Served | None, _Served, list[dict[str, Any]], list[GateDecision]]:
    """Train at `cutoff`, gate the candidate, save what was trained; returns (serving, newest, registry rows,
    decisions)."""
    candidate = fit_candidate(snapshots, outcomes, cutoff)
    model = candidate.model
    trained = []
    if model.kind == STAGE_RATE:
        # too little history: the fallback serves unless a trained model already does
        served = serving is None or serving.model.kind == STAGE_RATE
        reason = model.reason if served else f"{model.reason}; {serving.version} keeps serving"
        trained.append((model, None, served, reason))
    else:
        holdout = candidate.holdout
        scores = evaluate(holdout.is_won, holdout.forecasts)
        passed, reason = gate(scores["model"], scores["empirical_stage_rate"])
        if not passed and serving is not None:
            reason += f"; {serving.version} keeps serving"
        trained.append((model, passed, passed, reason))
        if not passed and serving is None:
            fallback = f"the first trained model failed the gate ({reason}); serving empirical stage win rates"
            trained.append((stage_rate_model(snapshots, outcomes, cutoff, fallback), None, True, fallback))
    rows, decisions = [], []
    newest = None
    for model, passed, served, reason in trained:
        card = {
            **model.summary,
            "model_kind": model.kind,
            "kind_reason": model.reason,
            "features": {"inputs": list(INPUTS), "model": _model_features(model)},
            "factors": {name: list(columns) for name, columns in FACTORS.items()},
            "hyperparameters": BOOSTING_PARAMETERS if model.kind == GRADIENT_BOOSTING else None,
            "gate": {"passed": passed, "served": served, "reason": reason, "max_ece": GATE_MAX_ECE},
            "sklearn_version": sklearn.__version__,
            "trained_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        version, card_path = store.save(model, card, models_dir)
        verdict = "serves" if served else "refused"
        log(f"win probability: {model.kind} model {version} at cutoff {cutoff}: {verdict}: {reason}")
        entry = _Served(model, version, card_path)
        newest = entry if newest is None or model.kind == GRADIENT_BOOSTING else newest
        if served:
            serving = entry
        decisions.append(GateDecision(version, model.kind, cutoff, served, reason))
        rows.append(
            {
                "model_version": version,
                "model_kind": model.kind,
                "kind_reason": model.reason,
                "training_cutoff": cutoff,
                "trained_at": pd.Timestamp(card["trained_at"]),
                "n_train_rows": model.summary["n_train_rows"],
                "n_won": model.summary["n_won"],
                "n_lost": model.summary["n_lost"],
                "calibration": model.summary.get("calibration"),
                "calibration_rows": model.summary.get("calibration_rows"),
                "gate_passed": passed,
                "gate_reason": reason,
                "is_served": served,
                "card_path": str(card_path),
            }
        )
    return serving, newest, rows, decisions


def _model_features(model: WinModel) -> list[str]:
    if model.kind == STAGE_RATE:
        return ["stage_name"]
    return [str(name) for name in model.booster.feature_names_in_]


def _closed_deal_stages(snapshots: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Each closed deal's stages seen in snapshots, with its close date and outcome: the empirical stage rates known
    at any day are those of the deals closed by then (a deal's snapshots all precede its close)."""
    stages = snapshots[["opportunity_id", "stage_name"]].drop_duplicates()
    return stages.merge(outcomes[["opportunity_id", "closed_date", "is_won"]], on="opportunity_id", how="inner")


def _score_block(
    con: duckdb.DuckDBPyConnection,
    snapshots: pd.DataFrame,
    days: list[dt.date],
    serving: _Served | None,
    newest: _Served | None,
    closed_stages: pd.DataFrame,
    registry_rows: list[dict[str, Any]],
) -> int:
    """Score the open deals of `days` (all served by the same model) with that model and the baselines, and append
    them with the registry rows of the models trained for them, in one transaction."""
    if not days:
        return 0
    model = serving.model
    if model.training_cutoff > days[0]:
        raise AssertionError(f"model {serving.version} trained at {model.training_cutoff} cannot score {days[0]}")
    frame = snapshots[snapshots["snapshot_date"].isin(days)].reset_index(drop=True)
    p, up, down = model.score(frame) if len(frame) else (np.array([]), [], [])
    scores = pd.DataFrame(
        {
            "opportunity_id": frame["opportunity_id"],
            "as_of_date": frame["snapshot_date"],
            "p_win": p,
            "model_version": serving.version,
            "model_kind": model.kind,
            "training_cutoff": model.training_cutoff,
            "top_factors_up": up,
            "top_factors_down": down,
        }
    )
    stage_rate = np.empty(len(frame))
    for day in days:
        today = (frame["snapshot_date"] == day).to_numpy()
        known = closed_stages[closed_stages["closed_date"] <= day]
        stage_rate[today] = StageRates.fit(known, known["is_won"].to_numpy()).predict(frame[today])
    baselines = pd.DataFrame(
        {
            "opportunity_id": frame["opportunity_id"],
            "as_of_date": frame["snapshot_date"],
            "amount_reporting": frame["amount_reporting"].astype(float),
            "crm_stage_probability": frame["crm_probability"].astype(float) / 100.0,
            "empirical_stage_rate": stage_rate,
            "logistic_regression": predict_logistic(newest.model, frame) if len(frame) else np.array([]),
            "baseline_model_version": newest.version,
        }
    )
    con.execute("begin transaction")
    try:
        append(con, "ml.win_models", pd.DataFrame(registry_rows))
        append(con, "ml.win_probability", scores)
        append(con, "ml.win_backtest_scores", baselines)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return len(scores)


def scored_pairs(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> pd.DataFrame:
    """Every scored (deal, day) whose outcome was known by the end of `as_of`, with each method's forecast."""
    pairs = con.execute(
        """
        select
            scores.opportunity_id,
            scores.as_of_date,
            scores.p_win as model,
            baselines.crm_stage_probability,
            baselines.empirical_stage_rate,
            baselines.logistic_regression,
            baselines.amount_reporting
        from ml.win_probability as scores
        inner join ml.win_backtest_scores as baselines
            on scores.opportunity_id = baselines.opportunity_id and scores.as_of_date = baselines.as_of_date
        where scores.as_of_date <= ?
        order by scores.as_of_date, scores.opportunity_id
        """,
        [as_of],
    ).df()
    outcomes = load_outcomes(con)
    outcomes = outcomes.loc[outcomes["closed_date"] <= as_of, ["opportunity_id", "is_won"]]
    return pairs.merge(outcomes, on="opportunity_id", how="inner", validate="many_to_one")


def _evaluate_and_record(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> tuple[dict[str, dict], bytes | None]:
    """Scores of the model and each baseline over every scored pair with a known outcome; recorded once per as-of
    date (a second run on the same date leaves the tables as they were)."""
    pairs = scored_pairs(con, as_of)
    if pairs.empty:
        return {}, None
    y = pairs["is_won"].to_numpy(dtype=bool)
    amount = pairs["amount_reporting"].to_numpy(dtype=float)
    forecasts = {method: pairs[method].to_numpy(dtype=float) for method in METHODS}
    scores = evaluate(y, forecasts, amount)
    recorded = con.execute("select count(*) from ml.win_backtest where evaluated_as_of = ?", [as_of]).fetchone()[0]
    if not recorded:
        backtest = pd.DataFrame([{"evaluated_as_of": as_of, "method": m, **s.as_dict()} for m, s in scores.items()])
        curves = pd.DataFrame(
            [
                {"evaluated_as_of": as_of, "method": method, "bin": b, "mean_forecast": x, "observed_rate": o, "n": n}
                for method, p in forecasts.items()
                if not np.isnan(p).all()
                for b, (x, o, n) in enumerate(reliability_curve(y[~np.isnan(p)], p[~np.isnan(p)]))
            ]
        )
        con.execute("begin transaction")
        append(con, "ml.win_backtest", backtest)
        append(con, "ml.win_reliability", curves)
        con.execute("commit")
    return {method: s.as_dict() for method, s in scores.items()}, reliability_png(y, forecasts["model"])
