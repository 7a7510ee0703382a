"""Accounts and their contacts: the customer pool that leads, deals and activities draw on.

The pool depends only on the config and seed, never on how far the world has been run, so `advance` sees the same
accounts as `generate` did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.config import WorldConfig
from simulator.ids import salesforce_ids
from simulator.names import company_names, email_local_part, person_names
from simulator.org import Organisation
from simulator.phones import PhoneBook

CONTACT_TITLES = (
    "CEO", "CFO", "CTO", "VP Operations", "VP Sales", "Head of IT", "IT Manager", "Procurement Manager",
    "Director of Finance", "Operations Manager", "Data Analyst", "Engineering Manager", "Office Manager",
)  # fmt: skip
COUNTRY_NAMES = {
    "US": "United States", "CA": "Canada", "GB": "United Kingdom", "DE": "Germany", "FR": "France",
    "NL": "Netherlands", "AU": "Australia", "SG": "Singapore", "JP": "Japan",
}  # fmt: skip
_BAND_EMPLOYEES = {
    "1-10": (2, 10), "11-50": (11, 50), "51-200": (51, 200), "201-500": (201, 500), "501-1000": (501, 1000),
    "1001-5000": (1001, 5000), "5001-10000": (5001, 10000), "10000+": (10001, 60000),
}  # fmt: skip


@dataclass
class Customers:
    accounts: pd.DataFrame
    contacts: pd.DataFrame
    contact_offset: np.ndarray  # contacts of account a are rows contact_offset[a]:contact_offset[a+1]


def pick_by_share(shares: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Index of the category each uniform draw falls in, given category shares."""
    cumulative = np.cumsum(shares) / np.sum(shares)
    return np.minimum(np.searchsorted(cumulative, draws, side="right"), len(shares) - 1)


def country_and_region(cfg: WorldConfig, draws_region: np.ndarray, draws_country: np.ndarray):
    region_index = pick_by_share(np.array([r.share_of_accounts for r in cfg.regions]), draws_region)
    countries = np.empty(len(draws_region), dtype=object)
    for r, region in enumerate(cfg.regions):
        mask = region_index == r
        codes = np.array(list(region.countries), dtype=object)
        shares = np.array([v[0] for v in region.countries.values()])
        countries[mask] = codes[pick_by_share(shares, draws_country[mask])]
    return region_index, countries


def currency_of(cfg: WorldConfig, countries: np.ndarray) -> np.ndarray:
    lookup = {code: v[1] for region in cfg.regions for code, v in region.countries.items()}
    return np.array([lookup[c] for c in countries], dtype=object)


