"""Calendar exports: internal and customer meetings, written as per-mailbox iCalendar (RFC 5545) drops.

A calendar object is one UID: a master VEVENT plus any RECURRENCE-ID overrides. Objects change over time (a
meeting is rescheduled or cancelled, a skipped 1:1 becomes an EXDATE a few days ahead), so every object carries a
history of versions, and a drop re-exports, per mailbox, each object that changed in the drop's window in its state
as of the window end, as a CalDAV sync would. `occurrences` is the ground truth a correct reader must recover after
expanding the latest exported state with `recurring-ical-events`.

The writer never builds icalendar objects per event: with ~2 million meetings at bench scale it renders each
property as an Arrow string column (pandas' own string storage) and joins them row-wise, drop by drop; icalendar
only writes the VTIMEZONE of each zone. Measured on 2 CPUs: 2,500 mailboxes, 1.5 million customer meetings and 24
monthly drops take ~40 s and ~0.75 GB above the inputs (file creation on a slow disk adds ~0.7 ms per file).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import icalendar
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

PRODID = "-//Sales Warehouse Simulator//EN"
UID_DOMAIN = "calendar.sales-sim.example"
MAX_LINE_OCTETS = 75

UTC_SECONDS = "datetime64[s, UTC]"
OBJECT_COLUMNS: dict[str, str] = {
    "uid": "str",
    "kind": "str",  # customer | one_on_one | standup | all_day
    "organizer_user_id": "str",
    "summary": "str",
    "location": "str",  # "" writes no LOCATION
    "tzid": "str",  # IANA zone of DTSTART; "" means the organizer's zone (single events only)
    "use_utc": "bool",  # DTSTART/DTEND written as UTC "Z" values
    "is_all_day": "bool",  # DTSTART;VALUE=DATE, start_at is midnight UTC of the date
    "duration_minutes": "int64",  # all-day events: days * 1440 (DTEND is exclusive)
    "rrule_freq": "str",  # "" (single event), DAILY or WEEKLY; INTERVAL is always 1
    "rrule_byday": "str",  # "" or e.g. "MO,TU,WE,TH,FR"
    "rrule_until": UTC_SECONDS,
    "created_at": UTC_SECONDS,
}
VERSION_COLUMNS: dict[str, str] = {
    "uid": "str",
    "changed_at": UTC_SECONDS,  # from this instant on the master looks like this row
    "start_at": UTC_SECONDS,  # the master's DTSTART
    "status": "str",  # CONFIRMED | TENTATIVE | CANCELLED
}
EXCEPTION_COLUMNS: dict[str, str] = {
    "uid": "str",
    "recurrence_id": UTC_SECONDS,  # original start of the affected occurrence
    "known_at": UTC_SECONDS,  # when the exception entered the object (it is also a version's changed_at)
    "is_exdate": "bool",  # True: EXDATE on the master; False: a RECURRENCE-ID override VEVENT
    "start_at": UTC_SECONDS,  # override's DTSTART (NaT for EXDATE)
    "status": "str",  # override's STATUS ("" for EXDATE)
}
ATTENDEE_COLUMNS: dict[str, str] = {
    "uid": "str",
    "user_id": "str",  # internal attendee whose mailbox also holds the object; NaN for everyone else
    "email": "str",
    "name": "str",
    "role": "str",  # REQ-PARTICIPANT | OPT-PARTICIPANT
    "partstat": "str",  # ACCEPTED | TENTATIVE | DECLINED | NEEDS-ACTION
}
OCCURRENCE_COLUMNS: dict[str, str] = {
    "uid": "str",
    "recurrence_id": UTC_SECONDS,
    "kind": "str",
    "organizer_user_id": "str",
    "start_at": UTC_SECONDS,
    "end_at": UTC_SECONDS,
    "is_all_day": "bool",
    "status": "str",
}


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    return frame[list(columns)].astype(columns).reset_index(drop=True)


@dataclass(frozen=True)
class CalendarObjects:
    """Calendar objects and their history; one row per UID in `objects`, the other frames keyed by uid."""

    objects: pd.DataFrame
    versions: pd.DataFrame
    exceptions: pd.DataFrame
    attendees: pd.DataFrame

    @classmethod
    def from_frames(
        cls, objects: pd.DataFrame, versions: pd.DataFrame, exceptions: pd.DataFrame, attendees: pd.DataFrame
    ) -> CalendarObjects:
        return cls(
            _typed(objects, OBJECT_COLUMNS),
            _typed(versions, VERSION_COLUMNS),
            _typed(exceptions, EXCEPTION_COLUMNS),
            _typed(attendees, ATTENDEE_COLUMNS),
        )

    @classmethod
    def empty(cls) -> CalendarObjects:
        frames = (pd.DataFrame(columns=list(c)) for c in (OBJECT_COLUMNS, VERSION_COLUMNS, EXCEPTION_COLUMNS))
        return cls.from_frames(*frames, pd.DataFrame(columns=list(ATTENDEE_COLUMNS)))

    @classmethod
    def concat(cls, parts: list[CalendarObjects]) -> CalendarObjects:
        if not parts:
            return cls.empty()
        frames = [pd.concat([getattr(p, name) for p in parts], ignore_index=True) for name in _FRAME_NAMES]
        return cls.from_frames(*frames)


_FRAME_NAMES = ("objects", "versions", "exceptions", "attendees")

# ---------------------------------------------------------------------------------------------------------------------
# time helpers: UTC instants travel as numpy datetime64[s] without a zone


def _utc_seconds(values: object) -> np.ndarray:
    """UTC instants as naive datetime64[s] (sub-seconds dropped: iCalendar has second resolution)."""
    stamps = pd.to_datetime(pd.Series(values), utc=True)
    return stamps.dt.tz_localize(None).to_numpy().astype("datetime64[s]")


def _as_utc_series(values: np.ndarray) -> pd.Series:
    return pd.Series(values.astype("datetime64[s]")).dt.tz_localize("UTC")


def _to_local(utc: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """Wall-clock time in each row's zone, as naive datetime64[s]."""
    local = utc.astype("datetime64[s]").copy()
    for zone in np.unique(zones):
        mask = zones == zone
        index = pd.DatetimeIndex(utc[mask]).tz_localize("UTC").tz_convert(zone).tz_localize(None)
        local[mask] = index.to_numpy().astype("datetime64[s]")
    return local


def _from_local(local: np.ndarray, zones: np.ndarray, *, first_of_repeated: bool = False) -> np.ndarray:
    """UTC instants of wall-clock times in each row's zone.

    Generated times avoid DST gaps and repeated hours, so by default either raises. With `first_of_repeated`, a
    repeated wall-clock time means its first instant, as RFC 5545 readers take it.
    """
    utc = local.astype("datetime64[s]").copy()
    for zone in np.unique(zones):
        mask = zones == zone
        ambiguous = np.ones(mask.sum(), dtype=bool) if first_of_repeated else "raise"
        index = pd.DatetimeIndex(local[mask]).tz_localize(zone, ambiguous=ambiguous)
        index = index.tz_convert("UTC").tz_localize(None)
        utc[mask] = index.to_numpy().astype("datetime64[s]")
    return utc


def _weekday(days: np.ndarray) -> np.ndarray:
    """Monday=0 for datetime64 values (1970-01-01 was a Thursday)."""
    return (days.astype("datetime64[D]").astype(np.int64) + 3) % 7


# ---------------------------------------------------------------------------------------------------------------------
# people, quarters and recurrence expansion


def _people(reps: pd.DataFrame) -> pd.DataFrame:
    ends = pd.to_datetime(reps["end_date"]).fillna(pd.Timestamp("2262-01-01"))
    people = pd.DataFrame(
        {
            "user_id": reps["user_id"].astype("str"),
            "email": reps["email"].astype("str"),
            "first_name": reps["first_name"].astype("str"),
            "name": (reps["first_name"].astype("str") + " " + reps["last_name"].astype("str")).str.strip(),
            "timezone": reps["timezone"].astype("str"),
            "manager_user_id": reps["manager_user_id"].astype("str"),
            "team_id": reps["team_id"].astype("str"),
            "start": pd.to_datetime(reps["start_date"]).to_numpy().astype("datetime64[D]"),
            "end": ends.to_numpy().astype("datetime64[D]"),
        }
    )
    return people.sort_values("user_id", ignore_index=True)


