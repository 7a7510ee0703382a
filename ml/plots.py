"""Small PNG charts for Dagster asset metadata (the assets embed the bytes).

Figures are built with `matplotlib.figure.Figure`, not pyplot: no global backend or figure registry to manage, and
nothing to close in a long-running Dagster process.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ml.metrics import reliability_curve


def reliability_png(y_true: np.ndarray, p: np.ndarray, title: str = "Win probability: reliability") -> bytes:
    """Observed win rate against forecast over 10 equal-count bins, with the diagonal of perfect calibration."""
    points = reliability_curve(y_true, p)
    figure = Figure(figsize=(4, 4), dpi=100)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    axes.plot([x for x, _, _ in points], [y for _, y, _ in points], marker="o", label="model")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="forecast probability", ylabel="observed win rate", title=title)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def fan_chart_png(history: pd.DataFrame, forecast: pd.DataFrame, title: str, currency: str) -> bytes:
    """Bookings of past periods as bars, then the forecast periods: booked so far as bars, p50 as a line and the
    p10-p90 interval as a band.

    `history`: label, amount. `forecast`: label, booked_to_date, p10, p50, p90, in period order.
    """
    labels = [*history["label"], *forecast["label"]]
    past = np.arange(len(history))
    ahead = np.arange(len(history), len(labels))
    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.subplots()
    axes.bar(past, history["amount"], color="tab:blue", label="booked")
    axes.bar(ahead, forecast["booked_to_date"], color="tab:blue", alpha=0.5, label="booked to date")
    axes.fill_between(ahead, forecast["p10"], forecast["p90"], color="tab:orange", alpha=0.3, label="p10-p90")
    axes.plot(ahead, forecast["p50"], color="tab:orange", marker="o", label="p50")
    axes.set_xticks(np.arange(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 1e6:g}M"))
    axes.set(ylabel=f"bookings ({currency})", title=title)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
