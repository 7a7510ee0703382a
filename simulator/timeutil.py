"""Vectorized time helpers: business hours in each rep's own time zone, fiscal quarters."""

from __future__ import annotations

import numpy as np
import pandas as pd

SECOND = np.timedelta64(1, "s")
DAY = np.timedelta64(86400, "s")


def local_to_utc(local: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """Naive local wall-clock times in each row's IANA zone to naive UTC datetime64[s] (DST-aware)."""
    local = np.asarray(local, dtype="datetime64[s]")
    zones = np.asarray(zones, dtype=object)
    out = np.empty(len(local), dtype="datetime64[s]")
    for zone in pd.unique(zones):
        mask = zones == zone
        stamps = pd.DatetimeIndex(local[mask]).tz_localize(zone, nonexistent="shift_forward", ambiguous="NaT")
        utc = stamps.tz_convert("UTC").tz_localize(None)
        out[mask] = utc.to_numpy().astype("datetime64[s]")
    return out


def business_times(days: np.ndarray, zones: np.ndarray, rng: np.random.Generator, hours=(8.0, 18.0)) -> np.ndarray:
    """A working-hours instant on (or next to) each given day, local to each row's zone, returned in UTC.

    Weekend days move to the nearest weekday, as reps do not call customers on Sundays.
    """
    days = np.asarray(days, dtype="datetime64[D]")
    weekday = (days.astype(np.int64) + 3) % 7  # 0 = Monday
    days = days + np.where(weekday == 5, -1, np.where(weekday == 6, 1, 0)).astype("timedelta64[D]")
    seconds = rng.uniform(hours[0] * 3600, hours[1] * 3600, len(days)).astype(np.int64)
    local = days.astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    utc = local_to_utc(local, zones)
    return np.where(np.isnat(utc), local, utc)  # an ambiguous wall time (none in working hours) falls back to local


def fiscal_quarter_start(days: np.ndarray, fiscal_start_month: int) -> np.ndarray:
    """First day of the fiscal quarter containing each day."""
    months = np.asarray(days, dtype="datetime64[M]")
    month_number = months.astype(np.int64) % 12  # 0 = January
    offset = (month_number - (fiscal_start_month - 1)) % 3
    return (months - offset.astype("timedelta64[M]")).astype("datetime64[D]")
