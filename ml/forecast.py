"""Revenue forecast: bookings per month and per fiscal quarter, at company, team, territory and rep level, with
p10/p50/p90 intervals, for the period of the forecast date and the next two.

A period's total is three parts, each known or learned only from what was known at the forecast date `T`:

- `booked_to_date`: won bookings dated in the period up to and including `T` (0 for future periods).
- `open_pipeline_expected`: each deal open at `T` (its row of `marts.ml_opportunity_features` that day), worth its
  amount times `p_win` (its row of `ml.win_probability` that day) times the chance that, if it wins, it closes in
  the period. That timing is the empirical distribution of days from a snapshot to the win, among snapshots of won
  deals in the same stage and band of days to the expected close date (`expected_close_band`), taken from snapshots at
  least `CYCLE_DAYS` before `T` so that the wins of the deals in them were known by `T` (a window nearer `T` would
  only see the quick wins). A cell with fewer than `MIN_TIMING_ROWS` falls back to the stage, then to every stage.
- `new_pipeline_expected`: deals created after `T` that win in the period. The daily count of bookings is a
  Poisson regression (scikit-learn) on the last year before `T`: a trend, extrapolated `TREND_DAYS` past `T` and
  then held, plus the fiscal-quarter-end rush (`rate_features`). A booking on day `d` comes from a deal created
  after `T` when its creation-to-win lag is shorter than `d - T`; lags and amounts are resampled together from the
  bookings of the last year (big deals take longer), so the new part grows from nothing in the first days after
  `T` to the full rate once the typical sales cycle has passed. Each resampled booking goes to the rep who booked
  it when that rep still sells at `T`, else to the reps selling at `T` in the same territory: its group is that
  rep's team and territory at `T`.

History before the first deal's creation date plus `CYCLE_DAYS` is a warm-up and not learned from: deals created
before the data begins are missing, so bookings then are too few and their lags too short.

Intervals come from `N_DRAWS` Monte Carlo paths: each open deal wins with probability `p_win` and closes on a
resampled day; the new bookings per month are Poisson with a gamma-distributed level shared by all months of a path
(the over-dispersion of weekly counts around the regression, `booking_rate`), each with a resampled amount and rep.
Paths are summed bottom-up, rep -> team / territory -> company, so every path adds up across levels; the expected
components add up exactly; the quantiles are taken per group and level, so p10/p50/p90 of a level are not the sums
of its groups' quantiles. The seed is the forecast date's ordinal: a rerun gives the same numbers. The backtest
scores p50 as the model's point forecast (the median minimises absolute error; the mean, booked + open + new, sits
above it when one deal can be worth a quarter's bookings).

`run_forecast_stage` is the one entry point the orchestration calls. It appends the forecasts of the scoring days of
`ml.win_probability` not yet forecast by this `MODEL_VERSION` (a day without scores is skipped and named), then
rebuilds `ml.forecast_backtest` (see `ml.backtest`), and returns the counts, the backtest and a fan chart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits

from ml import backtest
from ml.plots import fan_chart_png
from ml.tables import append, ensure_tables

FORECAST_TABLE = "ml.revenue_forecast"
BACKTEST_TABLE = "ml.forecast_backtest"
SCORES_TABLE = "ml.win_probability"
FEATURES_TABLE = "marts.ml_opportunity_features"

PERIOD_GRAINS = ("month", "fiscal_quarter")
LEVELS = ("company", "team", "territory", "rep")
HORIZONS = 3  # the forecast date's period and the next two
COMPANY = "company"  # the one group of the company level
UNASSIGNED = "unassigned"  # the team or territory of a deal whose owner has none that day
QUANTILES = (0.1, 0.5, 0.9)
# what the warehouse maps each CRM's commit label to (column `meaning` of dbt_project/seeds/crm_picklists.csv)
COMMIT_CATEGORY = "Commit"
EPOCH = dt.date(1970, 1, 1)

# The method's settings, hashed into MODEL_VERSION: changing one backfills every scoring day under a new version.
SETTINGS = {
    "revision": 1,  # raise when the method changes without a setting changing
    # half the time of 2000 draws; between seeds, a group's p10 moves by a standard deviation of about 1% of its
    # p10-p90 spread (median over groups on the demo world; 1-2% at the company)
    "draws": 1000,
    "history_days": 365,
    # 98% of the demo world's won deals close within 120 days of creation (median 31, p99 137)
    "cycle_days": 120,
    "min_timing_rows": 30,
    "min_rate_days": 56,  # eight weeks of bookings: the least a rate with a trend is fitted on
    # The trend is extrapolated one quarter past the forecast date, then held: a damped trend. Over the demo
    # world's backtest, holding it at once (0) under-forecast the next quarter by 25% and extrapolating through
    # all three quarters (270) over-forecast the one after by 22%; 90 left both within 15%.
    "trend_days": 90,
    # On the demo world the last 3 days of a fiscal quarter book 3.1 times the usual daily count and the 14 days
    # before them 1.3 times
    "quarter_end_days": (3, 17),
    "expected_close_bands": (0, 15, 36),  # overdue, 0-14, 15-35, 36+ days to the expected close date
}
N_DRAWS: int = SETTINGS["draws"]
HISTORY_DAYS: int = SETTINGS["history_days"]
CYCLE_DAYS: int = SETTINGS["cycle_days"]
MIN_TIMING_ROWS: int = SETTINGS["min_timing_rows"]
MIN_RATE_DAYS: int = SETTINGS["min_rate_days"]
TREND_DAYS: int = SETTINGS["trend_days"]
QUARTER_END_DAYS: tuple[int, int] = SETTINGS["quarter_end_days"]
EXPECTED_CLOSE_BANDS: tuple[int, ...] = SETTINGS["expected_close_bands"]
MODEL_VERSION = "revenue-mc-" + hashlib.sha256(json.dumps(SETTINGS, sort_keys=True).encode()).hexdigest()[:10]


# ---------------------------------------------------------------- calendar


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01: the forecast works on integer days, as numpy's datetime64[D] does."""
    return (day - EPOCH).days