def _quarters(start: dt.date, end: dt.date, fiscal_year_start_month: int) -> pd.DataFrame:
    months_back = (start.month - fiscal_year_start_month) % 3
    first = pd.Timestamp(start.year, start.month, 1) - pd.DateOffset(months=months_back)
    starts = []
    while first.date() <= end:
        starts.append(first)
        first = first + pd.DateOffset(months=3)
    firsts = pd.DatetimeIndex(starts)
    lasts = firsts + pd.DateOffset(months=3) - pd.Timedelta(days=1)
    return pd.DataFrame(
        {
            "label": firsts.strftime("%Y-%m"),
            "q_first": firsts.to_numpy().astype("datetime64[D]"),
            "q_last": lasts.to_numpy().astype("datetime64[D]"),
        }
    )


def _parse_byday(byday: str) -> list[int]:
    names = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
    return [names.index(day) for day in byday.split(",")] if byday else []


def _expand(
    start: np.ndarray, zones: np.ndarray, freq: np.ndarray, byday: np.ndarray, until: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Occurrences of RRULEs with INTERVAL=1: (row of the series, UTC start, local wall-clock start).

    Like dateutil (which recurring-ical-events uses), candidates keep the DTSTART wall-clock time in its zone across
    DST changes, UNTIL is compared in UTC and inclusive, and a DTSTART that BYDAY excludes is not an occurrence.
    """
    if len(start) == 0:
        empty = np.array([], dtype="datetime64[s]")
        return np.array([], dtype=np.int64), empty, empty
    local0 = _to_local(start, zones)
    step = np.where((freq == "WEEKLY") & (byday == ""), 7, 1)
    span_days = np.maximum((until - start).astype("timedelta64[s]").astype(np.int64) // 86_400 + 2, 0)
    counts = np.where(freq == "", 0, span_days // step + 1)
    rows = np.repeat(np.arange(len(start)), counts)
    k = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    local = local0[rows] + (k * step[rows] * 86_400).astype("timedelta64[s]")
    keep = np.ones(len(rows), dtype=bool)
    weekdays = _weekday(local)
    for pattern in np.unique(byday[byday != ""]):
        allowed = np.isin(weekdays, _parse_byday(pattern))
        keep &= (byday[rows] != pattern) | allowed
    rows, local = rows[keep], local[keep]
    utc = _from_local(local, zones[rows], first_of_repeated=True)
    keep = utc <= until[rows]
    return rows[keep], utc[keep], local[keep]


# ---------------------------------------------------------------------------------------------------------------------
# internal meetings

_LOCATIONS = ("Zoom", "Google Meet", "Microsoft Teams", "HQ, Room 4.2; 3rd floor", "Manager's office")
_ALL_DAY_SUMMARIES = ("Out of office", "Vacation", "Conference", "Training", "Customer offsite", "Parental leave")
_HOLIDAYS = (101, 1225, 1226)  # month * 100 + day, in the organizer's zone: always an EXDATE
_SKIP_SHARE = {"one_on_one": 0.05, "standup": 0.03}  # occurrences dropped with an EXDATE
_MOVE_SHARE = 0.05  # 1:1 occurrences moved by an override (a day, or 1-3 hours, later)
_CANCEL_SHARE = 0.02  # 1:1 occurrences kept as an override with STATUS:CANCELLED
_STANDUP_TEAM_SHARE = 0.6  # teams holding a daily stand-up, so that the daily series do not dominate
_ALL_DAY_PER_QUARTER = 1.5  # mean all-day events per person and quarter


def _pick(rng: np.random.Generator, choices: tuple[str, ...], size: int) -> np.ndarray:
    return np.asarray(choices)[rng.integers(0, len(choices), size)]


def _partstats(rng: np.random.Generator, size: int) -> np.ndarray:
    draw = rng.random(size)
    return np.select([draw < 0.85, draw < 0.93, draw < 0.97], ["ACCEPTED", "TENTATIVE", "NEEDS-ACTION"], "DECLINED")


def _clip_spans(
    frame: pd.DataFrame, starts: list[str], ends: list[str], world: tuple[dt.date, dt.date]
) -> pd.DataFrame:
    """Add `lo`/`hi`: the days common to the world and every [start, end] column pair (inclusive dates)."""
    lo, hi = np.datetime64(world[0], "D"), np.datetime64(world[1], "D")
    for column in starts:
        lo = np.maximum(lo, frame[column].to_numpy().astype("datetime64[D]"))
    for column in ends:
        hi = np.minimum(hi, frame[column].to_numpy().astype("datetime64[D]"))
    return frame.assign(lo=lo, hi=hi)


def _series(
    spans: pd.DataFrame,
    *,
    kind: str,
    uid: pd.Series,
    organizer: pd.Series,
    zones: np.ndarray,
    first_day: np.ndarray,
    minutes: np.ndarray,
    duration_minutes: int,
    rrule_byday: str,
    summary: np.ndarray,
    location: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One recurring series per span: first occurrence at `first_day` + `minutes` local, until the span's last day."""
    local_start = first_day.astype("datetime64[s]") + (minutes * 60).astype("timedelta64[s]")
    last_second = (spans["hi"].to_numpy().astype("datetime64[D]") + 1).astype("datetime64[s]") - np.timedelta64(1, "s")
    start_at = _from_local(local_start, zones)
    lead = (rng.integers(3 * 1440, 14 * 1440, len(spans)) * 60).astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "uid": uid.to_numpy(),
            "kind": kind,
            "organizer_user_id": organizer.to_numpy(),
            "summary": summary,
            "location": location,
            "tzid": zones,
            "use_utc": False,
            "is_all_day": False,
            "duration_minutes": duration_minutes,
            "rrule_freq": "DAILY" if rrule_byday else "WEEKLY",
            "rrule_byday": rrule_byday,
            "rrule_until": _from_local(last_second, zones),  # UNTIL is written in UTC, as RFC 5545 requires with TZID
            "created_at": start_at - lead,
            "start_at": start_at,
            "status": "CONFIRMED",
        }
    )


def _attendee_rows(uid: pd.Series, people: pd.DataFrame, prefix: str, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "uid": uid.to_numpy(),
            "user_id": people[prefix + "user_id"].to_numpy(),
            "email": people[prefix + "email"].to_numpy(),
            "name": people[prefix + "name"].to_numpy(),
            "role": "REQ-PARTICIPANT",
            "partstat": _partstats(rng, len(uid)),
        }
    )


