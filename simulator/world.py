"""Run a world from its start to a date and write the drops that are new.

`generate` runs the world to the end of its history and writes weekly drops; `advance` re-runs the same world a
few days further (every month comes from its own random stream, see deals.py) and writes only the new daily drops.
With a future seed and a forecast date, the world is the same up to that date and another random future after it
(see future.py).
Intermediate results stream month by month to Parquet in a scratch folder; DuckDB then shapes and writes each drop,
so memory stays bounded by one month of activity rather than the whole world.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import gc
import json
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.config import WorldConfig, load_config
from simulator.customers import build_customers
from simulator.deals import FxRates, World, month_starts
from simulator.future import Future, month_frames, validate_future
from simulator.org import build_organisation
from simulator.phones import PhoneBook

STATE_FILE = "world.json"
STATE_VERSION = 1


@dataclass
class WorldState:
    preset: str
    seed: int
    faults: bool
    current_end: dt.date
    drops: list[dt.date] = field(default_factory=list)
    overrides: dict = field(default_factory=dict)
    future_seed: int | None = None
    forecast_date: dt.date | None = None

    @property
    def future(self) -> Future | None:
        return None if self.future_seed is None else Future(self.future_seed, self.forecast_date)

    def to_json(self) -> str:
        state = {
            "version": STATE_VERSION,
            "preset": self.preset,
            "seed": self.seed,
            "faults": self.faults,
            "current_end": self.current_end.isoformat(),
            "drops": [d.isoformat() for d in self.drops],
            "overrides": self.overrides,
        }
        if self.future_seed is not None:  # only then, so that a world without a future writes what it always did
            state |= {"future_seed": self.future_seed, "forecast_date": self.forecast_date.isoformat()}
        return json.dumps(state, indent=2, default=str)  # default: dates

    @classmethod
    def read(cls, out_dir: Path) -> WorldState:
        path = out_dir / "truth" / STATE_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `python -m simulator generate --out {out_dir}` first")
        data = json.loads(path.read_text())
        return cls(
            preset=data["preset"],
            seed=data["seed"],
            faults=data["faults"],
            current_end=dt.date.fromisoformat(data["current_end"]),
            drops=[dt.date.fromisoformat(d) for d in data["drops"]],
            overrides={
                name: dt.date.fromisoformat(value) if name == "start_date" else value
                for name, value in data.get("overrides", {}).items()
            },
            future_seed=data.get("future_seed"),
            forecast_date=dt.date.fromisoformat(data["forecast_date"]) if "forecast_date" in data else None,
        )


def build_world(cfg: WorldConfig, seed: int, future: Future | None = None) -> World:
    org = build_organisation(cfg, np.random.default_rng([seed, 1]))
    phones = PhoneBook(seed)
    rep_e164, _ = phones.draw(org.users.country.to_numpy(), np.random.default_rng([seed, 2]), kind="fixed")
    customers = build_customers(cfg, org, phones, np.random.default_rng([seed, 4]))
    fx = FxRates(seed, cfg.start_date - dt.timedelta(days=400))
    return World(
        cfg=cfg, seed=seed, org=org, customers=customers, phones=phones, rep_phone_e164=rep_e164, fx=fx, future=future,
        future_phones=phones.upper_half() if future else None,
    )  # fmt: skip


def weekly_drops(cfg: WorldConfig, end: dt.date) -> list[dt.date]:
    """Drop dates ending exactly at `end`, every `drop_interval_days` back to the world's start."""
    drops = []
    day = end
    while day >= cfg.start_date:
        drops.append(day)
        day -= dt.timedelta(days=cfg.drop_interval_days)
    return sorted(drops)