def from_day_number(number: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(number))


def month_ordinal(days: np.ndarray | int) -> np.ndarray:
    """Months since January 1970 of day numbers."""
    return np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_start_day(ordinals: np.ndarray | int) -> np.ndarray:
    """Day number of the first day of month ordinals."""
    return np.asarray(ordinals, dtype="datetime64[M]").astype("datetime64[D]").astype(np.int64)


def fiscal_quarter_start_month(ordinals: np.ndarray | int, fiscal_year_start_month: int) -> np.ndarray:
    """Month ordinal of the first month of the fiscal quarter holding each month ordinal."""
    ordinals = np.asarray(ordinals, dtype=np.int64)
    return ordinals - ((ordinals % 12 + 1 - fiscal_year_start_month) % 12) % 3


def fiscal_quarter_end_day(days: np.ndarray, fiscal_year_start_month: int) -> np.ndarray:
    """Day number of the last day of the fiscal quarter holding each day."""
    return month_start_day(fiscal_quarter_start_month(month_ordinal(days), fiscal_year_start_month) + 3) - 1


@dataclass(frozen=True)
class Period:
    """One forecast period; `first_month` indexes the forecast's months, which begin with the fiscal quarter of the
    forecast date."""

    grain: str
    horizon: int
    start: dt.date
    end: dt.date
    first_month: int
    months: int


@dataclass(frozen=True)
class Horizon:
    """The periods forecast at a date: months 0-2 and fiscal quarters 0-2 counted from the date's own."""

    first_month: int  # month ordinal of the first month of the forecast date's fiscal quarter
    months: int
    periods: tuple[Period, ...]


def horizon_at(forecast_date: dt.date, fiscal_year_start_month: int) -> Horizon:
    """The months and fiscal quarters forecast at `forecast_date`: its own and the next two of each grain."""
    month = int(month_ordinal(day_number(forecast_date)))
    first = int(fiscal_quarter_start_month(month, fiscal_year_start_month))
    periods = []
    for grain, offset, length in (("month", month - first, 1), ("fiscal_quarter", 0, 3)):
        for horizon in range(HORIZONS):
            start = offset + horizon * length
            periods.append(
                Period(
                    grain=grain,
                    horizon=horizon,
                    start=from_day_number(month_start_day(first + start)),
                    end=from_day_number(month_start_day(first + start + length) - 1),
                    first_month=start,
                    months=length,
                )
            )
    return Horizon(first_month=first, months=3 * HORIZONS, periods=tuple(periods))


def previous_period(period: Period) -> tuple[dt.date, dt.date]:
    """The period of the same grain just before `period`."""
    start = int(month_ordinal(day_number(period.start)))
    return (
        from_day_number(month_start_day(start - period.months)),
        from_day_number(day_number(period.start) - 1),
    )


def year_earlier(period: Period) -> tuple[dt.date, dt.date]:
    """The same period a year earlier (twelve months: fiscal quarters align with calendar months)."""
    start = int(month_ordinal(day_number(period.start))) - 12
    return (
        from_day_number(month_start_day(start)),
        from_day_number(month_start_day(start + period.months) - 1),
    )


# ---------------------------------------------------------------- what the forecast reads


@dataclass
class History:
    """Everything the forecasts read, loaded once; `forecast_at` takes from it only what was known at its date.
    Days are day numbers (`day_number`); amounts are in `currency`."""

    bookings: pd.DataFrame  # opportunity_id, rep_id, team_id, territory_id, booking_day, created_day, amount
    snapshots: pd.DataFrame  # opportunity_id, snapshot_day, rep_id, team_id, territory_id, stage_order, amount,
    #   expected_close_day, days_to_expected_close, forecast_category, crm_probability, is_pipeline_eligible
    scores: pd.DataFrame  # opportunity_id, scored_day, p_win
    reps: pd.DataFrame  # rep_id, team_id, territory_id, valid_from_day, valid_to_day (exclusive), is_active
    fiscal_year_start_month: int
    data_start: dt.date  # the first deal's creation date
    currency: str
    won_snapshots: pd.DataFrame = field(init=False)  # snapshots of won deals with their booking day

    def __post_init__(self) -> None:
        wins = self.snapshots.merge(
            self.bookings[["opportunity_id", "booking_day"]], on="opportunity_id", how="inner", validate="many_to_one"
        )
        wins["days_to_win"] = wins["booking_day"] - wins["snapshot_day"]
        self.won_snapshots = wins[
            ["snapshot_day", "booking_day", "stage_order", "days_to_expected_close", "days_to_win"]
        ].reset_index(drop=True)


