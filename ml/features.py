"""Point-in-time features for the win-probability model: what the model may see, in one place.

The warehouse's `marts.ml_opportunity_features` holds one row per open deal per snapshot date with only what was
known at the end of that day. This module declares which of its columns the model reads (`NUMERIC`,
`CATEGORICAL`), derives the model's matrix from them (`model_matrix`), and refuses a frame that carries a column
only known after the outcome (`LeakageError`). Any other column is ignored, never used.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import duckdb
import numpy as np
import pandas as pd

FEATURES_TABLE = "marts.ml_opportunity_features"
OUTCOMES_TABLE = "marts.fct_opportunity"
ACTIVITY_TYPES = ("calls", "emails", "meetings")
WINDOWS = (7, 30, 90)

# Input columns of the features mart the model reads.
NUMERIC = (
    "stage_order", "days_in_stage", "age_days", "amount_reporting", "close_date_pushes", "days_to_expected_close",
    "owner_tenure_days",
    *(f"{activity}_{days}d" for activity in ACTIVITY_TYPES for days in WINDOWS),
    "connected_calls_to_date", "meetings_held_to_date", "contacts_engaged_to_date", "days_since_last_activity",
    "owner_closed_deals", "owner_win_rate", "segment_closed_deals", "segment_win_rate",
)  # fmt: skip
CATEGORICAL = ("stage_name", "forecast_category", "opportunity_type", "segment", "region")
INPUTS = NUMERIC + CATEGORICAL
KEYS = ("opportunity_id", "snapshot_date")
# Read beside the inputs for the baselines (the CRM's stage probability), never by the model.
BASELINE_COLUMNS = ("crm_probability",)

# Columns only known once a deal has closed. A frame carrying one is refused outright rather than silently
# trimmed: it means the caller joined outcomes into the features, and the label would be one step from the model.
DENIED = frozenset({
    "is_won", "is_closed", "is_lost", "status", "closed_at", "closed_date", "close_date", "final_stage",
    "final_stage_name", "close_amount", "closed_amount", "won_amount", "outcome", "label", "is_win_rate_eligible",
})  # fmt: skip

# Factors a prediction is explained by: each is a named group of input columns replaced together by their training
# reference values (a deal's 7-, 30- and 90-day call counts move together; replacing one alone would describe a
# deal that cannot exist). The name is the column whose value the explanation shows.
FACTORS = {
    "stage_name": ("stage_name", "stage_order"),
    "days_in_stage": ("days_in_stage",),
    "age_days": ("age_days",),
    "amount_reporting": ("amount_reporting",),
    "close_date_pushes": ("close_date_pushes",),
    "days_to_expected_close": ("days_to_expected_close",),
    "owner_tenure_days": ("owner_tenure_days",),
    "calls_30d": ("calls_7d", "calls_30d", "calls_90d", "connected_calls_to_date"),
    "emails_30d": ("emails_7d", "emails_30d", "emails_90d"),
    "meetings_30d": ("meetings_7d", "meetings_30d", "meetings_90d", "meetings_held_to_date"),
    "contacts_engaged_to_date": ("contacts_engaged_to_date",),
    "days_since_last_activity": ("days_since_last_activity",),
    "owner_win_rate": ("owner_win_rate", "owner_closed_deals"),
    "segment_win_rate": ("segment_win_rate", "segment_closed_deals"),
    "forecast_category": ("forecast_category",),
    "opportunity_type": ("opportunity_type",),
    "segment": ("segment",),
    "region": ("region",),
}

# A rep's record is shrunk towards the segment's rate with the weight of this many closed deals: a rep with two
# closed deals, both won, has not shown a 100% win rate.
OWNER_PRIOR_DEALS = 10.0

MODEL_CATEGORICAL = ("forecast_category", "opportunity_type", "segment", "region")


class LeakageError(ValueError):
    """A frame given to the feature builder carries a column only known after the deal closed."""


def check_no_leakage(columns: pd.Index | list[str]) -> None:
    """Refuse columns on the deny list (outcomes, final stage, close date or amount), case-insensitively."""
    leaked = sorted(column for column in columns if str(column).lower() in DENIED)
    if leaked:
        raise LeakageError(f"columns known only after the outcome: {', '.join(leaked)}")


def model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The declared input columns of `frame`, after the leakage check; every other column is dropped."""
    check_no_leakage(frame.columns)
    missing = [column for column in INPUTS if column not in frame.columns]
    if missing:
        raise KeyError(f"feature columns missing: {', '.join(missing)}")
    return frame.loc[:, list(INPUTS)]


