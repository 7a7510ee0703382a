"""The revenue forecast (ml/forecast.py) and its backtest (ml/backtest.py) on small synthetic worlds: levels add up,
intervals are ordered, nothing after the forecast date leaks in, the stage appends idempotently, and the baselines
and scores match examples worked by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml import backtest
from ml.forecast import (
    COMPANY,
    FORECAST_TABLE,
    History,
    alias_draws,
    alias_table,
    baseline_forecasts,
    day_number,
    forecast_at,
    horizon_at,
    run_forecast_stage,
)
from ml.tables import ensure_tables

FORECAST_DATE = dt.date(2025, 6, 15)  # a Sunday, mid-month and mid-quarter (fiscal quarters start in February)
FIRST_DAY = dt.date(2024, 1, 1)
LAST_DAY = dt.date(2025, 8, 31)
REPS = (("rep-1", "team-1", "north"), ("rep-2", "team-1", "south"), ("rep-3", "team-2", "north"))
PARTS = ("booked_to_date", "open_pipeline_expected", "new_pipeline_expected")
DRAWS = 300


def sundays(first: int, last: int) -> range:
    """Day numbers of the Sundays from `first` to `last` (1970-01-01 was a Thursday)."""
    return range(first + (6 - (first + 3) % 7) % 7, last + 1, 7)


def synthetic_world(seed: int = 3) -> dict[str, pd.DataFrame]:
    """Deals created every day, won or lost after 1-14 weeks, with a snapshot each Sunday while open and a win
    score at each Sunday snapshot of the last year."""
    rng = np.random.default_rng(seed)
    first, last = day_number(FIRST_DAY), day_number(LAST_DAY)
    deals, bookings, snapshots = [], [], []
    for number in range(900):
        rep, team, territory = REPS[number % 3]
        deal = f"deal-{number}"
        created = int(rng.integers(first, last))
        cycle = int(rng.integers(7, 100))
        planned = created + cycle + int(rng.integers(-10, 10))
        amount = float(np.round(rng.lognormal(9.0, 0.8), 2))
        deals.append((deal, created))
        if rng.random() < 0.45 and created + cycle <= last:
            bookings.append((deal, rep, team, territory, created + cycle, created, amount))
        for day in sundays(created, min(created + cycle - 1, last)):
            stage = min(4, 1 + 4 * (day - created) // cycle)
            category = {4: "Commit", 3: "Best Case"}.get(stage, "Pipeline")
            snapshots.append((deal, day, rep, team, territory, stage, amount, planned, planned - day, category,
                              (10.0, 20.0, 50.0, 80.0)[stage - 1], True))  # fmt: skip
    snapshots = pd.DataFrame(snapshots, columns=[
        "opportunity_id", "snapshot_day", "rep_id", "team_id", "territory_id", "stage_order", "amount",
        "expected_close_day", "days_to_expected_close", "forecast_category", "crm_probability",
        "is_pipeline_eligible",
    ])  # fmt: skip
    scored = snapshots[snapshots["snapshot_day"] > last - 400]
    return {
        "deals": pd.DataFrame(deals, columns=["opportunity_id", "created_day"]),
        "bookings": pd.DataFrame(
            bookings,
            columns=[
                "opportunity_id",
                "rep_id",
                "team_id",
                "territory_id",
                "booking_day",
                "created_day",
                "amount",
            ],
        ),  # fmt: skip
        "snapshots": snapshots,
        "scores": pd.DataFrame(
            {
                "opportunity_id": scored["opportunity_id"],
                "scored_day": scored["snapshot_day"],
                "p_win": 0.15 + 0.17 * scored["stage_order"],
            }
        ),  # fmt: skip
        "reps": pd.DataFrame(
            [(rep, team, territory, 0, 10**6, True) for rep, team, territory in REPS],
            columns=[
                "rep_id",
                "team_id",
                "territory_id",
                "valid_from_day",
                "valid_to_day",
                "is_active",
            ],
        ),  # fmt: skip
    }


def history_of(world: dict[str, pd.DataFrame]) -> History:
    return History(
        bookings=world["bookings"],
        snapshots=world["snapshots"],
        scores=world["scores"],
        reps=world["reps"],
        fiscal_year_start_month=2,
        data_start=FIRST_DAY,
        currency="EUR",
    )


@pytest.fixture(scope="module")
def world() -> dict[str, pd.DataFrame]:
    return synthetic_world()


@pytest.fixture(scope="module")
def forecast(world: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return forecast_at(history_of(world), FORECAST_DATE, draws=DRAWS).rows


def test_the_rep_team_and_territory_rows_of_each_part_add_up_to_the_company_row(forecast: pd.DataFrame) -> None:
    for _, period in forecast.groupby(["period_grain", "period_start"]):
        company = period[period["level"] == COMPANY]
        assert len(company) == 1
        for level in ("team", "territory", "rep"):
            rows = period[period["level"] == level]
            for part in PARTS:
                assert rows[part].sum() == pytest.approx(company[part].item(), rel=1e-12, abs=1e-6), (level, part)
    current = forecast[(forecast["level"] == COMPANY) & (forecast["period_start"] == dt.date(2025, 5, 1))]
    assert (current[list(PARTS)].to_numpy() > 0).all(), "each part of the current quarter has something in it"


def test_p10_p50_p90_are_ordered_and_never_below_what_is_already_booked(forecast: pd.DataFrame) -> None:
    assert (forecast["p10"] <= forecast["p50"]).all() and (forecast["p50"] <= forecast["p90"]).all()
    assert (forecast["p10"] >= forecast["booked_to_date"] - 1e-6).all()
    assert (forecast.loc[forecast["level"] == COMPANY, "p90"] > forecast.loc[forecast["level"] == COMPANY, "p10"]).all()


def test_booked_to_date_counts_the_bookings_of_the_period_up_to_the_forecast_date_only(
    world: dict[str, pd.DataFrame], forecast: pd.DataFrame
) -> None:
    bookings = world["bookings"]
    company = forecast[forecast["level"] == COMPANY].set_index(["period_grain", "period_start"])["booked_to_date"]
    day = day_number(FORECAST_DATE)

    def booked_between(first: dt.date, last: int) -> float:
        days = bookings["booking_day"]
        return float(bookings.loc[days.between(day_number(first), last), "amount"].sum())

    assert company[("month", dt.date(2025, 6, 1))] == pytest.approx(booked_between(dt.date(2025, 6, 1), day))
    assert company[("fiscal_quarter", dt.date(2025, 5, 1))] == pytest.approx(booked_between(dt.date(2025, 5, 1), day))
    assert (
        booked_between(dt.date(2025, 6, 1), day_number(dt.date(2025, 6, 30))) > company[("month", dt.date(2025, 6, 1))]
    )
    later = [("month", dt.date(2025, 7, 1)), ("month", dt.date(2025, 8, 1)), ("fiscal_quarter", dt.date(2025, 8, 1))]
    assert [company[key] for key in later] == [0.0, 0.0, 0.0]


def test_no_booking_snapshot_or_score_after_the_forecast_date_changes_a_forecast_made_at_it(
    world: dict[str, pd.DataFrame], forecast: pd.DataFrame
) -> None:
    day = day_number(FORECAST_DATE)
    changed = dict(world)
    bookings = world["bookings"].copy()
    after = bookings["booking_day"] > day
    bookings.loc[after, "amount"] *= 10
    bookings.loc[after, "booking_day"] += 3  # the deals open at the forecast date win later than they did
    extra = bookings[after].head(20).assign(opportunity_id=lambda frame: frame["opportunity_id"] + "-again")
    changed["bookings"] = pd.concat([bookings, extra], ignore_index=True)
    changed["snapshots"] = world["snapshots"][world["snapshots"]["snapshot_day"] <= day]
    changed["scores"] = world["scores"].assign(
        p_win=np.where(world["scores"]["scored_day"] > day, 0.99, world["scores"]["p_win"])
    )
    pd.testing.assert_frame_equal(forecast_at(history_of(changed), FORECAST_DATE, draws=DRAWS).rows, forecast)


def test_the_same_forecast_date_gives_the_same_numbers(world: dict[str, pd.DataFrame], forecast: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(forecast_at(history_of(world), FORECAST_DATE, draws=DRAWS).rows, forecast)


def test_the_periods_of_a_forecast_date_follow_the_fiscal_year() -> None:
    periods = horizon_at(dt.date(2025, 12, 30), fiscal_year_start_month=2).periods
    assert [(p.grain, p.horizon, p.start, p.end) for p in periods] == [
        ("month", 0, dt.date(2025, 12, 1), dt.date(2025, 12, 31)),
        ("month", 1, dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
        ("month", 2, dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        ("fiscal_quarter", 0, dt.date(2025, 11, 1), dt.date(2026, 1, 31)),
        ("fiscal_quarter", 1, dt.date(2026, 2, 1), dt.date(2026, 4, 30)),
        ("fiscal_quarter", 2, dt.date(2026, 5, 1), dt.date(2026, 7, 31)),
    ]


def three_deal_history() -> History:
    """Five bookings and three deals open on 2025-06-15, for the baselines worked by hand."""
    bookings = [
        ("won-1", "rep-1", "team-1", "north", dt.date(2025, 5, 20), 1000.0),  # this quarter, last month
        ("won-2", "rep-2", "team-1", "south", dt.date(2025, 6, 3), 500.0),  # this month, before the forecast date
        ("won-3", "rep-3", "team-2", "north", dt.date(2025, 4, 10), 700.0),  # the quarter before
        ("won-4", "rep-1", "team-1", "north", dt.date(2024, 6, 10), 300.0),  # the month a year before
        ("won-5", "rep-3", "team-2", "north", dt.date(2024, 5, 5), 200.0),  # the quarter a year before
        ("won-6", "rep-3", "team-2", "north", dt.date(2025, 6, 20), 9000.0),  # after the forecast date
    ]  # fmt: skip
    open_deals = [
        ("open-1", "rep-1", "team-1", "north", 10000.0, dt.date(2025, 6, 25), "Commit", 80.0),
        ("open-2", "rep-2", "team-1", "south", 4000.0, dt.date(2025, 7, 10), "Best Case", 50.0),
        ("open-3", "rep-3", "team-2", "north", 2000.0, dt.date(2025, 6, 20), "Pipeline", 20.0),
    ]  # fmt: skip
    day = day_number(FORECAST_DATE)
    return History(
        bookings=pd.DataFrame(
            [
                (deal, rep, team, territory, day_number(on), day_number(on) - 30, amount)
                for deal, rep, team, territory, on, amount in bookings
            ],
            columns=["opportunity_id", "rep_id", "team_id", "territory_id", "booking_day", "created_day", "amount"],
        ),  # fmt: skip
        snapshots=pd.DataFrame(
            [
                (
                    deal,
                    day,
                    rep,
                    team,
                    territory,
                    3,
                    amount,
                    day_number(close),
                    day_number(close) - day,
                    category,
                    probability,
                    True,
                )
                for deal, rep, team, territory, amount, close, category, probability in open_deals
            ],
            columns=[
                "opportunity_id",
                "snapshot_day",
                "rep_id",
                "team_id",
                "territory_id",
                "stage_order",
                "amount",
                "expected_close_day",
                "days_to_expected_close",
                "forecast_category",
                "crm_probability",
                "is_pipeline_eligible",
            ],
        ),  # fmt: skip
        scores=pd.DataFrame(columns=["opportunity_id", "scored_day", "p_win"]),
        reps=pd.DataFrame(columns=["rep_id", "team_id", "territory_id", "valid_from_day", "valid_to_day", "is_active"]),
        fiscal_year_start_month=2,
        data_start=dt.date(2024, 1, 1),
        currency="EUR",
    )


def test_the_baselines_match_a_three_deal_example_worked_by_hand() -> None:
    baselines = baseline_forecasts(three_deal_history(), FORECAST_DATE)
    found = baselines.set_index(["method", "period_grain", "horizon", "level", "group_id"])["forecast"]
    june, july, quarter = ("month", 0), ("month", 1), ("fiscal_quarter", 0)
    assert found[("crm_weighted_pipeline", *june, COMPANY, COMPANY)] == pytest.approx(500 + 10000 * 0.8 + 2000 * 0.2)
    assert found[("crm_weighted_pipeline", *july, COMPANY, COMPANY)] == pytest.approx(4000 * 0.5)
    assert found[("crm_weighted_pipeline", *quarter, COMPANY, COMPANY)] == pytest.approx(1500 + 8000 + 2000 + 400)
    assert found[("crm_weighted_pipeline", *june, "team", "team-1")] == pytest.approx(500 + 8000)
    assert found[("commit_rollup", *june, COMPANY, COMPANY)] == pytest.approx(500 + 10000)
    assert found[("commit_rollup", *july, COMPANY, COMPANY)] == 0
    assert found[("commit_rollup", *quarter, COMPANY, COMPANY)] == pytest.approx(1500 + 10000)
    assert found[("naive", *june, COMPANY, COMPANY)] == found[("naive", *july, COMPANY, COMPANY)] == 1000
    assert found[("naive", *quarter, COMPANY, COMPANY)] == 700
    assert found[("seasonal_naive", *june, COMPANY, COMPANY)] == 300
    assert found[("seasonal_naive", *quarter, COMPANY, COMPANY)] == 500


def test_wape_bias_and_coverage_match_an_example_worked_by_hand() -> None:
    period = {"period_grain": "fiscal_quarter", "horizon": 0, "period_start": dt.date(2025, 5, 1),
              "period_end": dt.date(2025, 7, 31)}  # fmt: skip
    forecasts = pd.DataFrame([
        {**period, "method": "model", "level": "company", "group_id": COMPANY, "forecast": 100.0, "p10": 80.0,
         "p90": 120.0},
        {**period, "method": "model", "level": "rep", "group_id": "a", "forecast": 60.0, "p10": 50.0, "p90": 65.0},
        {**period, "method": "model", "level": "rep", "group_id": "b", "forecast": 40.0, "p10": 20.0, "p90": 45.0},
        {**period, "method": "naive", "level": "company", "group_id": COMPANY, "forecast": 90.0},
        {**period, "method": "naive", "level": "rep", "group_id": "a", "forecast": 90.0},
    ])  # fmt: skip
    actuals = pd.DataFrame([
        {**period, "level": "company", "group_id": COMPANY, "actual": 110.0},
        {**period, "level": "rep", "group_id": "a", "actual": 70.0},
        {**period, "level": "rep", "group_id": "b", "actual": 40.0},
    ])  # fmt: skip
    scores = backtest.score(forecasts, actuals).set_index(["level", "method"])
    model, naive = scores.loc[("rep", "model")], scores.loc[("rep", "naive")]
    assert (model["n"], model["wape"], model["bias"], model["coverage_80"]) == pytest.approx(
        (2, 10 / 110, -10 / 110, 0.5)
    )
    assert (naive["n"], naive["wape"], naive["bias"]) == pytest.approx((2, 60 / 110, -20 / 110))
    assert pd.isna(naive["coverage_80"])
    assert scores.loc[("company", "model"), "coverage_80"] == 1.0


def test_the_origins_are_the_first_forecast_date_of_each_of_the_last_months() -> None:
    dates = [dt.date(2025, 1, 5), dt.date(2025, 1, 12), dt.date(2025, 2, 2), dt.date(2025, 3, 9), dt.date(2025, 3, 30)]
    assert backtest.monthly_origins(dates, as_of=dt.date(2025, 3, 30), months=2) == [
        dt.date(2025, 2, 2),
        dt.date(2025, 3, 9),
    ]


def test_alias_draws_follow_their_weights_and_never_pick_a_zero_weight() -> None:
    weights = np.array([1.0, 0.0, 3.0, 6.0])
    picked = alias_draws(np.random.default_rng(0), *alias_table(weights), 200_000)
    assert np.bincount(picked, minlength=4) / len(picked) == pytest.approx(weights / weights.sum(), abs=0.005)
    assert not (picked == 1).any()


# ---------------------------------------------------------------- the stage on a warehouse file


def write_warehouse(path: Path, world: dict[str, pd.DataFrame], unscored: list[int] = ()) -> None:
    """The marts the stage reads, from a synthetic world; win scores left out on the `unscored` days."""
    epoch = "date '1970-01-01'"
    with duckdb.connect(str(path)) as con:
        for name, frame in world.items():
            con.register(name, frame)
        con.execute("create schema marts")
        con.execute(f"""
            create table marts.fct_bookings as
            select opportunity_id, rep_id, team_id, territory_id,
                {epoch} + cast(booking_day as integer) as booking_date,
                cast(amount as decimal(18, 2)) as amount_reporting, 'EUR' as reporting_currency
            from bookings""")  # fmt: skip
        con.execute(f"""
            create table marts.fct_opportunity as
            select opportunity_id, {epoch} + cast(created_day as integer) as created_date, 'EUR' as reporting_currency
            from deals""")  # fmt: skip
        con.execute(f"""
            create table marts.ml_opportunity_features as
            select opportunity_id, {epoch} + cast(snapshot_day as integer) as snapshot_date, rep_id as owner_id,
                team_id, territory_id, stage_order, cast(amount as decimal(18, 2)) as amount_reporting,
                {epoch} + cast(expected_close_day as integer) as expected_close_date, days_to_expected_close,
                forecast_category, crm_probability, is_pipeline_eligible
            from snapshots""")  # fmt: skip
        con.execute("""
            create table marts.dim_rep as
            select rep_id, team_id, territory_id, timestamptz '2020-01-01 00:00:00+00' as valid_from_at,
                cast(null as timestamptz) as valid_to_at, is_active
            from reps""")  # fmt: skip
        con.execute("""
            create table marts.dim_date as
            with days as (
                select cast(day as date) as date_day, (month(day) + 10) % 12 + 1 as fiscal_month
                from range(date '2023-01-01', date '2027-01-01', interval 1 day) as days(day)
            ),
            quarters as (
                select *, cast(date_trunc('month', date_day) - to_months((fiscal_month - 1) % 3) as date) as starts
                from days
            )
            select date_day, month(date_day) as calendar_month, fiscal_month, starts as fiscal_quarter_start_date,
                strftime(starts, 'Q%Y-%m') as fiscal_quarter_label
            from quarters""")  # fmt: skip
        ensure_tables(con, ["ml.win_probability"])
        con.execute(f"""
            insert into ml.win_probability
            select opportunity_id, {epoch} + cast(scored_day as integer), p_win, 'test', 'test', date '2024-01-01',
                '[]', '[]'
            from scores where not list_contains(?, scored_day)""", [list(unscored)])  # fmt: skip


def forecast_dates(con: duckdb.DuckDBPyConnection) -> dict[dt.date, int]:
    return dict(con.execute(f"select forecast_date, count(*) from {FORECAST_TABLE} group by 1 order by 1").fetchall())


def test_a_second_run_appends_nothing_and_a_later_run_appends_only_the_new_scoring_day(
    tmp_path: Path, world: dict[str, pd.DataFrame]
) -> None:
    write_warehouse(tmp_path / "warehouse.duckdb", world)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        first = run_forecast_stage(con, FORECAST_DATE, backfill_months=3, log=lambda message: None)
        written = forecast_dates(con)
        assert first.forecast_dates == list(written) and len(written) == 14  # the Sundays of 2025-03-16..06-15
        assert first.forecast_rows == sum(written.values())
        assert first.fan_chart_png.startswith(b"\x89PNG")
        # the origin 2025-04-06 saw its fiscal quarter (February to April) end
        assert set(first.company_quarter_backtest["method"]) == set(backtest.METHODS)

        again = run_forecast_stage(con, FORECAST_DATE, backfill_months=3, log=lambda message: None)
        assert (again.forecast_dates, again.forecast_rows, forecast_dates(con)) == ([], 0, written)

        next_week = FORECAST_DATE + dt.timedelta(days=7)
        later = run_forecast_stage(con, next_week, backfill_months=3, log=lambda message: None)
        assert later.forecast_dates == [next_week]
        assert forecast_dates(con) == {**written, next_week: later.forecast_rows}


def test_a_scoring_day_without_win_scores_is_skipped_and_named(tmp_path: Path, world: dict[str, pd.DataFrame]) -> None:
    missing = dt.date(2025, 6, 8)
    write_warehouse(tmp_path / "warehouse.duckdb", world, unscored=[day_number(missing)])
    messages: list[str] = []
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        result = run_forecast_stage(con, FORECAST_DATE, backfill_months=1, log=messages.append)
        assert result.skipped_dates == [missing]
        assert missing not in forecast_dates(con) and FORECAST_DATE in forecast_dates(con)
    assert any("without win scores" in message and str(missing) in message for message in messages)


def test_a_deal_owned_before_its_reps_first_version_starts_counts_for_the_team_the_rep_joins() -> None:
    history = three_deal_history()
    history.snapshots.loc[history.snapshots["rep_id"] == "rep-3", ["team_id", "territory_id"]] = None
    joins = day_number(FORECAST_DATE) + 30
    history.reps = pd.DataFrame(
        [("rep-3", "team-2", "north", joins, 10**6, True)],
        columns=["rep_id", "team_id", "territory_id", "valid_from_day", "valid_to_day", "is_active"],
    )
    baselines = baseline_forecasts(history, FORECAST_DATE)
    june = baselines[(baselines["method"] == "crm_weighted_pipeline") & (baselines["period_grain"] == "month")]
    june = june[(june["horizon"] == 0) & (june["level"] == "team")].set_index("group_id")["forecast"]
    assert june.to_dict() == pytest.approx({"team-1": 500 + 8000, "team-2": 2000 * 0.2})