def load_history(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> History:
    """Bookings, the features mart's snapshots, the win scores and the rep versions, up to `as_of`. An amount
    without a value in the reporting currency (none entered, or no FX rate for its currency yet: dbt warns about
    both) counts as 0. Every frame comes in a fixed order: the draws resample rows by position, so a rerun on the
    same data gives the same forecast."""
    bookings = con.execute(
        """
        select b.opportunity_id, b.rep_id, b.team_id, b.territory_id,
            b.booking_date - date '1970-01-01' as booking_day,
            o.created_date - date '1970-01-01' as created_day,
            coalesce(cast(b.amount_reporting as double), 0) as amount, b.reporting_currency
        from marts.fct_bookings as b
        inner join marts.fct_opportunity as o on b.opportunity_id = o.opportunity_id
        where b.booking_date <= ?
        order by b.booking_date, b.opportunity_id
        """,
        [as_of],
    ).df()
    snapshots = con.execute(
        f"""
        select opportunity_id, snapshot_date - date '1970-01-01' as snapshot_day,
            owner_id as rep_id, team_id, territory_id, stage_order,
            coalesce(cast(amount_reporting as double), 0) as amount,
            expected_close_date - date '1970-01-01' as expected_close_day, days_to_expected_close,
            forecast_category, cast(crm_probability as double) as crm_probability, is_pipeline_eligible
        from {FEATURES_TABLE}
        where snapshot_date <= ?
        order by snapshot_date, opportunity_id
        """,
        [as_of],
    ).df()
    scores = con.execute(
        f"select opportunity_id, as_of_date - date '1970-01-01' as scored_day, p_win from {SCORES_TABLE} "
        "where as_of_date <= ? order by as_of_date, opportunity_id",
        [as_of],
    ).df()
    reps = con.execute(
        """
        select rep_id, team_id, territory_id,
            cast(timezone('UTC', valid_from_at) as date) - date '1970-01-01' as valid_from_day,
            coalesce(cast(timezone('UTC', valid_to_at) as date) - date '1970-01-01', 1000000) as valid_to_day,
            is_active
        from marts.dim_rep
        order by rep_id, valid_from_at
        """
    ).df()
    start_month = con.execute("select min(calendar_month) from marts.dim_date where fiscal_month = 1").fetchone()[0]
    data_start = con.execute("select min(created_date) from marts.fct_opportunity").fetchone()[0]
    currency = bookings["reporting_currency"].dropna().unique()
    if len(currency) > 1:
        raise ValueError(f"bookings in several reporting currencies: {sorted(currency)}")
    return History(
        bookings=bookings.drop(columns="reporting_currency"),
        snapshots=snapshots,
        scores=scores,
        reps=reps,
        fiscal_year_start_month=int(start_month),
        data_start=data_start or as_of,
        currency=str(currency[0]) if len(currency) else _reporting_currency(con),
    )


def _reporting_currency(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("select any_value(reporting_currency) from marts.fct_opportunity").fetchone()
    return row[0] if row and row[0] else "USD"


# ---------------------------------------------------------------- the parts of a forecast


class Units:
    """The (rep, team, territory) combinations a forecast adds up from: the finest grain, rolled up to each level."""

    def __init__(self) -> None:
        self.index: dict[tuple[str, str, str], int] = {}

    def ids(self, rep: pd.Series, team: pd.Series, territory: pd.Series) -> np.ndarray:
        columns = [column.fillna(UNASSIGNED).to_numpy(dtype=object) for column in (rep, team, territory)]
        keys = zip(*columns, strict=True)
        return np.array([self.index.setdefault(key, len(self.index)) for key in keys], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def groups(self, level: str) -> tuple[list[str], np.ndarray]:
        """The group ids of `level` and the group of each unit."""
        keys = list(self.index)
        if level == COMPANY:
            return [COMPANY], np.zeros(len(keys), dtype=np.int64)
        position = {"rep": 0, "team": 1, "territory": 2}[level]
        names = sorted({key[position] for key in keys})
        lookup = {name: i for i, name in enumerate(names)}
        return names, np.array([lookup[key[position]] for key in keys], dtype=np.int64)


def expected_close_band(days_to_expected_close: np.ndarray) -> np.ndarray:
    """The band of days to the expected close date: 0 overdue, then 0-14, 15-35, 36 and more."""
    return np.digitize(np.asarray(days_to_expected_close, dtype=float), EXPECTED_CLOSE_BANDS)


def close_timing(history: History, day: int) -> dict[tuple[int | None, int | None], np.ndarray]:
    """Sorted days from a snapshot to the win, per (stage, band), per (stage, None) and (None, None), from snapshots
    whose outcome was known by `day` (see the module docstring)."""
    wins = history.won_snapshots
    known = wins[
        (wins["booking_day"] <= day)
        & (wins["snapshot_day"] <= day - CYCLE_DAYS)
        & (wins["snapshot_day"] > day - CYCLE_DAYS - HISTORY_DAYS)
    ]
    stage = known["stage_order"].to_numpy()
    band = expected_close_band(known["days_to_expected_close"].to_numpy())
    days = known["days_to_win"].to_numpy(dtype=np.int64)
    cells: dict[tuple[int | None, int | None], np.ndarray] = {(None, None): np.sort(days)}
    for value in np.unique(stage):
        cells[(int(value), None)] = np.sort(days[stage == value])
        for band_value in np.unique(band[stage == value]):
            cells[(int(value), int(band_value))] = np.sort(days[(stage == value) & (band == band_value)])
    return cells


def deal_timing_keys(deals: pd.DataFrame, cells: dict) -> list:
    """The most specific timing cell with enough rows for each deal; `None` when history has none at all."""
    stage = deals["stage_order"].to_numpy()
    band = expected_close_band(deals["days_to_expected_close"].to_numpy())
    keys = []
    for stage_value, band_value in zip(stage, band, strict=True):
        for key in ((int(stage_value), int(band_value)), (int(stage_value), None), (None, None)):
            if len(cells.get(key, ())) >= MIN_TIMING_ROWS:
                keys.append(key)
                break
        else:
            keys.append(None)
    return keys


@dataclass(frozen=True)
class Part:
    """A part of a forecast: its expected amount per unit and month, and its sample paths as amounts at flat indices
    `(unit * months + month) * draws + draw` (sparse: most deals do not win in most paths)."""

    expected: np.ndarray
    path_index: np.ndarray
    path_amount: np.ndarray


def path_index(unit: np.ndarray, month: np.ndarray, draw: np.ndarray, months: int, draws: int) -> np.ndarray:
    return (unit * months + month) * draws + draw


def open_pipeline(
    history: History, day: int, horizon: Horizon, units: Units, rng: np.random.Generator, draws: int
) -> tuple[Part, int, int]:
    """The deals open at `day`: their part, and the number of open and unscored deals."""
    deals = history.snapshots[history.snapshots["snapshot_day"] == day]
    scores = history.scores[history.scores["scored_day"] == day][["opportunity_id", "p_win"]]
    deals = deals.merge(scores, on="opportunity_id", how="left", validate="one_to_one").reset_index(drop=True)
    deals = _with_team_at(deals, history.reps, day)
    unscored = int(deals["p_win"].isna().sum())
    unit = units.ids(deals["rep_id"], deals["team_id"], deals["territory_id"])
    amount = deals["amount"].to_numpy(dtype=float)
    p_win = np.clip(deals["p_win"].fillna(0.0).to_numpy(dtype=float), 0.0, 1.0)
    month_starts = month_start_day(horizon.first_month + np.arange(horizon.months + 1))
    # offsets from `day` of each month's first and last day, the current month starting tomorrow
    first_offset = np.maximum(month_starts[:-1] - day, 1)
    last_offset = month_starts[1:] - 1 - day
    cells = close_timing(history, day)
    keys = deal_timing_keys(deals, cells)
    share = np.zeros((len(deals), horizon.months))
    days_to_win = np.zeros((len(deals), draws), dtype=np.int64)
    for key in dict.fromkeys(keys):
        rows = np.array([i for i, k in enumerate(keys) if k == key], dtype=np.int64)
        if key is None:  # no history of wins: each win lands on its expected close date (tomorrow if overdue)
            fixed = np.maximum(deals["expected_close_day"].to_numpy()[rows] - day, 1)
            share[rows] = (fixed[:, None] >= first_offset) & (fixed[:, None] <= last_offset)
            days_to_win[rows] = fixed[:, None]
            continue
        sample = cells[key]
        inside = np.searchsorted(sample, last_offset, "right") - np.searchsorted(sample, first_offset, "left")
        share[rows] = np.maximum(inside, 0) / len(sample)
        days_to_win[rows] = sample[rng.integers(0, len(sample), size=(len(rows), draws))]
    expected = np.zeros((len(units), horizon.months))
    np.add.at(expected, unit, (amount * p_win)[:, None] * share)
    wins = rng.random((len(deals), draws)) < p_win[:, None]
    month = month_ordinal(day + days_to_win) - horizon.first_month
    deal, draw = np.nonzero(wins & (month < horizon.months))
    index = path_index(unit[deal], month[deal, draw], draw, horizon.months, draws)
    return Part(expected, index, amount[deal]), len(deals), unscored


def _with_team_at(frame: pd.DataFrame, reps: pd.DataFrame, day: int) -> pd.DataFrame:
    """Fill a missing team or territory from the rep's version valid at `day`, else the version nearest to it: on
    the demo world, 8 reps own deals in the features mart up to 19 weeks before their first version starts, and their
    deals belong to the team they join rather than to no team."""
    if not (frame["team_id"].isna().any() or frame["territory_id"].isna().any()):
        return frame
    before, after = day - reps["valid_to_day"] + 1, reps["valid_from_day"] - day
    distance = np.maximum(np.maximum(before, after), 0)
    nearest = reps.assign(distance=distance).sort_values("distance", kind="stable").drop_duplicates("rep_id")
    nearest = nearest.set_index("rep_id")
    frame = frame.copy()
    for column in ("team_id", "territory_id"):
        frame[column] = frame[column].fillna(frame["rep_id"].map(nearest[column]))
    return frame


def reps_at(reps: pd.DataFrame, day: int) -> pd.DataFrame:
    """The version of each rep valid at the end of `day`: rep_id, team_id, territory_id, is_active."""
    valid = reps[(reps["valid_from_day"] <= day) & (reps["valid_to_day"] > day)]
    return valid.drop_duplicates("rep_id", keep="last")[["rep_id", "team_id", "territory_id", "is_active"]]


def rate_features(days: np.ndarray, day: int, fiscal_year_start_month: int) -> np.ndarray:
    """Trend (years from `day`) and the quarter-end rush: the last 3 days of a fiscal quarter and the 14 before."""
    to_end = fiscal_quarter_end_day(days, fiscal_year_start_month) - days
    last, before = QUARTER_END_DAYS
    trend = np.minimum(days - day, TREND_DAYS) / 365.0
    return np.column_stack([trend, to_end < last, (to_end >= last) & (to_end < before)]).astype(float)


def booking_rate(history: History, day: int, last_day: int) -> tuple[np.ndarray, float]:
    """Expected bookings per day from `day + 1` to `last_day`, and the variance of the level shared by a path's
    months (0 for a Poisson process): from the Pearson dispersion of weekly counts around the fitted rate."""
    days_ahead = np.arange(day + 1, last_day + 1)
    first = max(day - HISTORY_DAYS, day_number(history.data_start) + CYCLE_DAYS) + 1
    if day - first + 1 < MIN_RATE_DAYS:
        return np.zeros(len(days_ahead)), 0.0
    booked = history.bookings["booking_day"].to_numpy()
    booked = booked[(booked >= first) & (booked <= day)]
    if not len(booked):
        return np.zeros(len(days_ahead)), 0.0
    days = np.arange(first, day + 1)
    counts = np.bincount(booked - first, minlength=len(days)).astype(float)
    model = PoissonRegressor(alpha=1e-6, solver="newton-cholesky", max_iter=100)
    # one thread: a fit on a year of days took 0.06 s with OpenMP's threads on two busy cores and 0.0007 s without
    with threadpool_limits(limits=1):
        model.fit(rate_features(days, day, history.fiscal_year_start_month), counts)
    fitted = model.predict(rate_features(days, day, history.fiscal_year_start_month))
    weeks = (day - days) // 7
    observed, expected = np.bincount(weeks, counts), np.bincount(weeks, fitted)
    dispersion = np.sum((observed - expected) ** 2 / np.maximum(expected, 1e-9)) / max(len(observed) - 4, 1)
    level_variance = max(dispersion - 1.0, 0.0) / max(expected.mean(), 1e-9)
    return model.predict(rate_features(days_ahead, day, history.fiscal_year_start_month)), float(level_variance)


def new_pipeline(
    history: History, day: int, horizon: Horizon, units: Units, rng: np.random.Generator, draws: int
) -> Part:
    """The bookings of deals created after `day`."""
    months = np.arange(horizon.months)
    month_starts = month_start_day(horizon.first_month + np.arange(horizon.months + 1))
    last_day = int(month_starts[-1] - 1)
    rate, level_variance = booking_rate(history, day, last_day)
    recent = _recent_bookings(history, day)
    if not len(recent) or not rate.sum():
        return Part(np.zeros((len(units), horizon.months)), np.zeros(0, dtype=np.int64), np.zeros(0))
    pairs = _rep_at(recent, history, day)
    unit = units.ids(pairs["rep_id"], pairs["team_id"], pairs["territory_id"])
    # cumulative rate: the expected bookings from day + 1 to day + x is cumulative[x]
    cumulative = np.concatenate([[0.0], np.cumsum(rate)])
    first_offset = np.maximum(month_starts[:-1] - day, 1)
    last_offset = np.maximum(month_starts[1:] - 1 - day, 0)
    earliest = np.maximum(first_offset[None, :], pairs["lag"].to_numpy()[:, None] + 1)
    within = cumulative[last_offset][None, :] - cumulative[np.minimum(earliest, len(rate) + 1) - 1]
    # each of the recent bookings stands for 1/len(recent) of the bookings on a day
    intensity = np.maximum(within, 0.0) * (pairs["weight"].to_numpy()[:, None] / len(recent))
    amount = pairs["amount"].to_numpy()
    expected = np.zeros((len(units), horizon.months))
    np.add.at(expected, unit, intensity * amount[:, None])
    if level_variance > 0:
        level = rng.gamma(1.0 / level_variance, level_variance, size=draws)
    else:
        level = np.ones(draws)
    indices, amounts = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for month in months:
        total = intensity[:, month].sum()
        if total <= 0:
            continue
        counts = rng.poisson(level * total)
        picked = alias_draws(rng, *alias_table(intensity[:, month]), int(counts.sum()))
        draw = np.repeat(np.arange(draws), counts)
        indices.append(path_index(unit[picked], month, draw, horizon.months, draws))
        amounts.append(amount[picked])
    return Part(expected, np.concatenate(indices), np.concatenate(amounts))


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table of non-negative `weights`: a draw costs one uniform and one comparison. Drawing the new
    bookings by binary search on the cumulative weights took four times as long (5.7 ms against 1.4 ms for 80,000
    draws among 900 weights)."""
    size = len(weights)
    scaled = np.asarray(weights, dtype=float) * size / np.sum(weights)
    keep, alias = np.ones(size), np.arange(size)
    small = [i for i in range(size) if scaled[i] < 1.0]
    large = [i for i in range(size) if scaled[i] >= 1.0]
    while small and large:
        low, high = small.pop(), large.pop()
        keep[low], alias[low] = scaled[low], high
        scaled[high] += scaled[low] - 1.0
        (small if scaled[high] < 1.0 else large).append(high)
    return keep, alias


def alias_draws(rng: np.random.Generator, keep: np.ndarray, alias: np.ndarray, size: int) -> np.ndarray:
    """`size` indices drawn with the probabilities of the weights behind (`keep`, `alias`)."""
    spot = rng.random(size) * len(keep)
    index = np.minimum(spot.astype(np.int64), len(keep) - 1)
    return np.where(spot - index < keep[index], index, alias[index])


def _recent_bookings(history: History, day: int) -> pd.DataFrame:
    """Bookings of the last year before `day` after the warm-up, with their creation-to-win lag."""
    bookings = history.bookings
    first = max(day - HISTORY_DAYS, day_number(history.data_start) + CYCLE_DAYS) + 1
    recent = bookings[(bookings["booking_day"] >= first) & (bookings["booking_day"] <= day)].copy()
    recent["lag"] = (recent["booking_day"] - recent["created_day"]).clip(lower=0)
    return recent.reset_index(drop=True)


def _rep_at(recent: pd.DataFrame, history: History, day: int) -> pd.DataFrame:
    """Each recent booking's rep at `day`, with the rep's team and territory then: the rep who booked it when still
    selling, else each rep selling in its territory (`weight` splits it between them), else each rep selling. A
    rep sells at `day` when active then and owning an open deal or a booking of the last year."""
    open_owners = history.snapshots.loc[history.snapshots["snapshot_day"] == day, "rep_id"]
    selling = reps_at(history.reps, day)
    selling = selling[selling["is_active"].fillna(False).astype(bool)]
    selling = selling.loc[selling["rep_id"].isin(set(open_owners) | set(recent["rep_id"])),
                          ["rep_id", "team_id", "territory_id"]]  # fmt: skip
    if selling.empty:  # no rep directory: the booking stays with its own rep, team and territory
        return recent.assign(weight=1.0)[["lag", "amount", "rep_id", "team_id", "territory_id", "weight"]]
    place = {rep: (rep, team, territory) for rep, team, territory in selling.itertuples(index=False, name=None)}
    by_territory: dict[str, list[tuple]] = {}
    for rep, team, territory in place.values():
        by_territory.setdefault(territory, []).append((rep, team, territory))
    everyone = list(place.values())
    lags, amounts, weights, reps = [], [], [], []
    for rep, territory, lag, amount in recent[["rep_id", "territory_id", "lag", "amount"]].itertuples(index=False):
        targets = [place[rep]] if rep in place else by_territory.get(territory, everyone)
        lags += [lag] * len(targets)
        amounts += [amount] * len(targets)
        weights += [1.0 / len(targets)] * len(targets)
        reps += targets
    rep_id, team_id, territory_id = zip(*reps, strict=True) if reps else ((), (), ())
    return pd.DataFrame({"lag": lags, "amount": amounts, "rep_id": rep_id, "team_id": team_id,
                         "territory_id": territory_id, "weight": weights})  # fmt: skip


def booked(history: History, day: int, horizon: Horizon, units: Units) -> np.ndarray:
    """Won bookings per unit and month of the forecast's months, up to and including `day`."""
    bookings = history.bookings
    first = month_start_day(horizon.first_month)
    rows = bookings[(bookings["booking_day"] >= first) & (bookings["booking_day"] <= day)]
    unit = units.ids(rows["rep_id"], rows["team_id"], rows["territory_id"])
    month = month_ordinal(rows["booking_day"].to_numpy()) - horizon.first_month
    total = np.zeros((len(units), horizon.months))
    np.add.at(total, (unit, month), rows["amount"].to_numpy(dtype=float))
    return total


# ---------------------------------------------------------------- one forecast


@dataclass(frozen=True)
class Forecast:
    rows: pd.DataFrame  # the rows of ml.revenue_forecast for one forecast date
    open_deals: int
    unscored_deals: int


def forecast_at(history: History, forecast_date: dt.date, draws: int = N_DRAWS) -> Forecast:
    """The forecast made at the end of `forecast_date` from what was known then (see the module docstring)."""
    day = day_number(forecast_date)
    horizon = horizon_at(forecast_date, history.fiscal_year_start_month)
    rng = np.random.default_rng(forecast_date.toordinal())
    units = Units()
    open_part, open_deals, unscored = open_pipeline(history, day, horizon, units, rng, draws)
    new_part = new_pipeline(history, day, horizon, units, rng, draws)
    booked_months = booked(history, day, horizon, units)
    size = len(units)
    components = {
        "booked_to_date": _pad(booked_months, size),
        "open_pipeline_expected": _pad(open_part.expected, size),
        "new_pipeline_expected": _pad(new_part.expected, size),
    }
    index = np.concatenate([open_part.path_index, new_part.path_index])
    amount = np.concatenate([open_part.path_amount, new_part.path_amount])
    paths = np.bincount(index, amount, minlength=size * horizon.months * draws).reshape(size, horizon.months, draws)
    paths += components["booked_to_date"][:, :, None]
    columns: dict[str, list] = {name: [] for name in ("period_grain", "period_start", "period_end", "level",
                                                       "group_id", *components, "p10", "p50", "p90")}  # fmt: skip
    for level in LEVELS:
        names, group = units.groups(level)
        level_paths = _sum_by(group, len(names), paths)
        level_parts = {name: _sum_by(group, len(names), values) for name, values in components.items()}
        for period in horizon.periods:
            months = slice(period.first_month, period.first_month + period.months)
            quantiles = np.quantile(level_paths[:, months, :].sum(axis=1), QUANTILES, axis=1)
            for name, value in (("period_grain", period.grain), ("period_start", period.start),
                                ("period_end", period.end), ("level", level)):  # fmt: skip
                columns[name] += [value] * len(names)
            columns["group_id"] += names
            for name, values in level_parts.items():
                columns[name] += list(values[:, months].sum(axis=1))
            for name, values in zip(("p10", "p50", "p90"), quantiles, strict=True):
                columns[name] += list(values)
    rows = pd.DataFrame(columns)
    rows.insert(0, "forecast_date", forecast_date)
    rows.insert(rows.columns.get_loc("group_id") + 1, "currency", history.currency)
    rows["model_version"] = MODEL_VERSION
    return Forecast(rows=rows, open_deals=open_deals, unscored_deals=unscored)


def _sum_by(group: np.ndarray, groups: int, values: np.ndarray) -> np.ndarray:
    """Rows of `values` summed by `group` (one group id per row, every group from 0 to `groups` - 1 present)."""
    order = np.argsort(group, kind="stable")
    return np.add.reduceat(values[order], np.searchsorted(group[order], np.arange(groups)), axis=0)


def _pad(values: np.ndarray, size: int) -> np.ndarray:
    """Units registered after a part was computed have nothing in it."""
    return np.pad(values, ((0, size - len(values)), (0, 0)))


# ---------------------------------------------------------------- baselines and actuals for the backtest


def roll_up(items: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Sum `value` of rows carrying rep_id, team_id and territory_id to every level: keys + level, group_id."""
    items = items.assign(
        company=COMPANY,
        team=items["team_id"].fillna(UNASSIGNED),
        territory=items["territory_id"].fillna(UNASSIGNED),
        rep=items["rep_id"],
    )
    frames = []
    for level in LEVELS:
        summed = items.groupby([*keys, level], as_index=False, dropna=False)[value].sum()
        frames.append(summed.rename(columns={level: "group_id"}).assign(level=level))
    return pd.concat(frames, ignore_index=True)[[*keys, "level", "group_id", value]]


def _bookings_in(history: History, start: dt.date, end: dt.date, through: int) -> pd.DataFrame:
    bookings = history.bookings
    inside = (bookings["booking_day"] >= day_number(start)) & (bookings["booking_day"] <= min(day_number(end), through))
    return bookings.loc[inside, ["rep_id", "team_id", "territory_id", "amount"]]


def baseline_forecasts(history: History, forecast_date: dt.date) -> pd.DataFrame:
    """The point forecasts the model is measured against, per period, level and group: `forecast` per `method`.

    naive: the bookings of the last complete period before the forecast date's own, for every horizon.
    seasonal_naive: the bookings of the same period a year earlier; none when that period began before the data.
    crm_weighted_pipeline: booked to date + amount x CRM probability of open eligible deals expected to close in
    the period. commit_rollup: booked to date + the amount of open eligible Commit deals expected to close in it.
    A method defined for a period always has its company row, even at 0.
    """
    day = day_number(forecast_date)
    horizon = horizon_at(forecast_date, history.fiscal_year_start_month)
    deals = history.snapshots[(history.snapshots["snapshot_day"] == day) & history.snapshots["is_pipeline_eligible"]]
    deals = _with_team_at(deals, history.reps, day)
    current = {period.grain: period for period in horizon.periods if period.horizon == 0}
    items, defined = [], []
    for period in horizon.periods:
        key = {"period_grain": period.grain, "horizon": period.horizon}
        booked_so_far = _bookings_in(history, period.start, period.end, day)
        closing = deals[deals["expected_close_day"].between(day_number(period.start), day_number(period.end))]
        weighted = closing.assign(amount=closing["amount"] * closing["crm_probability"] / 100.0)
        commit = closing[closing["forecast_category"] == COMMIT_CATEGORY]
        methods = {
            "naive": _bookings_in(history, *previous_period(current[period.grain]), day),
            "crm_weighted_pipeline": pd.concat([booked_so_far, weighted]),
            "commit_rollup": pd.concat([booked_so_far, commit]),
        }
        earlier_start, earlier_end = year_earlier(period)
        if earlier_start >= history.data_start:
            methods["seasonal_naive"] = _bookings_in(history, earlier_start, earlier_end, day)
        for method, rows in methods.items():
            items.append(rows[["rep_id", "team_id", "territory_id", "amount"]].assign(method=method, **key))
            defined.append({"method": method, **key})
    keys = ["period_grain", "horizon", "method"]
    summed = roll_up(pd.concat(items, ignore_index=True), keys, "amount")
    company = pd.DataFrame(defined).assign(level=COMPANY, group_id=COMPANY, amount=0.0)
    summed = pd.concat([summed, company], ignore_index=True).groupby([*keys, "level", "group_id"], as_index=False)
    return _with_period_bounds(summed["amount"].sum().rename(columns={"amount": "forecast"}), horizon)


def actual_bookings(history: History, forecast_date: dt.date, as_of: dt.date) -> pd.DataFrame:
    """Bookings known at `as_of` in each period of the forecast made at `forecast_date`, per level and group, for
    the periods complete by then (period_end <= as_of)."""
    horizon = horizon_at(forecast_date, history.fiscal_year_start_month)
    items = []
    for period in horizon.periods:
        if period.end > as_of:
            continue
        rows = _bookings_in(history, period.start, period.end, day_number(as_of))
        items.append(rows.assign(period_grain=period.grain, horizon=period.horizon))
    if not items:
        return pd.DataFrame(columns=["period_grain", "horizon", "level", "group_id", "actual"])
    summed = roll_up(pd.concat(items, ignore_index=True), ["period_grain", "horizon"], "amount")
    return _with_period_bounds(summed.rename(columns={"amount": "actual"}), horizon)


def _with_period_bounds(frame: pd.DataFrame, horizon: Horizon) -> pd.DataFrame:
    bounds = pd.DataFrame(
        [(p.grain, p.horizon, p.start, p.end) for p in horizon.periods],
        columns=["period_grain", "horizon", "period_start", "period_end"],
    )
    return frame.merge(bounds, on=["period_grain", "horizon"], how="left")


# ---------------------------------------------------------------- the stage


@dataclass
class ForecastStageResult:
    as_of: dt.date
    model_version: str
    forecast_dates: list[dt.date]  # forecast by this run
    skipped_dates: list[dt.date]  # snapshot days in the window without win scores
    forecast_rows: int
    backtest_rows: int
    company_quarter_backtest: pd.DataFrame  # per method and horizon, over every origin (ml.backtest.summarize)
    coverage_80: float | None  # share of (origin, period, level, group) actuals inside [p10, p90]
    coverage_80_by_level: dict[str, float | None]
    fan_chart_png: bytes
    seconds: float


def run_forecast_stage(
    con: duckdb.DuckDBPyConnection, as_of: dt.date, backfill_months: int = 12, log: Callable[[str], None] = print
) -> ForecastStageResult:
    """Forecast every scoring day of the last `backfill_months` not yet forecast by `MODEL_VERSION`, then rebuild
    the backtest.

    The forecast days are the snapshot days of the features mart in the window; a day without rows in
    ml.win_probability is skipped and named. Each day's rows are appended in one transaction: a run that stops
    part-way resumes where it stopped, and a second run with nothing new appends nothing.
    """
    started = time.perf_counter()
    ensure_tables(con, [FORECAST_TABLE, BACKTEST_TABLE])
    history = load_history(con, as_of)
    window_start = _months_before(as_of, backfill_months)
    candidates = sorted(
        from_day_number(d)
        for d in history.snapshots["snapshot_day"].unique()
        if window_start < from_day_number(d) <= as_of
    )
    scored = {from_day_number(d) for d in history.scores["scored_day"].unique()}
    done = {
        row[0]
        for row in con.execute(
            f"select distinct forecast_date from {FORECAST_TABLE} where model_version = ?", [MODEL_VERSION]
        ).fetchall()
    }
    skipped = [day for day in candidates if day not in scored and day not in done]
    if skipped:
        log(f"revenue forecast: {len(skipped)} days without win scores skipped: {', '.join(map(str, skipped))}")
    todo = [day for day in candidates if day in scored and day not in done]
    written = 0
    for day in todo:
        forecast = forecast_at(history, day)
        if forecast.unscored_deals:
            log(f"revenue forecast: {day}: {forecast.unscored_deals} of {forecast.open_deals} open deals unscored")
        con.begin()
        try:
            written += append(con, FORECAST_TABLE, forecast.rows)
            con.commit()
        except Exception:
            con.rollback()
            raise
    if todo:
        log(f"revenue forecast: {written} rows for {len(todo)} days from {todo[0]} to {todo[-1]}")
    evaluation = _rebuild_backtest(con, history, as_of, backfill_months)
    company_quarter = backtest.summarize(evaluation, "fiscal_quarter", COMPANY)
    coverage = backtest.coverage(evaluation)
    png = _company_quarter_fan(con, history, as_of)
    seconds = time.perf_counter() - started
    log(f"revenue forecast: backtest of {evaluation['origin_date'].nunique() if len(evaluation) else 0} origins, "
        f"80% interval coverage {coverage.get('all')}, {seconds:.1f}s")  # fmt: skip
    return ForecastStageResult(
        as_of=as_of,
        model_version=MODEL_VERSION,
        forecast_dates=todo,
        skipped_dates=skipped,
        forecast_rows=written,
        backtest_rows=len(evaluation),
        company_quarter_backtest=company_quarter,
        coverage_80=coverage.get("all"),
        coverage_80_by_level={level: coverage.get(level) for level in LEVELS},
        fan_chart_png=png,
        seconds=seconds,
    )


def _months_before(day: dt.date, months: int) -> dt.date:
    ordinal = day.year * 12 + day.month - 1 - months
    year, month = divmod(ordinal, 12)
    last = (dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month + 1, min(day.day, last))


def stored_forecasts(con: duckdb.DuckDBPyConnection, dates: list[dt.date]) -> pd.DataFrame:
    """The rows of ml.revenue_forecast of this model version at `dates`."""
    if not dates:
        return pd.DataFrame()
    frame = con.execute(
        f"""
        select forecast_date, period_grain, period_start, period_end, level, group_id, currency,
            cast(booked_to_date as double) as booked_to_date,
            cast(open_pipeline_expected as double) as open_pipeline_expected,
            cast(new_pipeline_expected as double) as new_pipeline_expected,
            cast(p10 as double) as p10, cast(p50 as double) as p50, cast(p90 as double) as p90
        from {FORECAST_TABLE}
        where model_version = ? and list_contains(?, forecast_date)
        """,
        [MODEL_VERSION, dates],
    ).df()
    for column in ("forecast_date", "period_start", "period_end"):
        frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


def _rebuild_backtest(con: duckdb.DuckDBPyConnection, history: History, as_of: dt.date, months: int) -> pd.DataFrame:
    """Score the stored forecasts of the first forecast date of each of the last `months` months, and the
    baselines at the same dates, against the bookings known at `as_of`; replace ml.forecast_backtest."""
    dates = [
        row[0]
        for row in con.execute(
            f"select distinct forecast_date from {FORECAST_TABLE} where model_version = ? and forecast_date <= ?",
            [MODEL_VERSION, as_of],
        ).fetchall()
    ]
    origins = backtest.monthly_origins(dates, as_of, months)
    stored = stored_forecasts(con, origins)
    scored = []
    for origin in origins:
        actual = actual_bookings(history, origin, as_of)
        if actual.empty:
            continue
        horizon = horizon_at(origin, history.fiscal_year_start_month)
        model = stored[stored["forecast_date"] == origin].rename(columns={"p50": "forecast"})
        model = model.merge(
            pd.DataFrame([(p.grain, p.start, p.horizon) for p in horizon.periods],
                         columns=["period_grain", "period_start", "horizon"]),
            on=["period_grain", "period_start"],
        ).assign(method="model")  # fmt: skip
        forecasts = pd.concat([model, baseline_forecasts(history, origin)], ignore_index=True)
        scored.append(backtest.score(forecasts, actual).assign(origin_date=origin))
    evaluation = pd.concat(scored, ignore_index=True) if scored else backtest.empty_scores()
    evaluation = evaluation.assign(evaluated_as_of=as_of, model_version=MODEL_VERSION)
    con.begin()
    try:
        con.execute(f"delete from {BACKTEST_TABLE}")
        append(con, BACKTEST_TABLE, evaluation)
        con.commit()
    except Exception:
        con.rollback()
        raise
    return evaluation


def _company_quarter_fan(con: duckdb.DuckDBPyConnection, history: History, as_of: dt.date) -> bytes:
    """The fan chart of the latest company fiscal-quarter forecast, after the bookings of the quarters before."""
    latest = con.execute(
        f"select max(forecast_date) from {FORECAST_TABLE} where model_version = ? and forecast_date <= ?",
        [MODEL_VERSION, as_of],
    ).fetchone()[0]
    if latest is None:
        return b""
    forecast = stored_forecasts(con, [latest])
    forecast = forecast[(forecast["period_grain"] == "fiscal_quarter") & (forecast["level"] == COMPANY)]
    bookings = history.bookings[history.bookings["booking_day"] < day_number(forecast["period_start"].min())]
    first_month = fiscal_quarter_start_month(month_ordinal(bookings["booking_day"].to_numpy()),
                                             history.fiscal_year_start_month)  # fmt: skip
    past = pd.DataFrame({"period_start": month_start_day(first_month), "amount": bookings["amount"].to_numpy()})
    past = past.groupby("period_start", as_index=False)["amount"].sum()
    past["period_start"] = past["period_start"].map(from_day_number)
    labels = dict(
        con.execute(
            "select distinct fiscal_quarter_start_date, fiscal_quarter_label from marts.dim_date "
            "where fiscal_quarter_start_date <= ?",
            [forecast["period_start"].max()],
        ).fetchall()
    )

    def labelled(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(label=[labels.get(day, str(day)) for day in frame["period_start"]])

    return fan_chart_png(
        labelled(past),
        labelled(forecast.sort_values("period_start")),
        title=f"Bookings by fiscal quarter, forecast at {latest}",
        currency=history.currency,
    )
