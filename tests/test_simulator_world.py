"""The simulated world: deterministic, referentially whole, realistic, calibrated, and readable by real libraries."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import shutil
from pathlib import Path

import duckdb
import icalendar
import numpy as np
import pandas as pd
import phonenumbers
import pytest
import recurring_ical_events

from simulator.__main__ import main as simulator_main
from simulator.world import Progress, WorldState, advance, generate

from .conftest import SEED

CRM_OBJECTS = ("UserRole", "User", "Account", "Contact", "Lead", "Opportunity", "OpportunityHistory", "Task", "Event")


def crm(world: Path, sobject: str) -> pd.DataFrame:
    """Every row of one CRM object across all drops, with the drop it came in."""
    frames = []
    for path in sorted((world / "landing" / "crm").glob(f"*/{sobject}.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame["_drop"] = path.parent.name
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def latest(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["_drop", "SystemModstamp"]).drop_duplicates("Id", keep="last")


def calls(world: Path) -> pd.DataFrame:
    return pd.concat(
        [pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted((world / "landing/phone").glob("*/*.csv"))],
        ignore_index=True,
    )


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- determinism and the CLI


def test_the_same_seed_writes_byte_identical_files(tiny_world: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate("tiny", SEED, again, progress=Progress(quiet=True))
    assert digest(again / "landing") == digest(tiny_world / "landing")
    assert digest(again / "truth") == digest(tiny_world / "truth")


def test_another_seed_writes_another_world(tiny_world: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate("tiny", SEED + 1, other, progress=Progress(quiet=True))
    a = (tiny_world / "truth/opportunity_outcomes.csv").read_bytes()
    assert (other / "truth/opportunity_outcomes.csv").read_bytes() != a


def test_generate_refuses_to_overwrite_an_existing_world(tiny_world: Path, capsys) -> None:
    assert simulator_main(["generate", "--preset", "tiny", "--out", str(tiny_world), "--quiet"]) == 2
    assert "already holds files" in capsys.readouterr().err


def test_drops_are_dated_folders_per_source(tiny_world: Path) -> None:
    landing = tiny_world / "landing"
    assert sorted(p.name for p in landing.iterdir()) == ["calendar", "crm", "phone", "reference"]
    state = WorldState.read(tiny_world)
    crm_days = sorted(p.name for p in (landing / "crm").iterdir())
    assert crm_days == [d.isoformat() for d in state.drops]
    for day in crm_days:
        setup_objects = ["OpportunityStage"] if day == crm_days[0] else []  # exported once, with the first drop
        assert sorted(p.stem for p in (landing / "crm" / day).glob("*.csv")) == sorted([*CRM_OBJECTS, *setup_objects])


def test_advance_writes_only_the_new_daily_drop_and_keeps_the_old_files(
    tiny_world: Path, tiny_world_next_day: Path
) -> None:
    world = tiny_world_next_day  # tiny_world after `advance(world, 1)`
    before = digest(tiny_world / "landing")
    end_before = WorldState.read(tiny_world).current_end
    after = digest(world / "landing")
    new_day = (end_before + pd.Timedelta(days=1)).isoformat()
    assert {k: v for k, v in after.items() if k in before} == before
    new_files = set(after) - set(before)
    assert new_files and all(f"/{new_day}/" in f"/{name}" for name in new_files)
    assert {Path(name).parts[0] for name in new_files} >= {"crm", "phone"}
    assert WorldState.read(world).current_end.isoformat() == new_day
    # the new drop continues the same world: deals it updates were created in earlier drops
    new_opps = pd.read_csv(world / "landing/crm" / new_day / "Opportunity.csv", dtype=str)
    known = set(crm(tiny_world, "Opportunity").Id)
    updated = new_opps.Id.isin(known)
    assert updated.any()
    assert new_opps.CreatedDate[~updated].str.startswith(new_day).all()


def test_advance_continues_the_truth_it_already_wrote(tiny_world: Path, tmp_path: Path) -> None:
    world = tmp_path / "moving_truth"
    shutil.copytree(tiny_world, world)
    advance(world, 3, progress=Progress(quiet=True))
    old = pd.read_csv(tiny_world / "truth/opportunity_outcomes.csv", dtype=str)
    new = pd.read_csv(world / "truth/opportunity_outcomes.csv", dtype=str)
    merged = old.merge(new, on="opportunity_id", suffixes=("_old", "_new"))
    assert len(merged) == len(old)
    assert (merged.outcome_old == merged.outcome_new).all()
    assert (merged.true_p_win_at_creation_old == merged.true_p_win_at_creation_new).all()


# ---------------------------------------------------------------- referential integrity


def test_every_reference_between_crm_records_resolves(tiny_world: Path) -> None:
    users = set(crm(tiny_world, "User").Id)
    roles = set(crm(tiny_world, "UserRole").Id)
    accounts = set(crm(tiny_world, "Account").Id)
    contacts = set(crm(tiny_world, "Contact").Id)
    leads = set(crm(tiny_world, "Lead").Id)
    opportunities = set(crm(tiny_world, "Opportunity").Id)

    def resolves(values: pd.Series, targets: set[str]) -> bool:
        present = values[values != ""]
        missing = set(present) - targets
        assert not missing, f"{len(missing)} unresolved, e.g. {sorted(missing)[:3]}"
        return True

    user = crm(tiny_world, "User")
    assert resolves(user.ManagerId, users) and resolves(user.UserRoleId, roles)
    assert resolves(crm(tiny_world, "UserRole").ParentRoleId, roles)
    assert resolves(crm(tiny_world, "Account").OwnerId, users)
    contact = crm(tiny_world, "Contact")
    assert resolves(contact.AccountId, accounts) and resolves(contact.OwnerId, users)
    lead = crm(tiny_world, "Lead")
    assert resolves(lead.OwnerId, users) and resolves(lead.ConvertedAccountId, accounts)
    assert resolves(lead.ConvertedContactId, contacts) and resolves(lead.ConvertedOpportunityId, opportunities)
    opportunity = crm(tiny_world, "Opportunity")
    assert resolves(opportunity.AccountId, accounts) and resolves(opportunity.OwnerId, users)
    assert resolves(opportunity.Sourced_By__c, users)
    assert resolves(crm(tiny_world, "OpportunityHistory").OpportunityId, opportunities)
    for sobject in ("Task", "Event"):
        activity = crm(tiny_world, sobject)
        assert resolves(activity.OwnerId, users)
        assert resolves(activity.WhoId, contacts | leads)
        assert resolves(activity.WhatId, opportunities | accounts)


def test_records_are_exported_no_earlier_than_they_exist(tiny_world: Path) -> None:
    opportunity = crm(tiny_world, "Opportunity")
    assert (opportunity.CreatedDate.str[:10] <= opportunity._drop).all()
    assert (opportunity.LastModifiedDate.str[:10] <= opportunity._drop).all()
    history = crm(tiny_world, "OpportunityHistory")
    first_seen = opportunity.groupby("Id")._drop.min()
    assert (history._drop.to_numpy() >= first_seen.loc[history.OpportunityId].to_numpy()).all()


def test_call_records_and_calendars_belong_to_known_reps(tiny_world: Path) -> None:
    emails = set(crm(tiny_world, "User").Email)
    assert set(calls(tiny_world).user_email) <= emails
    mailboxes = {p.stem for p in (tiny_world / "landing/calendar").glob("*/*.ics")}
    assert mailboxes <= {e.split("@")[0] for e in emails}


def test_every_territory_holds_each_account_exactly_once(tiny_world: Path) -> None:
    accounts = latest(crm(tiny_world, "Account"))
    territories = pd.read_csv(
        next((tiny_world / "landing/reference").glob("*/territories.csv")), dtype=str, keep_default_na=False
    )
    assert accounts.Territory__c.isin(set(territories.territory_id)).all()
    assert accounts.groupby("Id").Territory__c.nunique().max() == 1
    joined = accounts.merge(territories, left_on="Territory__c", right_on="territory_id")
    assert (joined.Segment__c == joined.segment).all() and (joined.Region__c == joined.region).all()


def test_the_manager_chain_is_at_least_two_levels_deep(tiny_world: Path) -> None:
    users = latest(crm(tiny_world, "User")).set_index("Id")
    depth = {}
    for user_id in users.index:
        steps, current = 0, user_id
        while users.at[current, "ManagerId"]:
            current = users.at[current, "ManagerId"]
            steps += 1
        depth[user_id] = steps
    reps = users[users.Sales_Role__c.isin(["SDR", "AE", "AM"])]
    assert min(depth[r] for r in reps.index) >= 3  # rep -> manager -> director -> VP


def test_departed_reps_hand_their_open_deals_to_a_successor(tiny_world: Path) -> None:
    users = latest(crm(tiny_world, "User"))
    departed = set(users.Id[users.IsActive == "false"])
    assert departed, "the tiny preset has attrition high enough for someone to leave"
    opportunity = crm(tiny_world, "Opportunity")
    owners = opportunity.groupby("Id").OwnerId.agg(["first", "last", "nunique"])
    handed_over = owners[(owners["nunique"] > 1) & owners["first"].isin(departed)]
    assert len(handed_over) > 0
    assert not handed_over["last"].isin(departed).any()


# ---------------------------------------------------------------- realism


def test_the_funnel_narrows_stage_by_stage(tiny_world: Path) -> None:
    entries = pd.read_csv(tiny_world / "truth/stage_entries.csv")
    reached = entries.groupby("stage_number").opportunity_id.nunique().sort_index()
    assert list(reached.index[:4]) == [1, 2, 3, 4]
    assert reached.is_monotonic_decreasing and reached.iloc[3] < 0.7 * reached.iloc[0]


def test_the_win_rate_is_in_a_plausible_band(tiny_world: Path) -> None:
    outcomes = pd.read_csv(tiny_world / "truth/opportunity_outcomes.csv")
    closed = outcomes[outcomes.is_closed_as_of_end]
    win_rate = (closed.outcome == "Closed Won").mean()
    assert 0.15 <= win_rate <= 0.45


@pytest.mark.slow
def test_bookings_peak_at_quarter_end(demo_like_truth: Path) -> None:
    bookings = pd.read_csv(demo_like_truth / "bookings.csv", parse_dates=["booking_date"])
    days = bookings.set_index("booking_date").bookings_amount
    quarter_end = days.index.to_period("Q-JAN").end_time.normalize()
    last_week = (quarter_end - days.index).days < 7
    assert days[last_week].mean() > 1.8 * days[~last_week].mean()


def test_engaged_deals_win_more_often(tiny_world: Path) -> None:
    tasks = crm(tiny_world, "Task")
    logged = tasks[(tasks.TaskSubtype == "Call") & tasks.WhatId.str.startswith("006")]
    connect = logged.assign(connected=logged.CallDisposition == "Connected").groupby("WhatId").connected.mean()
    outcomes = pd.read_csv(tiny_world / "truth/opportunity_outcomes.csv").set_index("opportunity_id")
    closed = outcomes[outcomes.is_closed_as_of_end]
    rate = connect.reindex(closed.index).dropna()
    won = closed.loc[rate.index].outcome == "Closed Won"
    assert rate[won].mean() > rate[~won].mean() + 0.05


def test_deal_amounts_are_heavy_tailed_and_in_three_currencies(tiny_world: Path) -> None:
    opportunity = latest(crm(tiny_world, "Opportunity"))
    assert set(opportunity.CurrencyIsoCode) == {"USD", "EUR", "GBP"}
    amount = opportunity.Amount.astype(float)
    assert amount.quantile(0.99) > 8 * amount.median()


def test_close_dates_slip_and_amounts_change_in_history(tiny_world: Path) -> None:
    history = crm(tiny_world, "OpportunityHistory")
    per_deal = history.groupby("OpportunityId").agg(
        close_dates=("CloseDate", "nunique"),
        amounts=("Amount", "nunique"),
        closed=("StageName", lambda stage: stage.str.startswith("Closed").any()),
    )
    closed = per_deal[per_deal.closed]
    assert (closed.close_dates > 2).mean() > 0.2  # the planned date, at least one push, the actual date
    assert (per_deal.amounts > 1).mean() > 0.1
    assert set(history.ForecastCategory) <= {"Pipeline", "BestCase", "Forecast", "Omitted", "Closed"}


def test_some_crm_activities_are_the_same_call_or_meeting_as_in_the_other_sources(tiny_world: Path) -> None:
    links = pd.read_csv(tiny_world / "truth/activity_links.csv")
    cdr_ids = set(calls(tiny_world).call_id)
    phone = links[links.source == "phone"]
    assert phone.source_id.isin(cdr_ids).mean() > 0.95
    tasks = crm(tiny_world, "Task")
    cti = tasks[tasks.CallObject != ""]
    assert len(cti) > 0 and cti.CallObject.isin(cdr_ids).all()
    assert (links.source == "calendar").sum() > 0


def test_some_calls_go_to_numbers_in_no_crm_record(tiny_world: Path) -> None:
    known = set()
    for sobject, columns in {"Contact": ["Phone", "MobilePhone"], "Lead": ["Phone"], "Account": ["Phone"]}.items():
        frame = crm(tiny_world, sobject)
        for column in columns:
            for value, country in zip(frame[column], frame.get("MailingCountry", frame.get("Country",
                                      frame.get("BillingCountryCode"))), strict=True):  # fmt: skip
                if value:
                    known.add(phonenumbers.format_number(phonenumbers.parse(value, country),
                                                         phonenumbers.PhoneNumberFormat.E164))  # fmt: skip
    rep_numbers = set(crm(tiny_world, "User").Phone)
    records = calls(tiny_world)
    external = np.where(records.direction == "outbound", records.to_number, records.from_number)
    external = pd.Series(["+" + n.lstrip("+") for n in external])
    unknown = ~external.isin(known | rep_numbers)
    assert 0.01 < unknown.mean() < 0.15


# ---------------------------------------------------------------- the truth is calibrated


@pytest.mark.slow
@pytest.mark.parametrize("table,column", [("opportunity_outcomes", "true_p_win_at_creation"),
                                          ("stage_entries", "true_p_win")])  # fmt: skip
def test_true_win_probabilities_match_observed_win_rates(demo_like_truth: Path, table: str, column: str) -> None:
    outcomes = pd.read_csv(demo_like_truth / "opportunity_outcomes.csv")
    frame = pd.read_csv(demo_like_truth / f"{table}.csv")
    if table != "opportunity_outcomes":
        frame = frame.merge(outcomes[["opportunity_id", "outcome"]], on="opportunity_id")
    won = (frame.outcome == "Closed Won").to_numpy()
    p = frame[column].to_numpy()
    bins = np.minimum((p * 10).astype(int), 9)
    checked = 0
    for b in range(10):
        mask = bins == b
        if mask.sum() < 50:
            continue
        expected, observed = p[mask].mean(), won[mask].mean()
        standard_error = np.sqrt(expected * (1 - expected) / mask.sum())
        assert abs(observed - expected) < 4 * standard_error + 0.01, (b, expected, observed, mask.sum())
        checked += 1
    assert checked >= 4


# ---------------------------------------------------------------- formats read back with the real libraries


def test_every_csv_reads_with_duckdbs_csv_reader(tiny_world: Path) -> None:
    con = duckdb.connect()
    files = sorted((tiny_world / "landing").glob("*/*/*.csv"))
    assert len(files) > 50
    for path in files:
        header = path.read_text(encoding="utf-8").split("\n", 1)[0].count(",") + 1
        rows = con.execute(
            f"select * from read_csv('{path}', header=true, all_varchar=true, strict_mode=true)"
        ).fetchall()
        expected = sum(1 for _ in csv.reader(path.open(newline="", encoding="utf-8"))) - 1
        assert len(rows) == expected, path
        assert all(len(r) == header for r in rows)


def test_every_ics_parses_with_icalendar_and_expands_to_the_truth(tiny_world: Path) -> None:
    files = sorted((tiny_world / "landing/calendar").glob("*/*.ics"))  # drop folders sort by date
    assert len(files) > 10
    latest_events: dict[str, list] = {}
    zones = {}
    for path in files:
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
        recurring_ical_events.of(calendar).between((2023, 1, 1), (2028, 1, 1))  # raises on a file it cannot expand
        by_uid: dict[str, list] = {}
        for component in calendar.walk("VEVENT"):
            by_uid.setdefault(str(component["UID"]), []).append(component)
        latest_events.update(by_uid)  # a later export of an object replaces the earlier one whole
        zones.update({str(tz["TZID"]): tz for tz in calendar.walk("VTIMEZONE")})
    merged = icalendar.Calendar()
    for zone in zones.values():
        merged.add_component(zone)
    for events in latest_events.values():
        for event in events:
            merged.add_component(event)
    found = set()
    for occurrence in recurring_ical_events.of(merged).between((2023, 1, 1), (2028, 1, 1)):
        start = occurrence["DTSTART"].dt
        if isinstance(start, dt.datetime):
            stamp = start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            stamp = f"{start.isoformat()}T00:00:00Z"
        found.add((str(occurrence["UID"]), stamp))
    truth = pd.read_csv(tiny_world / "truth/calendar_occurrences.csv", dtype=str, keep_default_na=False)
    assert len(truth) > 1000
    assert found == set(zip(truth.uid, truth.start_at, strict=True))


def test_every_phone_number_parses_with_phonenumbers(tiny_world: Path) -> None:
    for sobject, columns, country in [
        ("Contact", ["Phone", "MobilePhone"], "MailingCountry"),
        ("Lead", ["Phone"], "Country"),
        ("Account", ["Phone"], "BillingCountryCode"),
    ]:
        frame = crm(tiny_world, sobject)
        for column in columns:
            for value, region in zip(frame[column], frame[country], strict=True):
                if value:
                    assert phonenumbers.is_valid_number(phonenumbers.parse(value, region)), (sobject, value)
    records = calls(tiny_world)
    for number in pd.concat([records.from_number, records.to_number]).unique():
        assert phonenumbers.is_valid_number(phonenumbers.parse("+" + number.lstrip("+"))), number


def test_no_record_is_modified_or_created_after_the_end_of_its_drop(tiny_world: Path) -> None:
    # Regression: a lead called before it was created got a "Working - Contacted" version dated before CreatedDate,
    # which put a lead created after its drop's window into that drop.
    for sobject in ("Account", "Contact", "Lead", "Opportunity", "Task", "Event", "User"):
        frame = crm(tiny_world, sobject)
        window_end = pd.to_datetime(frame._drop, utc=True) + pd.Timedelta(days=1)
        for column in ("CreatedDate", "LastModifiedDate"):
            assert (pd.to_datetime(frame[column], utc=True) < window_end).all(), (sobject, column)


def test_crm_files_use_salesforce_value_formats(tiny_world: Path) -> None:
    opportunity = crm(tiny_world, "Opportunity")
    assert opportunity.Id.str.fullmatch(r"006[0-9A-Za-z]{15}").all()
    assert opportunity.CreatedDate.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z").all()
    assert opportunity.CloseDate.str.fullmatch(r"\d{4}-\d\d-\d\d").all()
    assert set(opportunity.IsClosed) == {"true", "false"}
    first_line = next((tiny_world / "landing/crm").glob("*/Opportunity.csv")).read_text().split("\n", 1)[0]
    assert first_line.startswith('"Id","IsDeleted","AccountId"')


# ---------------------------------------------------------------- faults


def test_every_planted_fault_is_in_the_manifest_and_nothing_else_differs(
    tiny_world: Path, tiny_faulty_world: Path
) -> None:
    manifest = pd.read_csv(tiny_faulty_world / "truth/faults.csv", dtype=str, keep_default_na=False)
    assert set(manifest.fault_type) == {
        "duplicate_row", "malformed_date", "bad_number", "unknown_stage", "orphan_foreign_key", "negative_amount",
        "missing_amount", "invalid_phone", "timestamp_without_zone", "future_dated", "truncated_file", "non_utf8",
        "broken_vevent",
    }  # fmt: skip
    clean, faulty = tiny_world / "landing", tiny_faulty_world / "landing"
    assert sorted(p.relative_to(clean) for p in clean.rglob("*") if p.is_file()) == sorted(
        p.relative_to(faulty) for p in faulty.rglob("*") if p.is_file()
    )
    differing_files = set()
    for path in sorted(clean.rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(clean))
        a, b = path.read_bytes(), (faulty / name).read_bytes()
        if a == b:
            continue
        differing_files.add(name)
        file_faults = manifest[manifest.file == name]
        assert len(file_faults), f"{name} differs but the manifest lists nothing in it"
        if file_faults.fault_type.isin(["truncated_file"]).any():
            assert a.startswith(b) and len(b) < len(a)
            continue
        if name.endswith(".csv"):
            clean_records = _records(a)
            faulty_records = _records(b)
            differing = {k for k, (x, y) in enumerate(zip(clean_records, faulty_records, strict=False), 1) if x != y}
            differing |= set(range(len(clean_records) + 1, len(faulty_records) + 1))
            if "non_utf8" in set(file_faults.fault_type):
                assert len(differing) == 1 and len(clean_records) == len(faulty_records)
                continue
            assert differing == set(file_faults.record_number.astype(int)), name
            continue
        listed_lines = file_faults.line.astype(int).to_numpy()
        for number, (x, y) in enumerate(zip(a.split(b"\n"), b.split(b"\n"), strict=False), start=1):
            # a damaged event may change a neighbouring line too (DTEND beside DTSTART)
            if x != y:
                assert np.abs(listed_lines - number).min() <= 3 or "broken_vevent" in set(file_faults.fault_type), (
                    name, number)  # fmt: skip
    assert differing_files == set(manifest.file)


def _records(data: bytes) -> list[list[str]]:
    return list(csv.reader(data.decode("utf-8", errors="replace").splitlines(keepends=True)))[1:]


def test_row_faults_name_the_record_they_damaged(tiny_faulty_world: Path) -> None:
    manifest = pd.read_csv(tiny_faulty_world / "truth/faults.csv", dtype=str, keep_default_na=False)
    rows = manifest[manifest.record_number != ""]
    for row in rows.itertuples():
        path = tiny_faulty_world / "landing" / row.file
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            records = list(csv.DictReader(handle))
        record = records[int(row.record_number) - 1]
        assert row.record_id in record.values(), row


def test_a_world_without_faults_has_no_manifest(tiny_world: Path) -> None:
    assert not (tiny_world / "truth/faults.csv").exists()


@pytest.fixture(scope="session")
def demo_like_truth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A longer, busier world than `tiny` (two years, one territory per region and segment) for statistics."""
    out = tmp_path_factory.mktemp("stats")
    generate("tiny", SEED, out, progress=Progress(quiet=True), history_days=730, accounts=600,
             opportunities_per_day=12.0, leads_per_day=4.0, activity_intensity=0.2, prospecting_calls_per_lead=0.5,
             internal_meetings=False)  # fmt: skip
    return out / "truth"