def model_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's features, derived from the declared inputs only.

    Activity counts become rates per day of exposure (a deal's window cannot be longer than its age): engagement,
    the main driver of winning after the stage, shows as how often a deal is worked, and a 10-day-old deal with 10
    calls is busier than a 300-day-old one with 10. Amount is in log space. A rep's win rate is shrunk towards the
    segment's (`OWNER_PRIOR_DEALS`).
    """
    inputs = model_inputs(frame)
    numeric = {column: pd.to_numeric(inputs[column], errors="coerce").to_numpy(dtype=float) for column in NUMERIC}
    age = np.maximum(numeric["age_days"], 0.0) + 1.0
    out = {
        "stage_order": numeric["stage_order"],
        "days_in_stage": numeric["days_in_stage"],
        "age_days": numeric["age_days"],
        # how fast the deal moved through the stages before this one: healthy deals move faster
        "days_per_earlier_stage": np.where(
            numeric["stage_order"] > 1,
            (numeric["age_days"] - numeric["days_in_stage"]) / np.maximum(numeric["stage_order"] - 1, 1),
            np.nan,
        ),
        "log_amount": np.log1p(np.maximum(numeric["amount_reporting"], 0.0)),
        "close_date_pushes": numeric["close_date_pushes"],
        "days_to_expected_close": numeric["days_to_expected_close"],
        "owner_tenure_days": numeric["owner_tenure_days"],
    }
    for days in WINDOWS:
        exposure = np.minimum(age, days)
        for activity in ACTIVITY_TYPES:
            out[f"{activity}_per_day_{days}d"] = numeric[f"{activity}_{days}d"] / exposure
    exposure = np.minimum(age, 90)
    # calls, emails and meetings all rise with the buyer's engagement: one pooled rate is less noisy than each;
    # a meeting counts as four, about the ratio of calls and emails to meetings on a deal
    out["activity_per_day_90d"] = (
        numeric["calls_90d"] + numeric["emails_90d"] + 4.0 * numeric["meetings_90d"]
    ) / exposure
    # each kind of activity as log events per day, summed: the buyer's engagement moves all of them together
    out["engagement_index"] = sum(np.log((numeric[f"{activity}_90d"] + 0.5) / exposure) for activity in ACTIVITY_TYPES)
    # connected calls over calls, while the 90-day window still covers the deal's whole life
    out["connected_call_share"] = np.where(
        age <= 91, numeric["connected_calls_to_date"] / np.maximum(numeric["calls_90d"], 1.0), np.nan
    )
    out["connected_calls_per_day"] = numeric["connected_calls_to_date"] / age
    out["meetings_held_per_day"] = numeric["meetings_held_to_date"] / age
    out["contacts_engaged_to_date"] = numeric["contacts_engaged_to_date"]
    out["days_since_last_activity"] = numeric["days_since_last_activity"]
    segment_rate = numeric["segment_win_rate"]
    owner_won = np.nan_to_num(numeric["owner_win_rate"] * numeric["owner_closed_deals"])
    owner_closed = np.nan_to_num(numeric["owner_closed_deals"])
    shrunk = (owner_won + OWNER_PRIOR_DEALS * segment_rate) / (owner_closed + OWNER_PRIOR_DEALS)
    # no segment rate yet (nothing closed in it): the rep's own rate, or missing; each row on its own values only
    out["owner_win_rate_shrunk"] = np.where(np.isnan(segment_rate), numeric["owner_win_rate"], shrunk)
    # the rep against the segment, in log-odds: a rep's raw rate mostly reflects the deals the seat gets
    out["owner_rate_versus_segment"] = _logit(out["owner_win_rate_shrunk"]) - _logit(segment_rate)
    out["owner_closed_deals"] = numeric["owner_closed_deals"]
    out["segment_win_rate"] = segment_rate
    matrix = pd.DataFrame(out, index=frame.index)
    for column in MODEL_CATEGORICAL:
        matrix[column] = inputs[column].astype("string")
    return matrix


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


def load_snapshots(con: duckdb.DuckDBPyConnection, through: dt.date) -> pd.DataFrame:
    """Every snapshot row up to and including `through`: the keys, the declared inputs, the CRM's probability."""
    columns = ", ".join((*KEYS, *INPUTS, *BASELINE_COLUMNS))
    frame = con.execute(
        f"select {columns} from {FEATURES_TABLE} where snapshot_date <= ? order by snapshot_date, opportunity_id",
        [through],
    ).df()
    frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"]).dt.date
    for column in (*NUMERIC, *BASELINE_COLUMNS):
        frame[column] = frame[column].astype(float)
    return frame


def load_outcomes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Closed deals: opportunity_id, closed_date (UTC) and is_won. The only source of labels."""
    frame = con.execute(
        f"""
        select opportunity_id, cast(timezone('UTC', closed_at) as date) as closed_date, is_won
        from {OUTCOMES_TABLE}
        where is_closed and closed_at is not null
        """
    ).df()
    frame["closed_date"] = pd.to_datetime(frame["closed_date"]).dt.date
    frame["is_won"] = frame["is_won"].astype(bool)
    return frame


class TrainingSet(NamedTuple):
    """Training rows with their labels kept apart, so the features never carry the outcome."""

    features: pd.DataFrame  # keys and declared inputs
    is_won: np.ndarray
    closed_date: np.ndarray  # of the row's deal, for the time-based split


def training_rows(snapshots: pd.DataFrame, outcomes: pd.DataFrame, cutoff: dt.date) -> TrainingSet:
    """Snapshots up to `cutoff` of deals closed on or before it, labelled with the outcome.

    Only outcomes known at the end of the cutoff day label a row; a deal still open then is left out whole.
    """
    closed = outcomes.loc[outcomes["closed_date"] <= cutoff, ["opportunity_id", "closed_date", "is_won"]]
    rows = snapshots.loc[snapshots["snapshot_date"] <= cutoff]
    rows = rows.merge(closed, on="opportunity_id", how="inner", validate="many_to_one")
    return TrainingSet(
        features=rows.drop(columns=["closed_date", "is_won"]).reset_index(drop=True),
        is_won=rows["is_won"].to_numpy(dtype=bool),
        closed_date=rows["closed_date"].to_numpy(),
    )
