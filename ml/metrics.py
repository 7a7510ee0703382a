"""Scores for probabilities of a binary outcome: discrimination, accuracy, calibration, and money."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

ECE_BINS = 10
EPSILON = 1e-6  # log loss of a 0 or 1 forecast that turned out wrong is infinite; clip to a finite penalty


@dataclass(frozen=True)
class Scores:
    n: int
    base_rate: float
    auc: float | None  # None when only one class is present
    brier: float
    brier_skill: float  # 1 - brier / brier of always forecasting the base rate
    log_loss: float
    ece: float
    expected_won_amount: float | None = None
    actual_won_amount: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def equal_count_bins(p: np.ndarray, bins: int = ECE_BINS) -> list[np.ndarray]:
    """Row indices split into `bins` groups of (nearly) equal size, by increasing p."""
    order = np.argsort(p, kind="stable")
    return [chunk for chunk in np.array_split(order, min(bins, len(p))) if len(chunk)]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Weighted mean gap between forecast and observed rate over equal-count bins of the forecast."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if not len(p):
        return float("nan")
    return float(sum(len(rows) * abs(p[rows].mean() - y[rows].mean()) for rows in equal_count_bins(p, bins)) / len(p))


def reliability_curve(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> list[tuple[float, float, int]]:
    """(mean forecast, observed rate, rows) for each equal-count bin."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return [(float(p[rows].mean()), float(y[rows].mean()), len(rows)) for rows in equal_count_bins(p, bins)]


def score(y: np.ndarray, p: np.ndarray, amount: np.ndarray | None = None) -> Scores:
    """All the scores of forecasts `p` for outcomes `y`; with `amount`, expected versus actual won amount."""
    y = np.asarray(y, dtype=bool)
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    base_rate = float(y.mean()) if len(y) else float("nan")
    brier = float(np.mean((p - y) ** 2)) if len(y) else float("nan")
    reference = base_rate * (1.0 - base_rate)
    both_classes = 0 < y.sum() < len(y)
    return Scores(
        n=len(y),
        base_rate=base_rate,
        auc=float(roc_auc_score(y, p)) if both_classes else None,
        brier=brier,
        brier_skill=1.0 - brier / reference if reference > 0 else float("nan"),
        log_loss=float(log_loss(y, np.clip(p, EPSILON, 1 - EPSILON), labels=[False, True])) if len(y) else float("nan"),
        ece=expected_calibration_error(y, p),
        expected_won_amount=float(np.sum(p * amount)) if amount is not None else None,
        actual_won_amount=float(np.sum(np.where(y, amount, 0.0))) if amount is not None else None,
    )