def test_advance_without_a_world_says_how_to_make_one(tmp_path: Path, capsys) -> None:
    assert simulator_main(["advance", "--days", "1", "--out", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "python -m simulator generate" in capsys.readouterr().err


def test_an_unknown_preset_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="tiny"):
        generate("huge", 1, Path("/nonexistent"), progress=Progress(quiet=True))


def test_the_summary_lists_each_source_with_its_size(tiny_world: Path, capsys) -> None:
    assert simulator_main(["summary", "--out", str(tiny_world)]) == 0
    printed = capsys.readouterr().out
    for source in ("calendar", "crm", "phone", "reference"):
        assert source in printed


@pytest.mark.slow
def test_settings_can_be_overridden_from_the_command_line_and_advance_keeps_them(tmp_path: Path) -> None:
    out = tmp_path / "pods"
    arguments = ["generate", "--preset", "tiny", "--out", str(out), "--quiet"]
    assert simulator_main([*arguments, "--set", "sales_model=pods", "--set", "start_date=2024-03-01"]) == 0
    state = WorldState.read(out)
    assert state.overrides == {"sales_model": "pods", "start_date": pd.Timestamp("2024-03-01").date()}
    assert min(p.name for p in (out / "landing/crm").iterdir()) >= "2024-03-01"
    pods = crm(out, "User").Pod__c
    assert pods[pods != ""].str.contains("-P").all()
    assert simulator_main(["advance", "--days", "1", "--out", str(out), "--quiet"]) == 0
    assert WorldState.read(out).overrides == state.overrides


def test_an_unknown_setting_is_refused(tmp_path: Path, capsys) -> None:
    arguments = ["generate", "--preset", "tiny", "--out", str(tmp_path), "--set", "colour=blue"]
    assert simulator_main(arguments) == 2
    assert "no such setting" in capsys.readouterr().err
