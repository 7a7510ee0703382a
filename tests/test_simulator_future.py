"""Futures of a world (simulator/future.py): the same world before the forecast date, another random one after it,
and the outcomes the oracle (bench/oracle.py) reads without writing a world."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.oracle import Period, bookings
from simulator.__main__ import main as simulator_main
from simulator.config import load_config
from simulator.future import Future, FutureOutcomes
from simulator.world import Progress, build_world, generate

from .conftest import SEED

FORECAST_DATE = dt.date(2024, 4, 1)  # the tiny world runs from 2024-01-01 to 2024-05-29
FUTURE_SEED = 3


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def drops_before(world: Path, day: dt.date) -> dict[str, str]:
    """Digests of the landing files of every drop dated before `day` (each source has a folder per drop)."""
    landing = digest(world / "landing")
    return {path: value for path, value in landing.items() if Path(path).parts[1] < day.isoformat()}


def truth(world: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(world / "truth" / f"{name}.csv", dtype=str, keep_default_na=False)


def before(frame: pd.DataFrame, column: str, day: dt.date) -> pd.DataFrame:
    return frame[frame[column] < day.isoformat()].reset_index(drop=True)


@pytest.fixture(scope="module")
def future_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny_future")
    generate("tiny", SEED, out, progress=Progress(quiet=True), future_seed=FUTURE_SEED, forecast_date=FORECAST_DATE)
    return out


@pytest.fixture(scope="module")
def tiny_futures() -> FutureOutcomes:
    cfg = load_config("tiny")
    return FutureOutcomes(build_world(cfg, SEED), cfg.end_date)


# ---------------------------------------------------------------- the world without a future
# Digests of the tiny world's truth (seed 7) as the simulator wrote it before futures existed: adding futures must
# not move a world without one. A deliberate change to how the simulator draws deals updates them.
WORLD_TRUTH_DIGESTS = {
    "bookings.csv": "e94161a08b1dda2a57088f50abf2332335572a040048f4f531d2b3639749d18c",
    "opportunity_outcomes.csv": "4268ad2af765513d0bd83c7d82c4c171211d8620a6698ef95cf72b5b5685640f",
    "stage_entries.csv": "3c6e3c83c01ce3220a49fd3604851075d0336dd18758874ad41f86a1873a1515",
}


def test_a_world_without_a_future_seed_is_the_world_it_always_was(tiny_world: Path) -> None:
    written = {name: digest(tiny_world / "truth")[name] for name in WORLD_TRUTH_DIGESTS}
    assert written == WORLD_TRUTH_DIGESTS


def test_a_world_without_a_future_seed_writes_no_future_in_its_state(tiny_world: Path) -> None:
    state = json.loads((tiny_world / "truth" / "world.json").read_text())
    assert "future_seed" not in state and "forecast_date" not in state


# ---------------------------------------------------------------- before the forecast date: the world itself
def test_every_drop_before_the_forecast_date_is_byte_identical(tiny_world: Path, future_world: Path) -> None:
    ours = drops_before(future_world, FORECAST_DATE)
    assert len(ours) > 400  # calendar, CRM, phone and reference drops of three months
    assert ours == drops_before(tiny_world, FORECAST_DATE)


def test_bookings_stage_entries_and_closed_deals_before_the_forecast_date_are_the_worlds(
    tiny_world: Path, future_world: Path
) -> None:
    for name, column in (("bookings", "booking_date"), ("stage_entries", "entered_at")):
        pd.testing.assert_frame_equal(
            before(truth(future_world, name), column, FORECAST_DATE),
            before(truth(tiny_world, name), column, FORECAST_DATE),
        )
    pd.testing.assert_frame_equal(
        before(truth(future_world, "opportunity_outcomes"), "closed_at", FORECAST_DATE),
        before(truth(tiny_world, "opportunity_outcomes"), "closed_at", FORECAST_DATE),
    )


def test_deals_open_at_the_forecast_date_keep_their_past_and_close_after_it(
    tiny_world: Path, future_world: Path
) -> None:
    world = truth(tiny_world, "opportunity_outcomes").set_index("opportunity_id")
    day = FORECAST_DATE.isoformat()
    open_ids = world.index[(world.created_at < day) & (world.closed_at >= day)]
    assert len(open_ids) > 30
    ours = truth(future_world, "opportunity_outcomes").set_index("opportunity_id")
    assert set(open_ids) <= set(ours.index)
    assert (ours.loc[open_ids, "closed_at"] >= day).all()

    def past_stages(world: Path) -> pd.DataFrame:
        entries = truth(world, "stage_entries")
        entries = entries[entries.opportunity_id.isin(open_ids) & (entries.entered_at < day)]
        return entries.sort_values(["opportunity_id", "entered_at"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(past_stages(future_world), past_stages(tiny_world))


# ---------------------------------------------------------------- after it: another future
def test_the_future_after_the_forecast_date_is_another_one(tiny_world: Path, future_world: Path) -> None:
    world = truth(tiny_world, "opportunity_outcomes").set_index("opportunity_id")
    ours = truth(future_world, "opportunity_outcomes").set_index("opportunity_id")
    day = FORECAST_DATE.isoformat()
    open_ids = world.index[(world.created_at < day) & (world.closed_at >= day)]
    fields = ["outcome", "closed_at", "amount"]
    changed = (ours.loc[open_ids, fields] != world.loc[open_ids, fields]).any(axis=1)
    assert changed.mean() > 0.5  # a close date to the second is redrawn for nearly every open deal
    new_deals = set(ours.index[ours.created_at >= day]) - set(world.index)
    assert len(new_deals) > 50  # new business is drawn again
    ours_after = truth(future_world, "bookings").query("booking_date >= @day").reset_index(drop=True)
    assert not ours_after.equals(truth(tiny_world, "bookings").query("booking_date >= @day").reset_index(drop=True))


@pytest.mark.slow
def test_the_same_future_seed_writes_the_same_world(future_world: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate("tiny", SEED, again, progress=Progress(quiet=True), future_seed=FUTURE_SEED, forecast_date=FORECAST_DATE)
    assert digest(again / "landing") == digest(future_world / "landing")
    assert digest(again / "truth") == digest(future_world / "truth")


@pytest.mark.slow
def test_another_future_seed_draws_another_future(tiny_futures: FutureOutcomes) -> None:
    one = tiny_futures.of_future(Future(FUTURE_SEED, FORECAST_DATE))
    other = tiny_futures.of_future(Future(FUTURE_SEED + 1, FORECAST_DATE))
    assert not one.equals(other)
    since = np.datetime64(FORECAST_DATE, "s")
    assert (
        one[one.closed_at < since].reset_index(drop=True).equals(other[other.closed_at < since].reset_index(drop=True))
    )


@pytest.mark.slow
def test_the_crm_history_of_every_deal_ends_in_its_outcome(future_world: Path) -> None:
    """Drops after the forecast date mix the world's records and the future's: the CRM must still agree."""
    history = pd.concat(
        pd.read_csv(path, dtype=str, keep_default_na=False)
        for path in sorted((future_world / "landing" / "crm").glob("*/OpportunityHistory.csv"))
    )
    outcomes = truth(future_world, "opportunity_outcomes").set_index("opportunity_id")
    closed = outcomes[outcomes.is_closed_as_of_end == "true"]
    last = history.sort_values(["OpportunityId", "CreatedDate"]).groupby("OpportunityId").last()
    assert (last.loc[closed.index, "StageName"] == closed.outcome).all()
    history = history.join(outcomes.closed_at, on="OpportunityId")
    assert (history.CreatedDate <= history.closed_at).all()


# ---------------------------------------------------------------- the command line
@pytest.mark.slow
def test_the_future_seed_and_forecast_date_are_recorded(future_world: Path) -> None:
    state = json.loads((future_world / "truth" / "world.json").read_text())
    assert (state["future_seed"], state["forecast_date"]) == (FUTURE_SEED, FORECAST_DATE.isoformat())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--future-seed", "7"], "go together"),
        (["--forecast-date", "2024-04-01"], "go together"),
        (["--future-seed", "7", "--forecast-date", "2023-12-01"], "must be after 2024-01-01"),
        (["--future-seed", "7", "--forecast-date", "2024-06-01"], "no later than 2024-05-29"),
        (["--future-seed", "-1", "--forecast-date", "2024-04-01"], "non-negative"),
        (["--future-seed", "7", "--forecast-date", "2024-04-01", "--faults"], "cannot be combined"),
    ],
)
def test_a_future_needs_a_seed_and_a_date_inside_the_world(options, message, tmp_path: Path, capsys) -> None:
    argv = ["generate", "--preset", "tiny", "--out", str(tmp_path / "w"), "--quiet", *options]
    assert simulator_main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_a_forecast_date_must_be_a_date(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        simulator_main(["generate", "--preset", "tiny", "--out", str(tmp_path), "--future-seed", "1",
                        "--forecast-date", "April"])  # fmt: skip
    assert "YYYY-MM-DD" in capsys.readouterr().err


# ---------------------------------------------------------------- what the oracle reads
@pytest.mark.slow
def test_the_oracles_outcomes_are_what_generate_writes(tiny_futures: FutureOutcomes, future_world: Path) -> None:
    written = truth(future_world, "opportunity_outcomes").set_index("opportunity_id")
    end = np.datetime64(load_config("tiny").end_date + dt.timedelta(days=1), "s")
    deals = tiny_futures.of_future(Future(FUTURE_SEED, FORECAST_DATE))
    deals = deals[deals.created_at < end].set_index("opportunity_id")
    assert set(deals.index) == set(written.index)
    written = written.loc[deals.index]
    assert ((written.outcome == "Closed Won") == deals.is_won).all()
    assert np.allclose(written.amount.astype(float), deals.amount)
    assert (pd.to_datetime(written.closed_at).dt.tz_localize(None) == deals.closed_at).all()


def test_the_oracles_actual_bookings_are_the_worlds_truth(tiny_futures: FutureOutcomes, tiny_world: Path) -> None:
    periods = [Period("month", dt.date(2024, m, 1), dt.date(2024, m + 1, 1), 0) for m in range(1, 5)]
    periods.append(Period("fiscal_quarter", dt.date(2024, 2, 1), dt.date(2024, 5, 1), 0))
    ours = bookings(tiny_futures.of_world(), tiny_futures.world.fx, periods)
    daily = pd.read_csv(tiny_world / "truth" / "bookings.csv", parse_dates=["booking_date"])
    for period, value in zip(periods, ours, strict=True):
        inside = daily.booking_date.between(pd.Timestamp(period.start), pd.Timestamp(period.end), inclusive="left")
        # the truth rounds each day's sum, the warehouse (and the oracle) each deal's amount: cents apart
        assert value == pytest.approx(daily.bookings_amount[inside].sum(), abs=0.01 * inside.sum())
