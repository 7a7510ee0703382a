"""The warehouse's figures agree with each other and with any as-of date: the pipeline summary books what the
finance marts book, to the cent, in a world that sells in several currencies; a build as of a day between two
drops does not change when the later drop lands; and an incremental build after a new day, late changes included,
is a full rebuild row for row."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ingestion.run import ingest_everything
from orchestration.lib.dbt_project import READS_ML
from simulator.world import Progress, advance
from tests.test_warehouse import dbt, mart_digests

ZERO = Decimal("0.00")
# mart_pipeline_summary's sums of amounts
SUMS = (
    "open_amount",
    "weighted_amount",
    "created_amount",
    "won_amount",
    "lost_amount",
    "pushed_amount",
    "closing_this_quarter_amount",
    "team_bookings_to_date_amount",
)
# the models the consistency checks read, and everything upstream of them
CONSISTENCY_MODELS = "+mart_pipeline_summary +fct_bookings +mart_quota_attainment"
# dbt's unit tests read no data, and the tiny_marts build runs them
DATA_ONLY = ["--exclude", "resource_type:unit_test", READS_ML]
# The sources whose last drop lands after the first build: every one.
LATE_SOURCES = ("crm", "calendar", "phone", "reference")


def build_as_of(warehouse: Path, as_of: dt.date, folder: Path) -> Path:
    """A copy of `warehouse` with the models the consistency checks read built as of `as_of`."""
    database = folder / f"as_of_{as_of.isoformat()}.duckdb"
    shutil.copy(warehouse, database)
    variables = json.dumps({"as_of_date": as_of.isoformat()})
    # the models and seeds without their tests: fct_bookings' not-null test on amount_reporting would stop the build
    # at the deal without an amount
    args = ["build", "--select", CONSISTENCY_MODELS, "--exclude", "resource_type:test resource_type:unit_test"]
    dbt([*args, "--vars", variables], database, folder / f"target_{as_of}")
    return database


@pytest.fixture(scope="module")
def quarter_builds(tiny_warehouse: Path, tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny warehouse, with one won deal in a foreign currency stripped of its amount (an empty Amount loads as
    NULL), built as of the last day of each fiscal quarter it covers; the current quarter as of the last drop."""
    folder = tmp_path_factory.mktemp("consistency")
    warehouse = folder / "warehouse.duckdb"
    shutil.copy(tiny_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        (no_amount,) = con.execute(
            """select "Id" from raw.opportunity where "IsWon" and "CurrencyIsoCode" <> 'USD'
            order by "CloseDate" desc, "Id" limit 1"""
        ).fetchone()
        for table, key in (("opportunity", "Id"), ("opportunity_history", "OpportunityId")):
            con.execute(f'update raw.{table} set "Amount" = null where "{key}" = ?', [no_amount])
    last_day = dt.date.fromisoformat(json.loads((tiny_world / "truth" / "world.json").read_text())["current_end"])
    latest = build_as_of(warehouse, last_day, folder)
    with duckdb.connect(str(latest), read_only=True) as con:
        quarter_ends = [
            end
            for (end,) in con.execute(
                """select distinct fiscal_quarter_end_date from marts.dim_date
                where date_day between (select min(as_of_date) from marts.mart_pipeline_summary) and ?
                    and fiscal_quarter_end_date < ?
                order by 1""",
                [last_day, last_day],
            ).fetchall()
        ]
    builds = {end: build_as_of(warehouse, end, folder) for end in quarter_ends} | {last_day: latest}
    return {"builds": builds, "no_amount": no_amount}


def team_figures(database: Path, as_of: dt.date) -> dict[str, dict]:
    """Per team, the quarter to date as of `as_of` in the pipeline summary and in the finance marts."""
    with duckdb.connect(str(database), read_only=True) as con:
        (quarter_start,) = con.execute(
            "select fiscal_quarter_start_date from marts.dim_date where date_day = ?", [as_of]
        ).fetchone()
        summary = con.execute(
            """select
                team_id,
                sum(won_count),
                sum(won_amount),
                count(distinct team_bookings_to_date_amount),
                max(team_bookings_to_date_amount),
                max(coverage_denominator_amount)
            from marts.mart_pipeline_summary where as_of_date = ? group by team_id""",
            [as_of],
        ).fetchall()
        bookings = con.execute(
            """select team_id, count(*), coalesce(sum(amount_reporting), 0)
            from marts.fct_bookings where fiscal_quarter_start_date = ? group by team_id""",
            [quarter_start],
        ).fetchall()
        attainment = con.execute(
            """select owner_id, bookings_amount, remaining_quota_amount from marts.mart_quota_attainment
            where quota_type = 'team' and period_start_date = ?""",
            [quarter_start],
        ).fetchall()
    return {
        "summary": {
            team: (int(won), amount, repeated, to_date, left) for team, won, amount, repeated, to_date, left in summary
        },
        "bookings": {team: (count, amount) for team, count, amount in bookings},
        "attainment": {team: (booked, left) for team, booked, left in attainment},
    }


# Regression: mart_pipeline_summary converted closed deals at each day's FX rate, not the close date's: its quarter
# to date won amount was 574.43 above fct_bookings on the tiny world, and two EUR/GBP teams' bookings to date up to
# 1.1 % off mart_quota_attainment.
def test_the_pipeline_summary_books_what_the_finance_marts_book_for_every_team_and_quarter(
    quarter_builds: dict,
) -> None:
    builds = quarter_builds["builds"]
    assert len(builds) >= 3
    foreign_bookings = 0
    for as_of, database in builds.items():
        figures = team_figures(database, as_of)
        summary, bookings, attainment = figures["summary"], figures["bookings"], figures["attainment"]
        won = {team: (count, amount) for team, (count, amount, *_) in summary.items() if count}
        assert won == bookings, as_of
        for team, (booked, left) in attainment.items():
            _, _, repeated, to_date, coverage_left = summary.get(team, (0, ZERO, 1, ZERO, left))
            assert repeated == 1, (as_of, team)
            assert (to_date, coverage_left) == (booked, left), (as_of, team)
        with duckdb.connect(str(database), read_only=True) as con:
            foreign_bookings += con.execute(
                """select count(*) from marts.fct_bookings as bookings
                inner join marts.dim_date as days on days.date_day = ?
                where bookings.currency <> 'USD'
                    and bookings.fiscal_quarter_start_date = days.fiscal_quarter_start_date""",
                [as_of],
            ).fetchone()[0]
    assert foreign_bookings > 0  # the rates matter: deals in EUR and GBP were booked


# Regression: a group of deals whose only deal had no amount summed to NULL (created_amount on 6 rows of the tiny
# world with one won deal's Amount emptied).
def test_a_deal_without_an_amount_adds_nothing_to_the_pipeline_summary(quarter_builds: dict) -> None:
    as_of, database = max(quarter_builds["builds"].items())
    with duckdb.connect(str(database), read_only=True) as con:
        booked = con.execute(
            "select amount, amount_reporting from marts.fct_bookings where opportunity_id = ?",
            [quarter_builds["no_amount"]],
        ).fetchall()
        null_sums = con.execute(
            f"select count(*) from marts.mart_pipeline_summary where {' or '.join(f'{c} is null' for c in SUMS)}"
        ).fetchone()[0]
    assert booked == [(None, None)]
    assert null_sums == 0


@pytest.fixture(scope="module")
def late_drop(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny world ingested without its last weekly drop (of LATE_SOURCES) and built as of a day between the last
    two drops (marts digested); then the last drop lands."""
    folder = tmp_path_factory.mktemp("late_drop")
    drops = [
        dt.date.fromisoformat(day) for day in json.loads((tiny_world / "truth" / "world.json").read_text())["drops"]
    ]
    previous, last = drops[-2], drops[-1]
    as_of = previous + dt.timedelta(days=(last - previous).days // 2)
    assert previous < as_of < last
    landing = folder / "landing"
    shutil.copytree(tiny_world / "landing", landing)
    held_back = folder / "held_back"
    for source in (landing / name for name in LATE_SOURCES):
        (held_back / source.name).mkdir(parents=True)
        shutil.move(source / last.isoformat(), held_back / source.name / last.isoformat())
    database = folder / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        ingest_everything(con, landing)
    variables = json.dumps({"as_of_date": as_of.isoformat()})
    dbt(["build", *DATA_ONLY, "--vars", variables], database, folder / "target")
    before = mart_digests(database)
    for source in held_back.iterdir():
        shutil.move(source / last.isoformat(), landing / source.name / last.isoformat())
    with duckdb.connect(str(database)) as con:
        ingest_everything(con, landing)
    return {"folder": folder, "database": database, "as_of": as_of, "before": before, "variables": variables}


# Regression: CRM staging chose versions by SystemModstamp alone, so the versions a weekly drop brings that were
# modified before the as-of date's end (but exported after it) changed a build as of that date when the drop landed.
def test_a_build_as_of_a_day_between_two_drops_is_the_same_after_the_later_drop_lands(late_drop: dict) -> None:
    database, as_of = late_drop["database"], late_drop["as_of"]
    with duckdb.connect(str(database), read_only=True) as con:
        late_versions = con.execute(
            """select count(*) from raw.opportunity as versions
            inner join raw.load_ledger as ledger on versions._load_id = ledger.load_id
            where ledger.export_date > ? and versions."SystemModstamp" < ?""",
            [as_of, as_of + dt.timedelta(days=1)],
        ).fetchone()[0]
    assert late_versions > 0  # the later drop holds versions modified before the as-of date's end
    dbt(["build", *DATA_ONLY, "--vars", late_drop["variables"]], database, late_drop["folder"] / "target_again")
    assert mart_digests(database) == late_drop["before"]
    dbt(
        ["build", *DATA_ONLY, "--full-refresh", "--vars", late_drop["variables"]],
        database,
        late_drop["folder"] / "target_again",
    )
    assert mart_digests(database) == late_drop["before"]


def csv_value(value: object) -> str:
    """A raw value as a Salesforce Data Loader export writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return str(value)


def append_versions(con: duckdb.DuckDBPyConnection, export: Path, table: str, versions: list[dict]) -> None:
    """Append to a CRM export file new versions of records: each the record's latest raw version with `changes`
    (`Id` names the record; `NewId` makes a new record from it)."""
    with export.open(newline="") as handle:
        header = next(csv.reader(handle))
    with export.open("a", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for version in versions:
            changes = dict(version)
            record = changes.pop("Id")
            cursor = con.execute(
                f"""select * from raw.{table} where "Id" = ?
                order by "SystemModstamp" desc, _load_id desc, _record_number desc limit 1""",
                [record],
            )
            row = dict(zip([column[0] for column in cursor.description], cursor.fetchone(), strict=True))
            row["Id"] = changes.pop("NewId", record)
            writer.writerow([csv_value(changes.get(name, row.get(name))) for name in header])


def plant_late_changes(con: duckdb.DuckDBPyConnection, drop: Path, day: dt.date) -> dict[str, str]:
    """Add to the CRM drop dated `day`, the day after the warehouse's as-of date, the changes an incremental build
    misses when it recomputes only recent days: an open deal moved to another owner, one deleted, one whose amount
    was changed ten days ago (a history row exported late), a version older than a deal's current one (it must not
    win), a CRM-only e-mail deleted, and a contact given the number of another contact's caller. The ids, by role."""
    at = dt.datetime.combine(day, dt.time(9), dt.UTC)
    old_deals = [
        deal
        for (deal,) in con.execute(
            """select opportunity_id from marts.fct_opportunity as deals
            where status = 'open' and amount > 0 and created_date < ?
                and (select max(changed_at) from staging.stg_crm__opportunity_history as history
                    where history.opportunity_id = deals.opportunity_id) < ?
            order by opportunity_id limit 4""",
            [day - dt.timedelta(days=20), at - dt.timedelta(days=11)],
        ).fetchall()
    ]
    assert len(old_deals) == 4
    moved, deleted, edited, older = old_deals
    (new_owner,) = con.execute(
        "select owner_id from marts.fct_opportunity where owner_id <> (select owner_id from marts.fct_opportunity"
        " where opportunity_id = ?) order by owner_id limit 1",
        [moved],
    ).fetchone()
    (older_modstamp,) = con.execute(
        'select max("SystemModstamp") from raw.opportunity where "Id" = ?', [older]
    ).fetchone()
    last_change, edited_amount = con.execute(
        """select "Id", "Amount" from raw.opportunity_history where "OpportunityId" = ?
        order by "CreatedDate" desc, "SystemModstamp" desc limit 1""",
        [edited],
    ).fetchone()
    (email,) = con.execute(
        """select source_record_id from marts.fct_activity
        where source_system = 'crm' and activity_type = 'email' order by activity_id limit 1"""
    ).fetchone()
    call, caller = con.execute(
        """select activities.activity_id, activities.contact_id from marts.fct_activity as activities
        inner join staging.stg_phone__calls as calls on activities.source_record_id = calls.call_id
        where activities.source_system = 'phone' and activities.contact_id is not null
        order by activities.activity_id limit 1"""
    ).fetchone()
    (number,) = con.execute(
        "select customer_number_e164 from intermediate.int_activities_unioned where activity_id = ?", [call]
    ).fetchone()
    (contact,) = con.execute(
        "select min(contact_id) from staging.stg_crm__contacts where not is_deleted and contact_id < ?", [caller]
    ).fetchone()
    append_versions(con, drop / "Opportunity.csv", "opportunity", [
        {"Id": moved, "OwnerId": new_owner, "SystemModstamp": at, "LastModifiedDate": at},
        {"Id": deleted, "IsDeleted": True, "SystemModstamp": at, "LastModifiedDate": at},
        {"Id": edited, "Amount": edited_amount * 2, "SystemModstamp": at, "LastModifiedDate": at},
        {"Id": older, "Amount": Decimal("1.00"), "SystemModstamp": older_modstamp - dt.timedelta(days=1)},
    ])  # fmt: skip
    ten_days_ago = at - dt.timedelta(days=10)
    append_versions(con, drop / "OpportunityHistory.csv", "opportunity_history", [
        {"Id": last_change, "NewId": "008LATE0000000001", "Amount": edited_amount * 2, "CreatedDate": ten_days_ago,
         "SystemModstamp": ten_days_ago},
    ])  # fmt: skip
    append_versions(con, drop / "Task.csv", "task", [
        {"Id": email, "IsDeleted": True, "SystemModstamp": at, "LastModifiedDate": at},
    ])  # fmt: skip
    append_versions(con, drop / "Contact.csv", "contact", [
        {"Id": contact, "Phone": number, "SystemModstamp": at, "LastModifiedDate": at},
    ])  # fmt: skip
    return {
        "moved": moved, "new_owner": new_owner, "deleted": deleted, "edited": edited, "older": older,
        "email": email, "call": call, "contact": contact, "edited_from": ten_days_ago.date().isoformat(),
    }  # fmt: skip


@pytest.fixture(scope="module")
def late_changes(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny world built as of its last day; then advanced one day, with late changes planted in that day's CRM
    drop (plant_late_changes), loaded, and built twice more: incrementally, and in full from scratch."""
    folder = tmp_path_factory.mktemp("late_changes")
    world = folder / "world"
    shutil.copytree(tiny_world, world)
    database = folder / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        ingest_everything(con, world / "landing")
    dbt(["build", *DATA_ONLY], database, folder / "target")
    before = mart_digests(database)
    advance(world, 1, progress=Progress(quiet=True))
    day = dt.date.fromisoformat(json.loads((world / "truth" / "world.json").read_text())["current_end"])
    with duckdb.connect(str(database)) as con:
        planted = plant_late_changes(con, world / "landing" / "crm" / day.isoformat(), day)
        previous = {
            "deleted_days": con.execute(
                "select count(*) from marts.fct_pipeline_daily where opportunity_id = ?", [planted["deleted"]]
            ).fetchone()[0],
            "older_amount": con.execute(
                "select amount from staging.stg_crm__opportunities where opportunity_id = ?", [planted["older"]]
            ).fetchone()[0],
        }
        ingest_everything(con, world / "landing")
    incremental, full = folder / "incremental.duckdb", folder / "full.duckdb"
    shutil.copy(database, incremental)
    shutil.copy(database, full)
    dbt(["build", *DATA_ONLY], incremental, folder / "target_incremental")
    dbt(["build", *DATA_ONLY, "--full-refresh"], full, folder / "target_full")
    return {
        "folder": folder, "incremental": incremental, "full": full, "before": before, "planted": planted,
        "previous": previous, "as_of": day - dt.timedelta(days=1),
    }  # fmt: skip


def rows_only_in_one(first: Path, second: Path, schema: str) -> dict[str, tuple[int, int]]:
    """Per table of `schema` in `first`, the rows only `first` holds and those only `second` holds (EXCEPT ALL over
    every column: duplicates count), for the tables where either is not zero."""
    with duckdb.connect() as con:
        con.execute(f"attach '{first}' as first_build (read_only)")
        con.execute(f"attach '{second}' as second_build (read_only)")
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from duckdb_tables() where database_name = 'first_build' and schema_name = ?",
                [schema],
            ).fetchall()
        ]
        differing = {}
        for table in tables:
            first_rows, second_rows = f"first_build.{schema}.{table}", f"second_build.{schema}.{table}"
            counts = con.execute(
                f"""select
                    (select count(*) from (select * from {first_rows} except all select * from {second_rows})),
                    (select count(*) from (select * from {second_rows} except all select * from {first_rows}))"""
            ).fetchone()
            if any(counts):
                differing[table] = counts
    return differing


def test_an_incremental_build_after_a_day_with_late_changes_equals_a_full_rebuild(late_changes: dict) -> None:
    incremental, planted = late_changes["incremental"], late_changes["planted"]
    with duckdb.connect(str(incremental), read_only=True) as con:
        marts = {
            name
            for (name,) in con.execute("select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()
        }
        (deleted_days,) = con.execute(
            "select count(*) from marts.fct_pipeline_daily where opportunity_id = ?", [planted["deleted"]]
        ).fetchone()
        owners = con.execute(
            "select distinct owner_id from marts.fct_pipeline_daily where opportunity_id = ?", [planted["moved"]]
        ).fetchall()
        edited_from = dt.date.fromisoformat(planted["edited_from"])
        amounts = con.execute(
            """select amount from marts.fct_pipeline_daily
            where opportunity_id = ? and pipeline_date in (?, ?) order by pipeline_date""",
            [planted["edited"], edited_from - dt.timedelta(days=1), edited_from],
        ).fetchall()
        (older_amount,) = con.execute(
            "select amount from staging.stg_crm__opportunities where opportunity_id = ?", [planted["older"]]
        ).fetchone()
        emails = con.execute(
            "select count(*) from marts.fct_activity where activity_id = ?", ["crm_task:" + planted["email"]]
        ).fetchone()[0]
        (call_contact,) = con.execute(
            "select contact_id from marts.fct_activity where activity_id = ?", [planted["call"]]
        ).fetchone()
    # every mart the build makes (those on the ML assets' tables build later), row for row
    assert marts >= {"fct_activity", "fct_pipeline_daily", "mart_pipeline_summary", "ml_opportunity_features"}
    assert rows_only_in_one(incremental, late_changes["full"], "marts") == {}
    # the late changes landed: they are what a build that recomputes only the last days gets wrong
    assert late_changes["previous"]["deleted_days"] > 0 and deleted_days == 0
    assert owners == [(planted["new_owner"],)]
    (amount_before,), (amount_after,) = amounts
    assert amount_after == 2 * amount_before
    assert older_amount == late_changes["previous"]["older_amount"] != Decimal("1.00")
    assert emails == 0
    assert call_contact == planted["contact"]


def test_a_build_as_of_an_earlier_day_rebuilds_the_incremental_models_as_of_that_day(late_changes: dict) -> None:
    """Built incrementally as of the new day, then as of the day before without --full-refresh: every incremental
    model notices the earlier date and is rebuilt, as the first build was."""
    folder = late_changes["folder"]
    earlier = folder / "earlier.duckdb"
    shutil.copy(late_changes["incremental"], earlier)
    variables = json.dumps({"as_of_date": late_changes["as_of"].isoformat()})
    dbt(["build", *DATA_ONLY, "--vars", variables], earlier, folder / "target_earlier")
    assert mart_digests(earlier) == late_changes["before"]
