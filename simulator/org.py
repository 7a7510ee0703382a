"""The sales organisation: territories, seats, the people who hold them over time, and their managers.

Work is organised in *seats*: an AE, SDR or AM position in one territory. A seat is held by one rep at a time; when
a rep leaves, the seat's accounts and open deals pass to the successor, who starts `backfill_days` later and ramps
up. Modelling seats rather than people keeps account ownership non-overlapping at every moment and makes "who owned
this deal on day D" a lookup instead of a simulation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.config import WorldConfig
from simulator.ids import salesforce_ids
from simulator.names import email_local_part, person_names

COMPANY_DOMAIN = "northwind-sales.example"
_TENURE_HORIZON_DAYS = 365 * 15  # long enough that no `advance` runs out of seat holders
_TITLES = {
    "SDR": "Sales Development Representative",
    "AE": "Account Executive",
    "AM": "Account Manager",
    "Manager": "Sales Manager",
    "Director": "Regional Sales Director",
    "VP": "VP of Sales",
}


@dataclass
class Organisation:
    territories: pd.DataFrame  # territory_id, name, region, segment, team_index
    seats: pd.DataFrame  # seat_index, territory_index, role, pod_index
    users: pd.DataFrame  # one row per person ever employed, managers included
    user_roles: pd.DataFrame  # Salesforce UserRole hierarchy
    # holder lookup: for seat s, tenures[seat_start[s]:seat_start[s+1]] are its holders in time order
    tenure_user: np.ndarray
    tenure_from: np.ndarray  # datetime64[s]: the holder owns the seat from this instant ...
    seat_start: np.ndarray

    def holders(self, seats: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Index into `users` of the holder of each seat at each instant (vectorized)."""
        seats = np.asarray(seats)
        at = np.asarray(at, dtype="datetime64[s]")
        # tenures are sorted by (seat, from): search within the seat's slice by offsetting time with the seat
        key = self.tenure_key
        probe = seats.astype(np.int64) * _SEAT_STRIDE + (at.astype(np.int64) - _EPOCH)
        position = np.searchsorted(key, probe, side="right") - 1
        return self.tenure_user[position]

    def holder_changes(self, seats: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (row, tenure position) for every change of holder strictly inside (start, end) of each row."""
        key = self.tenure_key
        base = seats.astype(np.int64) * _SEAT_STRIDE - _EPOCH
        lo = np.searchsorted(key, base + start.astype("datetime64[s]").astype(np.int64), side="right")
        hi = np.searchsorted(key, base + end.astype("datetime64[s]").astype(np.int64), side="left")
        counts = np.maximum(hi - lo, 0)
        rows = np.repeat(np.arange(len(seats)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return rows, np.repeat(lo, counts) + offsets

    @functools.cached_property
    def tenure_key(self) -> np.ndarray:
        """Sorted search key of every tenure: seat, then start instant (computed once; every lookup uses it)."""
        seat_of_tenure = np.repeat(np.arange(len(self.seat_start) - 1), np.diff(self.seat_start))
        return seat_of_tenure.astype(np.int64) * _SEAT_STRIDE + (self.tenure_from.astype(np.int64) - _EPOCH)


_EPOCH = np.datetime64("1990-01-01T00:00:00", "s").astype(np.int64)
_SEAT_STRIDE = np.int64(10**10)  # seconds: ~300 years between seats in the search key


def build_organisation(cfg: WorldConfig, rng: np.random.Generator) -> Organisation:
    territories = _territories(cfg)
    seats = _seats(cfg, territories)
    users, tenure_user, tenure_from, seat_start = _staff(cfg, territories, seats, rng)
    roles = _user_roles(cfg, territories)
    users = users.merge(roles[["team_key", "role_kind", "user_role_id"]], on=["team_key", "role_kind"], how="left")
    users = users.drop(columns=["team_key", "role_kind"])
    return Organisation(territories, seats, users, roles, tenure_user, tenure_from, seat_start)


def _territories(cfg: WorldConfig) -> pd.DataFrame:
    rows = []
    for region in cfg.regions:
        for segment in cfg.segments:
            for k in range(cfg.territories_per_region_segment):
                suffix = f"-{k + 1:02d}" if cfg.territories_per_region_segment > 1 else ""
                code = segment.name.replace("-", "").upper()[:3]
                rows.append(
                    {
                        "territory_id": f"TERR-{region.name}-{code}{suffix}",
                        "name": f"{region.name} {segment.name}{suffix.replace('-', ' ')}",
                        "region": region.name,
                        "segment": segment.name,
                    }
                )
    frame = pd.DataFrame(rows)
    frame["team_index"] = np.arange(len(frame))
    return frame


def _seats(cfg: WorldConfig, territories: pd.DataFrame) -> pd.DataFrame:
    n_ae = cfg.ae_seats_per_territory
    if cfg.sales_model == "island":
        per_role = {"AE": n_ae}
    elif cfg.sales_model == "pods":
        per_role = {"SDR": n_ae, "AE": n_ae, "AM": n_ae}
    elif cfg.sales_model == "assembly_line":
        per_role = {"SDR": cfg.sdr_seats_per_territory, "AE": n_ae, "AM": cfg.am_seats_per_territory}
    else:
        raise ValueError(f"unknown sales_model {cfg.sales_model!r}: use island, assembly_line or pods")
    rows = [
        {"territory_index": t, "role": role, "pod_index": k}
        for t in range(len(territories))
        for role, count in per_role.items()
        for k in range(count)
    ]
    seats = pd.DataFrame(rows)
    seats["seat_index"] = np.arange(len(seats))
    return seats


def _staff(cfg: WorldConfig, territories: pd.DataFrame, seats: pd.DataFrame, rng: np.random.Generator):
    start = np.datetime64(cfg.start_date, "D")
    horizon = start + np.timedelta64(_TENURE_HORIZON_DAYS, "D")
    daily_leave = cfg.annual_attrition / 365.0
    people = []  # (seat or -1, role, territory_index or -1, region, hire, termination, manager key)
    tenure_user, tenure_from, seat_start = [], [], [0]

    # management chain: VP -> regional directors -> one front-line manager per territory (team)
    vp = _person(people, "VP", -1, "", start - rng.integers(400, 2000), None, None)
    directors = {}
    for region in cfg.regions:
        directors[region.name] = _person(people, "Director", -1, region.name, start - rng.integers(300, 1500), None, vp)
    managers = []
    for t, territory in territories.iterrows():
        managers.append(
            _person(
                people,
                "Manager",
                t,
                territory.region,
                start - rng.integers(200, 1500),
                None,
                directors[territory.region],
            )
        )

    for seat in seats.itertuples():
        region = territories.region.iat[seat.territory_index]
        hire = start - np.timedelta64(int(rng.integers(30, 1500)), "D")
        owns_seat_from = np.datetime64("1990-01-02")  # the first holder owns the seat from the beginning of time
        while hire < horizon:
            stay = int(rng.exponential(1 / daily_leave)) + 60
            leave = hire + np.timedelta64(stay, "D")
            person = _person(
                people,
                seat.role,
                seat.territory_index,
                region,
                hire,
                leave if leave < horizon else None,
                managers[seat.territory_index],
                seat.seat_index,
            )
            tenure_user.append(person)
            tenure_from.append(owns_seat_from)
            owns_seat_from = leave  # the successor takes over the accounts the day the predecessor leaves
            backfill = int(rng.integers(cfg.backfill_days[0], cfg.backfill_days[1] + 1))
            hire = leave + np.timedelta64(max(backfill, 1), "D")
        seat_start.append(len(tenure_user))

    users = pd.DataFrame(
        people,
        columns=["role", "territory_index", "region", "hire_date", "termination_date", "manager_index", "seat_index"],
    )
    n = len(users)
    users["user_index"] = np.arange(n)
    users["user_id"] = salesforce_ids("User", np.arange(n) + 1)
    country_by_region = {r.name: r for r in cfg.regions}
    countries, zones = [], []
    pick = rng.random(n)
    for i, region_name in enumerate(users.region):
        region = country_by_region.get(region_name) or cfg.regions[0]
        codes = list(region.countries)
        shares = np.array([region.countries[c][0] for c in codes])
        code = codes[int(np.searchsorted(np.cumsum(shares) / shares.sum(), pick[i]))]
        tz_options = region.countries[code][2]
        countries.append(code)
        zones.append(tz_options[i % len(tz_options)])
    users["country"] = countries
    users["timezone"] = zones
    first, last = person_names(users.country.to_numpy(), rng)
    users["first_name"], users["last_name"] = first, last
    local = email_local_part(first, last, np.zeros(n, dtype=int))
    users["email"] = [
        f"{name}{i}@{COMPANY_DOMAIN}" if dup else f"{name}@{COMPANY_DOMAIN}"
        for i, (name, dup) in enumerate(zip(local, pd.Series(local).duplicated(), strict=True))
    ]
    users["title"] = users.role.map(_TITLES)
    manager = users.manager_index.fillna(-1).astype(int).to_numpy()
    users["manager_user_id"] = np.where(manager >= 0, users.user_id.to_numpy()[manager], None)
    users["skill"] = rng.normal(0.0, cfg.skill_sd, n)
    users["optimism"] = rng.normal(0.0, cfg.optimism_sd, n)
    users["team_key"] = [
        f"T{t}" if t >= 0 else (f"R{r}" if r else "VP")
        for t, r in zip(users.territory_index, users.region, strict=True)
    ]
    users["role_kind"] = np.where(users.role.isin(["Manager", "Director", "VP"]), "lead", "rep")
    users["team_id"] = users.manager_user_id.where(users.role.isin(["SDR", "AE", "AM"]), users.user_id)
    return (users, np.array(tenure_user), np.array(tenure_from, dtype="datetime64[s]"), np.array(seat_start))


def _person(people: list, role: str, territory: int, region: str, hire, termination, manager, seat: int = -1) -> int:
    people.append(
        (
            role,
            territory,
            region,
            np.datetime64(hire, "D"),
            None if termination is None else np.datetime64(termination, "D"),
            manager,
            seat,
        )
    )
    return len(people) - 1


def _user_roles(cfg: WorldConfig, territories: pd.DataFrame) -> pd.DataFrame:
    rows = [{"team_key": "VP", "role_kind": "lead", "name": "VP Sales", "parent": None}]
    for region in cfg.regions:
        rows.append(
            {"team_key": f"R{region.name}", "role_kind": "lead", "name": f"Director {region.name}", "parent": "VP"}
        )
    for t, territory in territories.iterrows():
        rows.append(
            {
                "team_key": f"T{t}",
                "role_kind": "lead",
                "name": f"Manager {territory['name']}",
                "parent": f"R{territory.region}",
            }
        )
        rows.append(
            {"team_key": f"T{t}", "role_kind": "rep", "name": f"Rep {territory['name']}", "parent": f"T{t}:lead"}
        )
    roles = pd.DataFrame(rows)
    roles["user_role_id"] = salesforce_ids("UserRole", np.arange(len(roles)) + 1)
    lead_role_of_team = dict(
        zip(roles.team_key[roles.role_kind == "lead"], roles.user_role_id[roles.role_kind == "lead"], strict=True)
    )
    roles["parent_role_id"] = [lead_role_of_team[p.split(":")[0]] if isinstance(p, str) else None for p in roles.parent]
    roles["developer_name"] = roles.name.str.replace(r"[^A-Za-z0-9]+", "_", regex=True)
    return roles.drop(columns=["parent"])


def in_ramp(hire: np.ndarray, at: np.ndarray, ramp_days: int) -> np.ndarray:
    """Fraction of ramp still ahead of a rep at each instant: 1 on the first day, 0 after `ramp_days`."""
    tenure = (np.asarray(at, dtype="datetime64[D]") - np.asarray(hire, dtype="datetime64[D]")).astype(np.int64)
    return np.clip(1.0 - tenure / ramp_days, 0.0, 1.0)