def _weekly_one_on_ones(
    people: pd.DataFrame, quarters: pd.DataFrame, world: tuple[dt.date, dt.date], rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A weekly 1:1 per rep and manager and quarter, organized by the manager in the manager's zone."""
    pairs = people.merge(people.add_prefix("manager_"), on="manager_user_id")
    spans = _clip_spans(
        pairs.merge(quarters, how="cross"),
        ["q_first", "start", "manager_start"],
        ["q_last", "end", "manager_end"],
        world,
    )
    spans = spans.loc[spans["hi"] - spans["lo"] >= np.timedelta64(6, "D")]  # at least one of each weekday
    spans = spans.sort_values(["manager_user_id", "user_id", "label"], ignore_index=True)
    n = len(spans)
    lo = spans["lo"].to_numpy().astype("datetime64[D]")
    first_day = lo + (rng.integers(0, 5, n) - _weekday(lo)) % 7  # a random weekday in the span's first week
    uid = "1on1-" + spans["manager_user_id"] + "-" + spans["user_id"] + "-" + spans["label"] + "@" + UID_DOMAIN
    objects = _series(
        spans,
        kind="one_on_one",
        uid=uid,
        organizer=spans["manager_user_id"],
        zones=spans["manager_timezone"].to_numpy().astype(str),
        first_day=first_day,
        minutes=rng.integers(9, 17, n) * 60 + rng.choice([0, 30], n),
        duration_minutes=30,
        rrule_byday="",
        summary=(spans["manager_first_name"] + " / " + spans["first_name"] + " 1:1").to_numpy(),
        location=_pick(rng, _LOCATIONS, n),
        rng=rng,
    )
    return objects, _attendee_rows(uid, spans, "", rng)


def _daily_standups(
    people: pd.DataFrame, quarters: pd.DataFrame, world: tuple[dt.date, dt.date], rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A weekday stand-up per manager's team and quarter, attended by the reports employed during it."""
    managers = people.loc[people["user_id"].isin(people["manager_user_id"])].reset_index(drop=True)
    managers = managers.loc[rng.random(len(managers)) < _STANDUP_TEAM_SHARE]
    spans = _clip_spans(managers.merge(quarters, how="cross"), ["q_first", "start"], ["q_last", "end"], world)
    spans = spans.loc[spans["hi"] - spans["lo"] >= np.timedelta64(6, "D")]
    reports = people.add_prefix("member_").rename(columns={"member_manager_user_id": "user_id"})
    invited = spans.merge(reports, on="user_id")
    invited = invited.loc[(invited["member_start"] <= invited["hi"]) & (invited["member_end"] >= invited["lo"])]
    team = invited.groupby(["user_id", "label"], as_index=False)["member_team_id"].min()
    spans = spans.merge(team, on=["user_id", "label"]).sort_values(["user_id", "label"], ignore_index=True)
    n = len(spans)
    lo = spans["lo"].to_numpy().astype("datetime64[D]")
    uid = "standup-" + spans["user_id"] + "-" + spans["label"] + "@" + UID_DOMAIN
    objects = _series(
        spans,
        kind="standup",
        uid=uid,
        organizer=spans["user_id"],
        zones=spans["timezone"].to_numpy().astype(str),
        first_day=lo + np.where(_weekday(lo) >= 5, 7 - _weekday(lo), 0),  # the first weekday of the span
        minutes=9 * 60 + rng.choice([0, 15, 30], n),
        duration_minutes=15,
        rrule_byday="MO,TU,WE,TH,FR",
        summary=("Daily stand-up, team " + spans["member_team_id"]).to_numpy(),
        location=_pick(rng, _LOCATIONS[:3], n),
        rng=rng,
    )
    invited = invited.assign(uid="standup-" + invited["user_id"] + "-" + invited["label"] + "@" + UID_DOMAIN)
    invited = invited.sort_values(["uid", "member_user_id"], ignore_index=True)
    return objects, _attendee_rows(invited["uid"], invited, "member_", rng)


def _series_exceptions(series: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Holiday EXDATEs (known when the series is created), random skips, moved and cancelled occurrences.

    Ad-hoc exceptions enter the object 2-6 days before the occurrence they affect. Moves keep the wall-clock
    arithmetic in the organizer's zone (a day later is the same local time the next day).
    """
    zones = series["tzid"].to_numpy().astype(str)
    rows, utc, local = _expand(
        series["start_at"].to_numpy(),
        zones,
        series["rrule_freq"].to_numpy().astype(str),
        series["rrule_byday"].to_numpy().astype(str),
        series["rrule_until"].to_numpy(),
    )
    n = len(rows)
    kind = series["kind"].to_numpy().astype(str)[rows]
    created = series["created_at"].to_numpy()[rows]
    local_index = pd.DatetimeIndex(local)
    holiday = np.isin(local_index.month * 100 + local_index.day, _HOLIDAYS)
    # one draw per occurrence, cut in bands: skipped, then (1:1s only) moved, then cancelled
    draw = rng.random(n)
    skip_below = pd.Series(kind).map(_SKIP_SHARE).fillna(0).to_numpy()
    move_below, cancel_below = skip_below + _MOVE_SHARE, skip_below + _MOVE_SHARE + _CANCEL_SHARE
    adjustable = ~holiday & (kind == "one_on_one")
    skipped = ~holiday & (draw < skip_below)
    moved = adjustable & (draw >= skip_below) & (draw < move_below)
    cancelled = adjustable & (draw >= move_below) & (draw < cancel_below)

    next_day = (rng.random(n) < 0.5) & (_weekday(local) < 4)
    shift = np.where(next_day, 86_400, rng.integers(1, 4, n) * 3_600).astype("timedelta64[s]")
    start_at = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    start_at[moved] = _from_local(local[moved] + shift[moved], zones[rows][moved])
    start_at[cancelled] = utc[cancelled]
    tentative = rng.random(n) < 0.2
    ahead = (rng.integers(2 * 1440, 6 * 1440, n) * 60).astype("timedelta64[s]")
    exceptions = pd.DataFrame(
        {
            "uid": series["uid"].to_numpy()[rows],
            "recurrence_id": utc,
            "known_at": np.where(holiday, created, np.maximum(utc - ahead, created)),
            "is_exdate": holiday | skipped,
            "start_at": start_at,
            "status": np.select([moved & tentative, moved, cancelled], ["TENTATIVE", "CONFIRMED", "CANCELLED"], ""),
        }
    )
    return exceptions.loc[holiday | skipped | moved | cancelled].reset_index(drop=True)


def _all_day_events(
    people: pd.DataFrame, quarters: pd.DataFrame, world: tuple[dt.date, dt.date], rng: np.random.Generator
) -> pd.DataFrame:
    """Out-of-office style events on weekdays, 1-5 days long, a few per person and quarter; some cancelled later."""
    spans = _clip_spans(people.merge(quarters, how="cross"), ["q_first", "start"], ["q_last", "end"], world)
    spans = spans.loc[spans["hi"] >= spans["lo"]].sort_values(["user_id", "label"], ignore_index=True)
    events = spans.loc[np.repeat(spans.index, rng.poisson(_ALL_DAY_PER_QUARTER, len(spans)))].reset_index(drop=True)
    n = len(events)
    lo = events["lo"].to_numpy().astype("datetime64[D]")
    span_days = (events["hi"].to_numpy().astype("datetime64[D]") - lo).astype(np.int64) + 1
    day = lo + np.floor(rng.random(n) * span_days).astype(np.int64)
    day = day + np.where(_weekday(day) >= 5, 7 - _weekday(day), 0)
    days_long = np.where(rng.random(n) < 0.65, 1, rng.integers(2, 6, n))
    start_at = day.astype("datetime64[s]")
    lead_seconds = (rng.integers(3, 45, n) * 86_400 - rng.integers(6 * 3_600, 16 * 3_600, n)) // 60 * 60
    created = start_at - lead_seconds.astype("timedelta64[s]")
    cancelled_after = (np.floor(rng.random(n) * lead_seconds / 60) * 60 + 60).astype("timedelta64[s]")
    number = events.groupby(["user_id", "label"]).cumcount().astype("str")
    uid = "ooo-" + events["user_id"] + "-" + events["label"] + "-" + number + "@" + UID_DOMAIN
    return pd.DataFrame(
        {
            "uid": uid.to_numpy(),
            "kind": "all_day",
            "organizer_user_id": events["user_id"].to_numpy(),
            "summary": _pick(rng, _ALL_DAY_SUMMARIES, n),
            "location": "",
            "tzid": events["timezone"].to_numpy(),
            "use_utc": False,
            "is_all_day": True,
            "duration_minutes": days_long * 1440,
            "rrule_freq": "",
            "rrule_byday": "",
            "rrule_until": np.datetime64("NaT", "s"),
            "created_at": created,
            "start_at": start_at,
            "status": np.where(rng.random(n) < 0.15, "TENTATIVE", "CONFIRMED"),
            "cancelled_at": np.where(rng.random(n) < 0.05, created + cancelled_after, np.datetime64("NaT", "s")),
        }
    )


def _utc_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    return frame.assign(**{column: _as_utc_series(frame[column].to_numpy()) for column in columns})


def build_internal_meetings(
    reps: pd.DataFrame, start: dt.date, end: dt.date, rng: np.random.Generator, *, fiscal_year_start_month: int = 1
) -> CalendarObjects:
    """Weekly 1:1s, daily stand-ups and all-day events of the sales org, one set of series per quarter.

    Quarters start in `fiscal_year_start_month` (and every three months after). Series are clipped to the
    employment of everyone in them, so a departure ends a 1:1 series early.
    """
    world = (start, end)
    people = _people(reps)
    quarters = _quarters(start, end, fiscal_year_start_month)
    one_on_ones, one_on_one_attendees = _weekly_one_on_ones(people, quarters, world, rng)
    standups, standup_attendees = _daily_standups(people, quarters, world, rng)
    series = pd.concat([one_on_ones, standups], ignore_index=True)
    exceptions = _series_exceptions(series, rng)
    all_day = _all_day_events(people, quarters, world, rng)

    # a series is re-exported whenever an exception enters it; an all-day event when it is cancelled
    created = exceptions["uid"].map(series.set_index("uid")["created_at"])
    later = exceptions.loc[exceptions["known_at"] > created, ["uid", "known_at"]].drop_duplicates()
    cancelled = all_day.loc[all_day["cancelled_at"].notna()]
    versions = pd.concat(
        [
            series[["uid", "created_at", "start_at", "status"]].rename(columns={"created_at": "changed_at"}),
            later.merge(series[["uid", "start_at", "status"]], on="uid").rename(columns={"known_at": "changed_at"}),
            all_day[["uid", "created_at", "start_at", "status"]].rename(columns={"created_at": "changed_at"}),
            cancelled[["uid", "cancelled_at", "start_at"]]
            .rename(columns={"cancelled_at": "changed_at"})
            .assign(status="CANCELLED"),
        ],
        ignore_index=True,
    )
    return CalendarObjects.from_frames(
        _utc_columns(pd.concat([series, all_day], ignore_index=True), ("rrule_until", "created_at")),
        _utc_columns(versions, ("changed_at", "start_at")),
        _utc_columns(exceptions, ("recurrence_id", "known_at", "start_at")),
        pd.concat([one_on_one_attendees, standup_attendees], ignore_index=True),
    )


# ---------------------------------------------------------------------------------------------------------------------
# customer meetings


def customer_meeting_objects(meetings: pd.DataFrame, attendees: pd.DataFrame) -> CalendarObjects:
    """Customer meetings as single-event objects with up to three versions: created, rescheduled, cancelled.

    Times are truncated to whole seconds, the resolution of iCalendar. DTSTART is written in the organizer's zone
    (resolved from the mailbox owners when writing) unless `use_utc`.
    """
    meetings = meetings.reset_index(drop=True)
    created = _utc_seconds(meetings["created_at"])
    final_start = _utc_seconds(meetings["start_at"])
    original = _utc_seconds(meetings["original_start_at"])
    original = np.where(np.isnat(original), final_start, original)
    rescheduled = np.maximum(_utc_seconds(meetings["rescheduled_at"]), created)  # NaT stays NaT
    cancelled = np.maximum(_utc_seconds(meetings["cancelled_at"]), created)
    uid = meetings["uid"].astype("str")
    statuses = pd.Index(["CONFIRMED", "CANCELLED"])

    def state(at: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
        moved = rescheduled[rows] <= at[rows]  # False for NaT
        gone = cancelled[rows] <= at[rows]
        return pd.DataFrame(
            {
                "uid": uid.iloc[rows].reset_index(drop=True),
                "changed_at": _as_utc_series(at[rows]),
                "start_at": _as_utc_series(np.where(moved, final_start[rows], original[rows])),
                "status": pd.Categorical.from_codes(gone.astype(np.int8), statuses).astype("str"),
            }
        )

    # a change at the same instant as an earlier-listed one is already part of that version
    is_rescheduled = ~np.isnat(rescheduled) & (rescheduled != created) & (rescheduled != cancelled)
    is_cancelled = ~np.isnat(cancelled) & (cancelled != created)
    versions = pd.concat(
        [
            state(created, np.arange(len(meetings))),
            state(rescheduled, np.flatnonzero(is_rescheduled)),
            state(cancelled, np.flatnonzero(is_cancelled)),
        ],
        ignore_index=True,
    )
    objects = pd.DataFrame(
        {
            "uid": uid,
            "kind": "customer",
            "organizer_user_id": meetings["organizer_user_id"].astype("str"),
            "summary": meetings["summary"].astype("str"),
            "location": meetings["location"].fillna("").astype("str"),
            "tzid": "",
            "use_utc": meetings["use_utc"].astype(bool),
            "is_all_day": False,
            "duration_minutes": meetings["duration_minutes"].astype("int64"),
            "rrule_freq": "",
            "rrule_byday": "",
            "rrule_until": _as_utc_series(np.full(len(meetings), np.datetime64("NaT"), dtype="datetime64[s]")),
            "created_at": _as_utc_series(created),
        }
    )
    people = attendees.assign(user_id=pd.Series(np.nan, index=attendees.index, dtype="str"))
    return CalendarObjects.from_frames(objects, versions, CalendarObjects.empty().exceptions, people)


# ---------------------------------------------------------------------------------------------------------------------
# columns over several CalendarObjects, without concatenating their DataFrames

_STRING = pa.large_string()


def _scalar(text: str) -> pa.Scalar:
    return pa.scalar(text, _STRING)


def _arrow(values: object) -> pa.Array:
    """A large_string Arrow array, nulls as ''; zero-copy for Arrow-backed pandas strings."""
    array = pa.array(values, from_pandas=True)
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    return pc.fill_null(array.cast(_STRING), "")


def _strings(parts: list[CalendarObjects], frame: str, column: str) -> pa.ChunkedArray:
    """One string column over all parts, referencing the parts' Arrow buffers instead of copying them."""
    return pa.chunked_array([_arrow(getattr(part, frame)[column]) for part in parts], type=_STRING)


def _times(parts: list[CalendarObjects], frame: str, column: str) -> np.ndarray:
    arrays = [_utc_seconds(getattr(part, frame)[column]) for part in parts]
    return np.concatenate(arrays) if arrays else np.array([], dtype="datetime64[s]")


def _values(parts: list[CalendarObjects], frame: str, column: str) -> np.ndarray:
    return np.concatenate([getattr(part, frame)[column].to_numpy() for part in parts]) if parts else np.array([])


def _lookup(values: pa.Array | pa.ChunkedArray, keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Position of each value among the keys, -1 where absent."""
    found = pc.index_in(values, value_set=keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys)
    return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _take(column: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    taken = column.take(pa.array(rows, type=pa.int64()))
    return taken.combine_chunks() if isinstance(taken, pa.ChunkedArray) else taken


# ---------------------------------------------------------------------------------------------------------------------
# ground truth


def occurrences(
    objects: list[CalendarObjects],
    until: pd.Timestamp,
    *,
    reps: pd.DataFrame | None = None,
    drops: list[tuple[dt.date, pd.Timestamp, pd.Timestamp]] | None = None,
) -> pd.DataFrame:
    """Every occurrence a reader of the exports finds after expansion, in the objects' state just before `until`.

    `until` is an exclusive knowledge time (a window end), not an expansion horizon: objects created from then on
    are absent, and the occurrences of the others are listed whenever they fall. As recurring-ical-events does, an
    EXDATE removes an occurrence, while a RECURRENCE-ID override with STATUS:CANCELLED is kept and marked CANCELLED
    (so are cancelled single events). Recurring objects need a `tzid` (or `use_utc`); all-day events are single.

    Given the mailbox owners and every drop written so far, each object is instead taken in the state of its last
    export before `until`, and objects no mailbox exported are left out: that is exactly what a reader of the files
    can see when an owner left before the object's latest change.
    """
    uids = _strings(objects, "objects", "uid")
    at = np.full(len(uids), _utc_seconds([until])[0])  # knowledge time per object row
    if reps is not None and drops is not None:
        at = np.minimum(at, _last_exports(objects, reps, drops))

    # the master's latest version at `at`, per object row
    version_row = _lookup(_strings(objects, "versions", "uid"), uids)
    version_time = _times(objects, "versions", "changed_at")
    known = np.flatnonzero((version_row >= 0) & (version_time < at[version_row]))
    known = known[np.lexsort((version_time[known], version_row[known]))]
    latest = known[np.r_[version_row[known][1:] != version_row[known][:-1], True]] if len(known) else known
    row = version_row[latest]
    start = _times(objects, "versions", "start_at")[latest]
    status = _take(_strings(objects, "versions", "status"), latest)

    def text(column: str, rows: np.ndarray) -> np.ndarray:
        return _take(_strings(objects, "objects", column), rows).to_numpy(zero_copy_only=False).astype(str)

    freq = text("rrule_freq", row)
    single = freq == ""
    recurring = np.flatnonzero(~single)
    in_utc = _values(objects, "objects", "use_utc").astype(bool)[row[recurring]]
    series, recurrence_id, _ = _expand(
        start[recurring],
        np.where(in_utc, "UTC", text("tzid", row[recurring])),
        freq[recurring],
        text("rrule_byday", row[recurring]),
        _times(objects, "objects", "rrule_until")[row[recurring]],
    )
    state = np.r_[np.flatnonzero(single), recurring[series]]  # index into the per-object state arrays
    found = pd.DataFrame(
        {
            "row": row[state],
            "recurrence_id": np.r_[np.full(single.sum(), np.datetime64("NaT"), dtype="datetime64[s]"), recurrence_id],
            "start_at": np.r_[start[single], recurrence_id],
            "status": status.take(pa.array(state)).to_pandas(),
        }
    )

    exceptions = pd.DataFrame(
        {
            "row": _lookup(_strings(objects, "exceptions", "uid"), uids),
            "recurrence_id": _times(objects, "exceptions", "recurrence_id"),
            "known_at": _times(objects, "exceptions", "known_at"),
            "is_exdate": _values(objects, "exceptions", "is_exdate").astype(bool),
            "override_start": _times(objects, "exceptions", "start_at"),
            "override_status": _values(objects, "exceptions", "status").astype(str),
        }
    )
    exceptions = exceptions.loc[exceptions["known_at"].to_numpy() < at[exceptions["row"].to_numpy()]]
    exceptions = exceptions.drop(columns="known_at")
    found = found.merge(exceptions, on=["row", "recurrence_id"], how="left")
    found = found.loc[~found["is_exdate"].fillna(False).astype(bool).to_numpy()]
    overridden = found["override_start"].notna().to_numpy()
    start_at = np.where(overridden, found["override_start"].to_numpy(), found["start_at"].to_numpy())
    found["status"] = found["status"].where(~overridden, found["override_status"])

    rows = found["row"].to_numpy()
    duration = (_values(objects, "objects", "duration_minutes").astype(np.int64)[rows] * 60).astype("timedelta64[s]")
    result = pd.DataFrame(
        {
            "uid": _take(uids, rows).to_pandas(),
            "recurrence_id": _as_utc_series(found["recurrence_id"].to_numpy()),
            "kind": _take(_strings(objects, "objects", "kind"), rows).to_pandas(),
            "organizer_user_id": _take(_strings(objects, "objects", "organizer_user_id"), rows).to_pandas(),
            "start_at": _as_utc_series(start_at),
            "end_at": _as_utc_series(start_at + duration),
            "is_all_day": _values(objects, "objects", "is_all_day").astype(bool)[rows],
            "status": found["status"].to_numpy(),
        }
    )
    code = np.empty(len(uids), dtype=np.int64)
    code[pc.sort_indices(uids).to_numpy()] = np.arange(len(uids))
    order = np.lexsort((found["recurrence_id"].to_numpy(), start_at, code[rows]))
    return _typed(result.iloc[order], OCCURRENCE_COLUMNS)


def _last_exports(
    objects: list[CalendarObjects], reps: pd.DataFrame, drops: list[tuple[dt.date, pd.Timestamp, pd.Timestamp]]
) -> np.ndarray:
    """Per object row, the window end of the last drop that exported it (NaT if none did)."""
    catalog = _Catalog(objects, _mailboxes(reps))
    last = np.full(catalog.size, np.datetime64("NaT"), dtype="datetime64[s]")
    for drop_date, window_start, window_end in sorted(drops, key=lambda drop: drop[2]):
        _, code = catalog.exports(drop_date, window_start, window_end)
        last[code] = _utc_seconds([window_end])[0]
    by_row = np.empty_like(last)
    by_row[catalog.object_row] = last
    return by_row


# ---------------------------------------------------------------------------------------------------------------------
# rendering: every property is a pyarrow string column; Python touches only non-ASCII lines that need folding


def _cat(*parts: pa.Array | str) -> pa.Array:
    """Row-wise concatenation of string columns and constants."""
    return pc.binary_join_element_wise(*(_scalar(p) if isinstance(p, str) else p for p in parts), _scalar(""))


def _when(mask: np.ndarray, values: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask, type=pa.bool_()), values, _scalar(""))


def _fixed_width(matrix: np.ndarray) -> pa.Array:
    """A string column from an (n, width) array of ASCII bytes, without a Python loop."""
    rows, width = matrix.shape
    offsets = pa.py_buffer(np.arange(0, (rows + 1) * width, width, dtype=np.int64))
    return pa.LargeStringArray.from_buffers(rows, offsets, pa.py_buffer(np.ascontiguousarray(matrix, dtype=np.uint8)))


def _digits(matrix: np.ndarray, column: int, value: np.ndarray, width: int) -> None:
    for position in range(width):
        matrix[:, column + width - 1 - position] = 48 + value // 10**position % 10


def _basic_datetime(values: np.ndarray) -> pa.Array:
    """'20240315T100000' for each datetime64 (NaT renders as a date in 1970; callers mask it out)."""
    seconds = np.where(np.isnat(values), np.datetime64(0, "s"), values.astype("datetime64[s]"))
    days = seconds.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    clock = (seconds - days).astype(np.int64)
    matrix = np.empty((len(values), 15), dtype=np.uint8)
    _digits(matrix, 0, months.astype("datetime64[Y]").astype(np.int64) + 1970, 4)
    _digits(matrix, 4, months.astype(np.int64) % 12 + 1, 2)
    _digits(matrix, 6, (days - months).astype(np.int64) + 1, 2)
    matrix[:, 8] = ord("T")
    _digits(matrix, 9, clock // 3600, 2)
    _digits(matrix, 11, clock // 60 % 60, 2)
    _digits(matrix, 13, clock % 60, 2)
    return _fixed_width(matrix)


def _basic_date(values: np.ndarray) -> pa.Array:
    return pc.utf8_slice_codeunits(_basic_datetime(values), 0, 8)


def _fold_line(line: str) -> str:
    """RFC 5545 folding: at most 75 octets per physical line, never splitting a UTF-8 sequence."""
    data = line.encode("utf-8")
    parts, start, limit = [], 0, MAX_LINE_OCTETS
    while start < len(data):
        stop = min(start + limit, len(data))
        while stop < len(data) and data[stop] & 0xC0 == 0x80:
            stop -= 1
        parts.append(data[start:stop])
        start, limit = stop, MAX_LINE_OCTETS - 1  # continuation lines begin with a space
    return b"\r\n ".join(parts).decode("utf-8")


def _lines(values: pa.Array) -> pa.Array:
    """Content lines ending in CRLF, folded at 75 octets.

    ASCII lines (one octet per character) fold with a regex inside Arrow; the rare long line with multi-byte
    characters goes through Python.
    """
    octets = pc.binary_length(values).to_numpy(zero_copy_only=False)
    long = octets > MAX_LINE_OCTETS
    if long.any():
        ascii_only = octets == pc.utf8_length(values).to_numpy(zero_copy_only=False)
        rest = pc.replace_substring_regex(pc.utf8_slice_codeunits(values, MAX_LINE_OCTETS), "(.{1,74})", "\r\n \\1")
        folded = _cat(pc.utf8_slice_codeunits(values, 0, MAX_LINE_OCTETS), rest)
        values = pc.if_else(pa.array(long & ascii_only), folded, values)
        by_python = np.flatnonzero(long & ~ascii_only)
        if len(by_python):
            replaced = [_fold_line(line) for line in values.take(pa.array(by_python)).to_pylist()]
            mask = np.zeros(len(values), dtype=bool)
            mask[by_python] = True
            values = pc.replace_with_mask(values, pa.array(mask), pa.array(replaced, type=_STRING))
    return _cat(values, "\r\n")


def _escape_text(values: pa.Array) -> pa.Array:
    for raw, escaped in (("\\", "\\\\"), (";", "\\;"), (",", "\\,"), ("\r\n", "\\n"), ("\n", "\\n"), ("\r", "\\n")):
        values = pc.replace_substring(values, raw, escaped)
    return values


def _param_value(values: pa.Array) -> pa.Array:
    """A parameter value (CN): DQUOTE is not allowed inside one, and ':;,' require quoting."""
    values = pc.replace_substring_regex(pc.replace_substring(values, '"', "'"), r"[\r\n]+", " ")
    return pc.if_else(pc.match_substring_regex(values, "[:;,]"), _cat('"', values, '"'), values)


_MODE_ZONE, _MODE_UTC, _MODE_DATE = 0, 1, 2


def _time_values(utc: np.ndarray, mode: np.ndarray, zones: np.ndarray) -> pa.Array:
    """Parameters and value of a DATE-TIME or DATE: ';TZID=...:local', ':...Z' or ';VALUE=DATE:...'."""
    in_zone = mode == _MODE_ZONE
    local = utc.copy()
    local[in_zone] = _to_local(utc[in_zone], zones[in_zone])
    # The second pass through a repeated hour (DST ending) has no TZID form: readers take the first; write it in UTC.
    repeated = np.zeros(len(utc), dtype=bool)
    repeated[in_zone] = _from_local(local[in_zone], zones[in_zone], first_of_repeated=True) != utc[in_zone]
    in_zone &= ~repeated
    zone_value = _cat(";TZID=", _arrow(np.where(in_zone, zones, "")), ":", _basic_datetime(local))
    utc_value = _cat(":", _basic_datetime(utc), "Z")
    date_value = _cat(";VALUE=DATE:", _basic_date(utc))
    return pc.if_else(pa.array(mode == _MODE_DATE), date_value, pc.if_else(pa.array(in_zone), zone_value, utc_value))


def _time_values_batch(*requests: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[pa.Array]:
    """`_time_values` of several (utc, mode, zones) requests at once: zone conversion has a per-call cost."""
    lengths = np.cumsum([0] + [len(utc) for utc, _, _ in requests])
    formatted = _time_values(*(np.concatenate(parts) for parts in zip(*requests, strict=True)))
    return [formatted.slice(lengths[i], lengths[i + 1] - lengths[i]) for i in range(len(requests))]


def _join_groups(keys: np.ndarray, texts: pa.Array, wanted: np.ndarray) -> pa.Array:
    """Concatenate texts per key, in their order, aligned to `wanted` (sorted, unique, a superset of the keys)."""
    offsets = np.r_[np.searchsorted(keys, wanted, side="left"), len(keys)].astype(np.int64)
    return pc.binary_join(pa.LargeListArray.from_arrays(pa.array(offsets), texts), _scalar(""))


class _Catalog:
    """What the writer needs about every object, indexed by its code (its position in UID order).

    Numbers live in numpy arrays; text columns stay references to the callers' Arrow buffers and are taken, escaped
    and folded per drop, so that at bench scale the writer adds little to the memory the inputs already use.
    """

    def __init__(self, parts: list[CalendarObjects], mailboxes: pd.DataFrame):
        uids = _strings(parts, "objects", "uid")
        self.object_row = pc.sort_indices(uids).to_numpy()  # code -> row of the concatenated objects
        self.size = len(self.object_row)
        code_of_row = np.empty(self.size, dtype=np.int64)
        code_of_row[self.object_row] = np.arange(self.size)
        if not np.array_equal(_lookup(uids, uids), np.arange(self.size)):
            raise ValueError("calendar object UIDs must be unique")

        def codes_of(frame: str) -> np.ndarray:
            rows = _lookup(_strings(parts, frame, "uid"), uids)
            if (rows < 0).any():
                raise ValueError(f"{frame} refer to calendar objects that do not exist")
            return code_of_row[rows]

        def by_code(values: np.ndarray) -> np.ndarray:
            return values[self.object_row]

        self.uids, self.summary, self.location = (_strings(parts, "objects", c) for c in ("uid", "summary", "location"))
        self.rrule_freq, self.rrule_byday = (
            _strings(parts, "objects", "rrule_freq"),
            _strings(parts, "objects", "rrule_byday"),
        )
        self.rrule_until = by_code(_times(parts, "objects", "rrule_until"))
        self.created = by_code(_times(parts, "objects", "created_at"))
        self.duration = by_code(_values(parts, "objects", "duration_minutes").astype(np.int64) * 60).astype(
            "timedelta64[s]"
        )

        self.mailbox_start, self.mailbox_end = mailboxes["start"].to_numpy(), mailboxes["end"].to_numpy()
        self.mailbox_names = _param_value(_arrow(mailboxes["name"]))
        self.mailbox_emails = _arrow(mailboxes["email"])
        mailbox_ids = _arrow(mailboxes["user_id"])
        self.organizer = by_code(_lookup(_strings(parts, "objects", "organizer_user_id"), mailbox_ids))
        tzid = _strings(parts, "objects", "tzid")
        self.zone_names = np.array(
            sorted((set(pc.unique(tzid).to_pylist()) | set(mailboxes["timezone"])) - {""}) + [""]
        )
        zone_index = pa.array(self.zone_names[:-1], type=_STRING)
        own_zone = by_code(_lookup(tzid, zone_index))
        organizer_zone = np.where(
            self.organizer >= 0, _lookup(_arrow(mailboxes["timezone"]), zone_index)[self.organizer], -1
        )
        self.zone_code = np.where(own_zone >= 0, own_zone, organizer_zone)  # -1: no zone known, written in UTC
        self.mode = np.where(
            by_code(_values(parts, "objects", "is_all_day").astype(bool)),
            _MODE_DATE,
            np.where(
                by_code(_values(parts, "objects", "use_utc").astype(bool)) | (self.zone_code < 0), _MODE_UTC, _MODE_ZONE
            ),
        ).astype(np.int8)

        version_code = codes_of("versions")
        version_time = _times(parts, "versions", "changed_at")
        by_time = np.lexsort((version_code, version_time))
        self.version_code, self.version_time = version_code[by_time], version_time[by_time]
        self.version_start = _times(parts, "versions", "start_at")[by_time]
        statuses = _strings(parts, "versions", "status")
        self.status_names = pc.unique(statuses)
        self.version_status = _lookup(statuses, self.status_names)[by_time]
        self.first_change = np.full(self.size, np.datetime64("NaT"), dtype="datetime64[s]")
        with_versions, first_row = np.unique(self.version_code, return_index=True)  # rows are in time order
        self.first_change[with_versions] = self.version_time[first_row]

        exceptions = pd.DataFrame(
            {
                "code": codes_of("exceptions"),
                "recurrence_id": _times(parts, "exceptions", "recurrence_id"),
                "known_at": _times(parts, "exceptions", "known_at"),
                "is_exdate": _values(parts, "exceptions", "is_exdate").astype(bool),
                "start_at": _times(parts, "exceptions", "start_at"),
                "status": _values(parts, "exceptions", "status").astype(str),
            }
        )
        self.exceptions = exceptions.sort_values(["code", "recurrence_id"], ignore_index=True)

        attendee_code = codes_of("attendees")
        self.attendee_email = _strings(parts, "attendees", "email")
        order = pa.table({"code": attendee_code, "email": self.attendee_email})
        self.attendee_row = pc.sort_indices(order, sort_keys=[("code", "ascending"), ("email", "ascending")]).to_numpy()
        self.attendee_code = attendee_code[self.attendee_row]
        self.attendee_name, self.attendee_role, self.attendee_partstat = (
            _strings(parts, "attendees", c) for c in ("name", "role", "partstat")
        )
        attendee_mailbox = _lookup(_strings(parts, "attendees", "user_id"), mailbox_ids)[self.attendee_row]

        organizers = np.flatnonzero(self.organizer >= 0)
        internal = attendee_mailbox >= 0
        owners = pd.DataFrame(
            {
                "mailbox": np.r_[self.organizer[organizers], attendee_mailbox[internal]],
                "code": np.r_[organizers, self.attendee_code[internal]],
            }
        )
        owners = owners.drop_duplicates().sort_values(["mailbox", "code"])
        self.pair_mailbox, self.pair_code = owners["mailbox"].to_numpy(), owners["code"].to_numpy()

        years = pd.DatetimeIndex(np.r_[self.version_start, self.version_time]).year
        self.timezone_years = (int(years.min()) - 1, int(years.max()) + 2) if len(years) else (2000, 2001)

    def exports(
        self, drop_date: dt.date, window_start: pd.Timestamp, window_end: pd.Timestamp
    ) -> tuple[np.ndarray, np.ndarray]:
        """(mailbox, code) pairs a drop exports, sorted by mailbox then code."""
        day = np.datetime64(pd.Timestamp(drop_date).date(), "D")
        upper = _utc_seconds([window_end])[0]
        lower = _utc_seconds([window_start])[0] if pd.notna(window_start) else None
        active = (self.mailbox_start <= day) & (self.mailbox_end >= day)
        fresh = active & (True if lower is None else self.mailbox_start >= lower.astype("datetime64[D]"))
        first_version = 0 if lower is None else np.searchsorted(self.version_time, lower, side="left")
        changed = np.zeros(self.size, dtype=bool)
        changed[self.version_code[first_version : np.searchsorted(self.version_time, upper, side="left")]] = True
        exists = self.first_change < upper
        mailbox, code = self.pair_mailbox, self.pair_code
        keep = active[mailbox] & (changed[code] | (fresh[mailbox] & exists[code]))
        return mailbox[keep], code[keep]

    def render(self, codes: np.ndarray, at: np.datetime64) -> pa.Array:
        """The text (master VEVENT, then overrides by RECURRENCE-ID) of each given object just before `at`."""
        selected = np.zeros(self.size, dtype=bool)
        selected[codes] = True
        known = np.searchsorted(self.version_time, at, side="left")
        version_rows = np.flatnonzero(selected[self.version_code[:known]])
        state_codes, first_reversed, count = np.unique(
            self.version_code[version_rows][::-1], return_index=True, return_counts=True
        )
        if not np.array_equal(state_codes, codes):
            raise ValueError("an object to render has no version at the export time")
        latest = version_rows[len(version_rows) - 1 - first_reversed]
        start, status = self.version_start[latest], self.status_names.take(pa.array(self.version_status[latest]))
        mode, zones, duration = self.mode[codes], self.zone_names[self.zone_code[codes]], self.duration[codes]
        rows = self.object_row[codes]

        head = _cat(
            "BEGIN:VEVENT\r\n",
            _lines(_cat("UID:", _take(self.uids, rows))),
            "DTSTAMP:",
            _basic_datetime(np.array([at]))[0].as_py(),
            "Z\r\nCREATED:",
            _basic_datetime(self.created[codes]),
            "Z\r\nLAST-MODIFIED:",
            _basic_datetime(self.version_time[latest]),
            "Z\r\nSEQUENCE:",
            pc.cast(pa.array(count - 1), _STRING),
            "\r\n",
        )
        location = _take(self.location, rows)
        has_location = pc.binary_length(location).to_numpy(zero_copy_only=False) > 0
        description = _cat(
            _lines(_cat("SUMMARY:", _escape_text(_take(self.summary, rows)))),
            _when(has_location, _lines(_cat("LOCATION:", _escape_text(location)))),
        )

        organizer = self.organizer[codes]
        known_organizer = organizer >= 0
        organizer_take = pa.array(np.maximum(organizer, 0))
        organizer_lines = _lines(
            _cat(
                "ORGANIZER;CN=",
                self.mailbox_names.take(organizer_take),
                ":mailto:",
                self.mailbox_emails.take(organizer_take),
            )
        )
        invited = np.flatnonzero(selected[self.attendee_code])
        attendee_rows = self.attendee_row[invited]
        attendee_lines = _lines(
            _cat(
                "ATTENDEE;CN=",
                _param_value(_take(self.attendee_name, attendee_rows)),
                ";ROLE=",
                _take(self.attendee_role, attendee_rows),
                ";PARTSTAT=",
                _take(self.attendee_partstat, attendee_rows),
                ":mailto:",
                _take(self.attendee_email, attendee_rows),
            )
        )
        tail = _cat(
            _when(mode == _MODE_DATE, _scalar("TRANSP:TRANSPARENT\r\n")),
            _when(known_organizer, organizer_lines),
            _join_groups(self.attendee_code[invited], attendee_lines, codes),
            "END:VEVENT\r\n",
        )

        freq, byday = _take(self.rrule_freq, rows), _take(self.rrule_byday, rows)
        is_recurring = pc.binary_length(freq).to_numpy(zero_copy_only=False) > 0
        with_byday = _when(pc.binary_length(byday).to_numpy(zero_copy_only=False) > 0, _cat(";BYDAY=", byday))
        until = _basic_datetime(self.rrule_until[codes])
        rrule = _when(is_recurring, _cat("RRULE:FREQ=", freq, with_byday, ";UNTIL=", until, "Z\r\n"))

        exceptions = self.exceptions.loc[selected[self.exceptions["code"].to_numpy()]]
        exceptions = exceptions.loc[exceptions["known_at"].to_numpy() < at]
        is_exdate = exceptions["is_exdate"].to_numpy()
        exdates, overrides = exceptions.loc[is_exdate], exceptions.loc[~is_exdate]
        at_exdate = np.searchsorted(codes, exdates["code"].to_numpy())
        at_override = np.searchsorted(codes, overrides["code"].to_numpy())
        override_start, override_mode, override_zones = (
            overrides["start_at"].to_numpy(),
            mode[at_override],
            zones[at_override],
        )
        dtstart, dtend, exdate, recurrence_id, override_dtstart, override_dtend = _time_values_batch(
            (start, mode, zones),
            (start + duration, mode, zones),
            (exdates["recurrence_id"].to_numpy(), mode[at_exdate], zones[at_exdate]),
            (overrides["recurrence_id"].to_numpy(), override_mode, override_zones),
            (override_start, override_mode, override_zones),
            (override_start + duration[at_override], override_mode, override_zones),
        )
        master = _cat(
            head,
            _lines(_cat("DTSTART", dtstart)),
            _lines(_cat("DTEND", dtend)),
            rrule,
            _join_groups(exdates["code"].to_numpy(), _lines(_cat("EXDATE", exdate)), codes),
            description,
            "STATUS:",
            status,
            "\r\n",
            tail,
        )
        position = pa.array(at_override)
        override_text = _cat(
            head.take(position),
            _lines(_cat("RECURRENCE-ID", recurrence_id)),
            _lines(_cat("DTSTART", override_dtstart)),
            _lines(_cat("DTEND", override_dtend)),
            description.take(position),
            "STATUS:",
            _arrow(overrides["status"].to_numpy()),
            "\r\n",
            tail.take(position),
        )
        return _cat(master, _join_groups(overrides["code"].to_numpy(), override_text, codes))


@lru_cache(maxsize=64)
def _vtimezone(tzid: str, first_year: int, last_year: int) -> str:
    """VTIMEZONE text of an IANA zone, covering the years of the data so that the transitions stay short."""
    zone = icalendar.Timezone.from_tzid(tzid, first_date=dt.date(first_year, 1, 1), last_date=dt.date(last_year, 1, 1))
    return zone.to_ical().decode("utf-8")


def _mailboxes(reps: pd.DataFrame) -> pd.DataFrame:
    people = _people(reps)
    people["local_part"] = people["email"].str.split("@").str[0]
    if people["local_part"].duplicated().any():
        raise ValueError("two mailboxes share an email local part, so their files would collide")
    return people


def write_calendar_drops(
    objects: list[CalendarObjects],
    reps: pd.DataFrame,
    drops: list[tuple[dt.date, pd.Timestamp, pd.Timestamp]],
    out_dir: Path,
) -> list[Path]:
    """Write `out_dir/landing/calendar/<drop date>/<local part>.ics` for each drop (drop date, window start, end).

    Windows are half-open, [window start, window end), as in `simulator.world.drop_windows`. A mailbox gets the
    objects that changed in the window, in their state just before window end (DTSTAMP); a mailbox whose owner was
    hired on or after the window start's date, or any mailbox when the window start is NaT, gets a full sync of
    everything it holds. Mailboxes export only while their owner is employed on the drop date.
    """
    mailboxes = _mailboxes(reps)
    catalog = _Catalog(objects, mailboxes)
    local_parts = mailboxes["local_part"].to_numpy(dtype=object)
    header = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\nCALSCALE:GREGORIAN\r\n"
    calendar_names = _lines(_cat("X-WR-CALNAME:", _escape_text(_arrow(mailboxes["email"])))).to_pylist()
    written: list[Path] = []
    for drop_date, window_start, window_end in drops:
        upper = _utc_seconds([window_end])[0]
        mailbox, code = catalog.exports(drop_date, window_start, window_end)
        if len(code) == 0:
            continue
        codes = np.unique(code)
        files = np.unique(mailbox)
        bodies = _join_groups(mailbox, catalog.render(codes, upper).take(pa.array(np.searchsorted(codes, code))), files)

        in_zone = catalog.mode[code] == _MODE_ZONE
        used = np.unique(np.c_[mailbox[in_zone], catalog.zone_code[code[in_zone]]], axis=0)  # zone names are sorted
        timezones: dict[int, str] = {}
        for owner, zone in used:
            timezones[owner] = timezones.get(owner, "") + _vtimezone(catalog.zone_names[zone], *catalog.timezone_years)

        folder = Path(out_dir) / "landing" / "calendar" / str(pd.Timestamp(drop_date).date())
        folder.mkdir(parents=True, exist_ok=True)
        for position, owner in enumerate(files):
            path = folder / f"{local_parts[owner]}.ics"
            prefix = header + calendar_names[owner] + timezones.get(owner, "")
            with path.open("wb") as file:
                file.write(prefix.encode("utf-8"))
                file.write(bodies[position].as_buffer())
                file.write(b"END:VCALENDAR\r\n")
            written.append(path)
    return written


# ---------------------------------------------------------------------------------------------------------------------
# faults


def _relative_to_landing(path: Path) -> str:
    parts = path.parts
    if "landing" in parts:
        return "/".join(parts[len(parts) - parts[::-1].index("landing") :])
    return "/".join(parts[-3:])


def _vevent_spans(lines: list[str]) -> list[tuple[int, int]]:
    """(BEGIN:VEVENT index, END:VEVENT index) of each event in a file's physical lines."""
    spans, begin = [], None
    for number, line in enumerate(lines):
        if line == "BEGIN:VEVENT":
            begin = number
        elif line == "END:VEVENT" and begin is not None:
            spans.append((begin, number))
            begin = None
    return spans


def _property_index(lines: list[str], span: tuple[int, int], name: str) -> int | None:
    for number in range(span[0] + 1, span[1]):
        if lines[number].startswith((name + ";", name + ":")):
            return number
    return None


def _uid_of(lines: list[str], span: tuple[int, int]) -> str:
    number = _property_index(lines, span, "UID")
    value = lines[number]
    while number + 1 < span[1] and lines[number + 1].startswith(" "):
        number += 1
        value += lines[number][1:]
    return value.split(":", 1)[1]


def _is_floatable(lines: list[str], span: tuple[int, int]) -> bool:
    """A single timed event (no RRULE or RECURRENCE-ID) whose DTSTART carries a zone."""
    if _property_index(lines, span, "RRULE") is not None or _property_index(lines, span, "RECURRENCE-ID") is not None:
        return False
    start = lines[_property_index(lines, span, "DTSTART")]
    return "VALUE=DATE" not in start and ("TZID=" in start or start.endswith("Z"))


def _without_zone(line: str) -> str:
    name = line.split(";", 1)[0].split(":", 1)[0]
    return f"{name}:{line.rsplit(':', 1)[1].rstrip('Z')}"


def plant_calendar_faults(
    files: list[Path], rng: np.random.Generator, broken_vevents: int, floating_times: int
) -> list[dict]:
    """Damage VEVENTs in written drops and return one manifest row per fault.

    broken_vevent: either DTSTART gets an impossible value (line = the DTSTART line) or END:VEVENT is removed
    (line = the BEGIN:VEVENT of the unclosed event). timestamp_without_zone: a single timed event loses the zone of
    its DTSTART and DTEND (line = the DTSTART line); the event stays valid, its times become floating.
    """
    files = sorted(Path(f) for f in files)
    contents: dict[Path, list[str]] = {}
    used: dict[Path, set[int]] = {}
    plans: list[tuple[Path, int, str, str]] = []  # file, event index, fault type, variant
    wanted = ["broken_vevent"] * broken_vevents + ["timestamp_without_zone"] * floating_times
    attempts = 0
    for fault in wanted:
        while True:
            attempts += 1
            if not files or attempts > 100 * (len(wanted) + 10):
                raise ValueError(f"could not find events to plant {fault} in the given files")
            path = files[int(rng.integers(len(files)))]
            if path not in contents:
                contents[path] = path.read_bytes().decode("utf-8").split("\r\n")
                used[path] = set()
            lines = contents[path]
            spans = _vevent_spans(lines)
            candidates = [i for i, span in enumerate(spans) if i not in used[path]]
            if fault == "timestamp_without_zone":
                candidates = [i for i in candidates if _is_floatable(lines, spans[i])]
            if candidates:
                event = candidates[int(rng.integers(len(candidates)))]
                variant = "missing_end" if fault == "broken_vevent" and rng.random() < 0.5 else "bad_value"
                used[path].add(event)
                plans.append((path, event, fault, variant))
                break

    manifest = []
    for path, lines in contents.items():
        spans = _vevent_spans(lines)
        removed: set[int] = set()
        reported: list[tuple[int, str, str]] = []
        for plan_path, event, fault, variant in plans:
            if plan_path != path:
                continue
            span = spans[event]
            uid = _uid_of(lines, span)
            start = _property_index(lines, span, "DTSTART")
            if fault == "timestamp_without_zone":
                end = _property_index(lines, span, "DTEND")
                lines[start], lines[end] = _without_zone(lines[start]), _without_zone(lines[end])
                reported.append((start, uid, fault))
            elif variant == "missing_end":
                removed.add(span[1])
                reported.append((span[0], uid, fault))
            else:
                parameters = lines[start].rsplit(":", 1)[0]
                lines[start] = f"{parameters}:{lines[start].rsplit(':', 1)[1][:4]}-13-45T99"
                reported.append((start, uid, fault))
        kept = [line for number, line in enumerate(lines) if number not in removed]
        path.write_bytes("\r\n".join(kept).encode("utf-8"))
        for number, uid, fault in reported:
            line = number + 1 - sum(1 for gone in removed if gone < number)
            manifest.append(
                {
                    "source": "calendar",
                    "file": _relative_to_landing(path),
                    "line": line,
                    "record_id": uid,
                    "fault_type": fault,
                }
            )
    return sorted(manifest, key=lambda row: (row["file"], row["line"]))