class Progress:
    """Prints what the simulator is doing, the time since it started and the peak memory so far."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"[{time.perf_counter() - self.t0:7.1f}s, peak {peak_mb:6,.0f} MB] {message}", flush=True)


def simulate(
    cfg: WorldConfig, seed: int, until: dt.date, scratch: Path, progress: Progress, future: Future | None = None
) -> World:
    """Run every month up to the one containing `until` and stream its frames to `scratch/<table>/<month>.parquet`."""
    world = build_world(cfg, seed, future)
    progress(
        f"organisation: {len(world.org.seats):,} seats in {len(world.org.territories):,} territories; "
        f"customers: {len(world.customers.accounts):,} accounts, {len(world.customers.contacts):,} contacts"
    )
    months = month_starts(cfg, until)
    for index, first in enumerate(months):
        frames = month_frames(world, index, first)
        for name, frame in frames.items():
            folder = scratch / name
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{index:04d}.parquet")
        del frames
        release_memory()  # a month's frames are gone: keep the high-water mark at one month, not several
        if index % 6 == 5 or index == len(months) - 1:
            progress(f"simulated {index + 1}/{len(months)} months")
    return world


def release_memory() -> None:
    """Return freed heap to the operating system, so that DuckDB's budget comes on top of what is really in use."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def connect_scratch(scratch: Path, memory_limit: str = "1500MB") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"set memory_limit='{memory_limit}'")
    con.execute(f"set temp_directory='{scratch / 'spill'}'")
    con.execute("set preserve_insertion_order=true")
    con.execute("set TimeZone='UTC'")
    for folder in sorted(p for p in scratch.iterdir() if p.is_dir() and p.name != "spill"):
        con.execute(
            f"create view {folder.name} as select * from read_parquet('{folder}/*.parquet', union_by_name=true)"
        )
    return con


def run(out_dir: Path, state: WorldState, new_drops: list[dt.date], progress: Progress) -> dict:
    """Simulate to `state.current_end` and write the drops in `new_drops` (plus truth)."""
    from simulator.export import write_world  # export imports this module, so not at the top

    cfg = load_config(state.preset, **state.overrides)
    scratch = out_dir / ".simulator"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        world = simulate(cfg, state.seed, state.current_end, scratch, progress, state.future)
        release_memory()
        con = connect_scratch(scratch)
        summary = write_world(con, world, state, new_drops, out_dir, progress)
        con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    (out_dir / "truth" / STATE_FILE).write_text(state.to_json() + "\n")
    return summary


def generate(
    preset: str,
    seed: int,
    out_dir: Path,
    faults: bool = False,
    progress: Progress | None = None,
    future_seed: int | None = None,
    forecast_date: dt.date | None = None,
    **overrides: object,
) -> dict:
    progress = progress or Progress()
    cfg = load_config(preset, **overrides)
    validate_future(future_seed, forecast_date, cfg.start_date, cfg.end_date, faults)
    if (out_dir / "landing").exists() and any((out_dir / "landing").iterdir()):
        raise FileExistsError(f"{out_dir / 'landing'} already holds files: generate into an empty folder")
    drops = weekly_drops(cfg, cfg.end_date)
    state = WorldState(preset, seed, faults, cfg.end_date, drops, dict(overrides), future_seed, forecast_date)
    progress(f"generating preset {preset!r} seed {seed} from {cfg.start_date} to {cfg.end_date}, {len(drops)} drops")
    if future_seed is not None:
        progress(f"the same world before {forecast_date}, then future seed {future_seed}")
    return run(out_dir, state, drops, progress)


def advance(out_dir: Path, days: int, progress: Progress | None = None) -> dict:
    progress = progress or Progress()
    if days < 1:
        raise ValueError("--days must be at least 1")
    state = WorldState.read(out_dir)
    new_drops = [state.current_end + dt.timedelta(days=k) for k in range(1, days + 1)]
    state.current_end = new_drops[-1]
    state.drops = state.drops + new_drops
    progress(f"advancing {out_dir} by {days} day(s) to {state.current_end}")
    return run(out_dir, state, new_drops, progress)


def drop_windows(all_drops: list[dt.date]) -> pd.DataFrame:
    """Each drop covers the days after the previous drop up to and including its own date (UTC)."""
    drops = sorted(all_drops)
    starts = [dt.date(1900, 1, 1)] + [d + dt.timedelta(days=1) for d in drops[:-1]]
    return pd.DataFrame(
        {
            "drop_date": pd.to_datetime(drops),
            "window_start": pd.to_datetime(starts),
            "window_end": pd.to_datetime(drops) + pd.Timedelta(days=1),  # exclusive
        }
    )