def build_customers(cfg: WorldConfig, org: Organisation, phones: PhoneBook, rng: np.random.Generator) -> Customers:
    n = cfg.accounts
    start = np.datetime64(cfg.start_date, "s")
    region_index, countries = country_and_region(cfg, rng.random(n), rng.random(n))
    segment_index = pick_by_share(np.array([s.share_of_accounts for s in cfg.segments]), rng.random(n))
    sub = rng.integers(0, cfg.territories_per_region_segment, n)
    territory_index = (region_index * len(cfg.segments) + segment_index) * cfg.territories_per_region_segment + sub

    seats = org.seats
    account_seat = {}
    for role in ("AE", "AM", "SDR"):
        table = seats[seats.role == role].sort_values(["territory_index", "pod_index"])
        per_territory = table.groupby("territory_index").seat_index.apply(np.array).to_dict()
        pick = rng.random(n)
        chosen = np.full(n, -1)
        for t, options in per_territory.items():
            mask = territory_index == t
            chosen[mask] = options[(pick[mask] * len(options)).astype(int)]
        account_seat[role] = chosen
    if cfg.sales_model == "pods":  # one pod serves the account end to end
        pod_of_ae = seats.set_index("seat_index").pod_index
        for role in ("AM", "SDR"):
            lookup = seats[seats.role == role].set_index(["territory_index", "pod_index"]).seat_index
            account_seat[role] = lookup.loc[
                list(zip(territory_index, pod_of_ae.loc[account_seat["AE"]], strict=True))
            ].to_numpy()
    if cfg.sales_model == "island":
        account_seat["AM"] = account_seat["AE"]
        account_seat["SDR"] = account_seat["AE"]

    before = rng.random(n) < cfg.accounts_created_before_start
    created = np.where(
        before,
        start - rng.integers(1, 3 * 365 * 86400, n).astype("timedelta64[s]"),
        start + rng.integers(0, cfg.history_days * 86400, n).astype("timedelta64[s]"),
    )
    order = np.argsort(created, kind="stable")  # ids follow creation order, as in a real org

    names, domains = company_names(countries, rng)
    employee_band = np.empty(n, dtype=object)
    employees = np.zeros(n, dtype=np.int64)
    for s, segment in enumerate(cfg.segments):
        mask = segment_index == s
        bands = np.array(segment.employee_bands, dtype=object)
        employee_band[mask] = bands[rng.integers(0, len(bands), mask.sum())]
    for band, (lo, hi) in _BAND_EMPLOYEES.items():
        mask = employee_band == band
        employees[mask] = rng.integers(lo, hi + 1, mask.sum())
    hq_phone_e164, hq_phone = phones.draw(countries, rng, kind="fixed")

    accounts = pd.DataFrame(
        {
            "account_id": salesforce_ids("Account", np.arange(n) + 1),
            "name": names[order],
            "domain": domains[order],
            "country": countries[order],
            "region": np.array([r.name for r in cfg.regions], dtype=object)[region_index[order]],
            "region_index": region_index[order],
            "segment": np.array([s.name for s in cfg.segments], dtype=object)[segment_index[order]],
            "segment_index": segment_index[order],
            "territory_index": territory_index[order],
            "industry": np.array(cfg.industries, dtype=object)[rng.integers(0, len(cfg.industries), n)],
            "employee_band": employee_band[order],
            "employees": employees[order],
            "phone": hq_phone[order],
            "phone_e164": hq_phone_e164[order],
            "currency": currency_of(cfg, countries[order]),
            "ae_seat": account_seat["AE"][order],
            "am_seat": account_seat["AM"][order],
            "sdr_seat": account_seat["SDR"][order],
            "created_at": created[order],
        }
    )
    contacts, offset = _contacts(cfg, accounts, phones, rng)
    return Customers(accounts, contacts, offset)


def _contacts(cfg: WorldConfig, accounts: pd.DataFrame, phones: PhoneBook, rng: np.random.Generator):
    lo = np.array([cfg.segments[s].contacts_per_account[0] for s in accounts.segment_index])
    hi = np.array([cfg.segments[s].contacts_per_account[1] for s in accounts.segment_index])
    counts = rng.integers(lo, hi + 1)
    offset = np.concatenate([[0], np.cumsum(counts)])
    m = int(offset[-1])
    account_row = np.repeat(np.arange(len(accounts)), counts)
    countries = accounts.country.to_numpy()[account_row]
    first, last = person_names(countries, rng)
    local = email_local_part(first, last, rng.integers(0, 3, m))
    domain = accounts.domain.to_numpy()[account_row]
    email = pd.Series(local) + "@" + pd.Series(domain)
    email = email.where(~email.duplicated(), pd.Series(local) + "2@" + pd.Series(domain))
    phone_e164, phone = phones.draw(countries, rng, kind="fixed")
    has_mobile = rng.random(m) < 0.45
    mobile_e164, mobile = phones.draw(countries, rng, kind="mobile")
    # contacts come in with their account (deals start at least a day after the account exists)
    created = accounts.created_at.to_numpy()[account_row] + rng.integers(60, 20 * 3600, m).astype("timedelta64[s]")
    frame = pd.DataFrame(
        {
            "account_row": account_row,
            "first_name": first,
            "last_name": last,
            "email": email.to_numpy(),
            "title": np.array(CONTACT_TITLES, dtype=object)[rng.integers(0, len(CONTACT_TITLES), m)],
            "phone": phone,
            "phone_e164": phone_e164,
            "mobile": np.where(has_mobile, mobile, ""),
            "mobile_e164": np.where(has_mobile, mobile_e164, ""),
            "country": countries,
            "created_at": created,
        }
    )
    frame["contact_number"] = np.arange(m)
    id_order = np.argsort(np.argsort(created, kind="stable"), kind="stable")
    frame["contact_id"] = salesforce_ids("Contact", id_order + 1)
    return frame, offset
