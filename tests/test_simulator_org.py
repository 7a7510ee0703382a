"""The organisation: sales models, seats and the people who hold them, quotas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.config import load_config
from simulator.customers import build_customers
from simulator.org import build_organisation
from simulator.phones import PhoneBook


def organisation_and_customers(sales_model: str):
    cfg = load_config("tiny", sales_model=sales_model, ae_seats_per_territory=2)
    org = build_organisation(cfg, np.random.default_rng(1))
    customers = build_customers(cfg, org, PhoneBook(1), np.random.default_rng(2))
    return cfg, org, customers


def test_the_island_model_has_only_account_executives_under_managers() -> None:
    _, org, customers = organisation_and_customers("island")
    assert set(org.seats.role) == {"AE"}
    accounts = customers.accounts
    assert (accounts.ae_seat == accounts.am_seat).all() and (accounts.ae_seat == accounts.sdr_seat).all()


def test_the_pods_model_serves_each_account_with_one_pods_sdr_ae_and_am() -> None:
    _, org, customers = organisation_and_customers("pods")
    counts = org.seats.groupby(["territory_index", "role"]).size().unstack()
    assert (counts.AE == counts.SDR).all() and (counts.AE == counts.AM).all()
    pod = org.seats.set_index("seat_index")[["territory_index", "pod_index"]]
    for role in ("sdr_seat", "am_seat"):
        same = pod.loc[customers.accounts[role]].to_numpy() == pod.loc[customers.accounts.ae_seat].to_numpy()
        assert same.all()


def test_the_assembly_line_has_sdrs_aes_and_ams_in_every_territory() -> None:
    cfg, org, _ = organisation_and_customers("assembly_line")
    per_territory = org.seats.groupby("territory_index").role.apply(set)
    assert (per_territory == {"SDR", "AE", "AM"}).all()
    assert len(per_territory) == len(cfg.regions) * len(cfg.segments)


def test_an_unknown_sales_model_is_refused() -> None:
    with pytest.raises(ValueError, match="island, assembly_line or pods"):
        organisation_and_customers("solo")


def test_a_seat_has_exactly_one_holder_at_any_moment_and_successors_follow_departures() -> None:
    _, org, _ = organisation_and_customers("assembly_line")
    users = org.users
    for seat in org.seats.seat_index:
        start, end = org.seat_start[seat], org.seat_start[seat + 1]
        holders = org.tenure_user[start:end]
        leaves = users.termination_date.to_numpy()[holders[:-1]].astype("datetime64[s]")
        assert (org.tenure_from[start + 1 : end] == leaves).all()
        probe = np.array([np.datetime64("2024-03-01T12:00:00")])
        assert org.holders(np.array([seat]), probe)[0] in holders


def test_quotas_are_quarterly_per_ae_and_am_and_per_team(tiny_world: Path) -> None:
    quotas = pd.concat(
        [pd.read_csv(p, dtype=str) for p in sorted((tiny_world / "landing/reference").glob("*/quotas.csv"))]
    )
    users = pd.concat([pd.read_csv(p, dtype=str) for p in (tiny_world / "landing/crm").glob("*/User.csv")])
    role = users.drop_duplicates("Id").set_index("Id").Sales_Role__c
    individual = quotas[quotas.quota_type == "individual"]
    team = quotas[quotas.quota_type == "team"]
    assert set(role.reindex(individual.owner_id).dropna()) == {"AE", "AM"}
    assert set(role.reindex(team.owner_id).dropna()) == {"Manager"}
    assert quotas.fiscal_period.str.fullmatch(r"FY\d{4}-Q[1-4]").all()
    assert (pd.to_datetime(quotas.period_end) - pd.to_datetime(quotas.period_start)).dt.days.between(88, 91).all()
    team_total = team.quota_amount.astype(float).sum()
    assert abs(team_total - individual.quota_amount.astype(float).sum()) < 1000 * len(individual)
