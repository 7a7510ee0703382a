"""Shape the simulated world into the files a real sales organisation's systems export.

- CRM: one CSV per Salesforce object per drop, API field names, every value quoted as Data Loader writes it,
  datetimes as `2024-03-01T14:05:09.000Z`, booleans `true`/`false`. A drop holds the records modified in its
  window, each in its latest state (upserts by Id; deletions as `IsDeleted = true`).
- Phone: the call-detail records of calls that started in the window, as a cloud telephony export.
- Calendar: one `.ics` per mailbox (see calendar.py).
- Reference: FX rates, quotas, territories and compensation plans.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from simulator import calendar, faults
from simulator.config import WorldConfig
from simulator.deals import World, demand_factor
from simulator.timeutil import fiscal_quarter_start
from simulator.world import Progress, WorldState, drop_windows

TS = "strftime({}, '%Y-%m-%dT%H:%M:%S.000Z')"
DATE = "strftime({}, '%Y-%m-%d')"
CRM_OBJECTS = ("UserRole", "User", "Account", "Contact", "Lead", "Opportunity", "OpportunityHistory", "Task", "Event")
INTERNAL_MEETING_HORIZON_DAYS = 730
FORECAST_CATEGORY_API = {"Pipeline": "Pipeline", "Best Case": "BestCase", "Commit": "Forecast", "Omitted": "Omitted",
                         "Closed": "Closed"}  # fmt: skip


def ts(column: str) -> str:
    return f"coalesce({TS.format(column)}, '')"


def date(column: str) -> str:
    return f"coalesce({DATE.format(column)}, '')"


def text(column: str) -> str:
    return f"coalesce(cast({column} as varchar), '')"


def boolean(column: str) -> str:
    return f"case when {column} then 'true' else 'false' end"


def money(column: str) -> str:
    return f"coalesce(printf('%.2f', {column}), '')"


def write_world(
    con: duckdb.DuckDBPyConnection,
    world: World,
    state: WorldState,
    new_drops: list[dt.date],
    out_dir: Path,
    progress: Progress,
) -> dict:
    cfg = world.cfg
    landing = out_dir / "landing"
    windows = drop_windows(state.drops)
    new = windows[windows.drop_date.isin(pd.to_datetime(new_drops))]
    con.register("new_drops", new)
    end_exclusive = pd.Timestamp(state.current_end) + pd.Timedelta(days=1)
    _register_static(con, world, end_exclusive)

    progress("shaping drops")
    for table, query in [*((sobject, _crm_query(sobject)) for sobject in CRM_OBJECTS), ("calls", _calls_query())]:
        # number records 1..n in file order (the queries' window numbering runs before their QUALIFY filter)
        con.execute(
            f"create or replace table out_{table} as select * replace "
            f"(row_number() over (partition by drop_date order by _ord) as _ord) from ({query}) "
            "order by drop_date, _ord"
        )
    row_faults = []
    if state.faults:
        row_faults = faults.plant_row_faults(con, state.seed, cfg.faults, len(state.drops))
    progress("shaped drops")
    files: dict[str, list[Path]] = {"crm": [], "phone": [], "calendar": [], "reference": []}
    selects = {table: _file_columns(con, f"out_{table}") for table in (*CRM_OBJECTS, "calls")}
    for drop in new.drop_date:
        day = drop.date().isoformat()
        folder = landing / "crm" / day
        folder.mkdir(parents=True, exist_ok=True)
        for sobject in CRM_OBJECTS:
            path = folder / f"{sobject}.csv"
            _copy(con, f"out_{sobject}", selects[sobject], drop, path, force_quote=True)
            files["crm"].append(path)
        path = landing / "phone" / day / f"calls_{day}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        _copy(con, "out_calls", selects["calls"], drop, path, force_quote=False)
        files["phone"].append(path)
    if state.drops and min(state.drops) in {drop.date() for drop in new.drop_date}:
        files["crm"].append(_write_opportunity_stages(world, landing / "crm" / min(state.drops).isoformat()))
    progress(f"wrote CRM and phone drops: {len(files['crm']) + len(files['phone']):,} files")
    for table in (*CRM_OBJECTS, "calls"):  # give their memory back before the calendars are built
        con.execute(f"drop table out_{table}")

    files["reference"] = _write_reference(con, world, state, new, landing)
    files["calendar"] = _write_calendar(con, world, new, windows, landing, end_exclusive)
    progress(f"wrote calendar drops: {len(files['calendar']):,} files")
    manifest = faults.locate_row_faults(row_faults, landing)
    if state.faults:
        rng = np.random.default_rng([state.seed, 97, len(state.drops)])
        avoid = {landing / entry["file"] for entry in manifest}
        manifest += faults.plant_file_faults(files, landing, rng, cfg.faults, avoid)
        manifest += calendar.plant_calendar_faults(
            files["calendar"], rng, cfg.faults.broken_vevents, max(1, cfg.faults.broken_vevents)
        )
    _write_truth(con, world, state, out_dir, end_exclusive, manifest)
    progress("wrote truth")
    return {source: len(paths) for source, paths in files.items()}


def _write_opportunity_stages(world: World, folder: Path) -> Path:
    """The org's stage definitions as Salesforce's `OpportunityStage` object exports them, in the first CRM drop
    (a Data Loader export of setup objects is taken once, like the territories)."""
    cfg = world.cfg
    stages = (*cfg.stages, cfg.won_stage, cfg.lost_stage)
    created = f"{cfg.start_date.isoformat()}T00:00:00.000Z"
    rows = [
        {
            "Id": f"01J{index:015d}",
            "MasterLabel": stage.name,
            "ApiName": stage.name,
            "IsActive": "true",
            "SortOrder": str(stage.order),
            "IsClosed": str(stage in (cfg.won_stage, cfg.lost_stage)).lower(),
            "IsWon": str(stage == cfg.won_stage).lower(),
            "DefaultProbability": str(stage.probability),
            "ForecastCategory": FORECAST_CATEGORY_API[stage.forecast_category],
            "ForecastCategoryName": stage.forecast_category,
            "Description": "",
            "CreatedDate": created,
            "LastModifiedDate": created,
            "SystemModstamp": created,
        }
        for index, stage in enumerate(stages, start=1)
    ]
    path = folder / "OpportunityStage.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _file_columns(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The select list of a shaped table's file: every column but the drop and the bookkeeping ones."""
    columns = [c for c in con.execute(f"select * from {table} limit 0").fetchdf().columns if not c.startswith("_")]
    return ", ".join(f'"{c}"' for c in columns if c != "drop_date")


def _copy(con: duckdb.DuckDBPyConnection, table: str, select: str, drop: pd.Timestamp, path: Path, force_quote: bool):
    options = "header, delimiter ','" + (", force_quote *" if force_quote else "")
    con.execute(
        f"copy (select {select} from {table} where drop_date = date '{drop.date().isoformat()}' order by _ord) "
        f"to '{path}' ({options})"
    )


def _register_static(con: duckdb.DuckDBPyConnection, world: World, end_exclusive: pd.Timestamp) -> None:
    org, customers = world.org, world.customers
    users = org.users.copy()
    users["user_index"] = np.arange(len(users))
    users["created_at"] = users.hire_date.astype("datetime64[s]") - pd.Timedelta(days=14)
    terr = org.territories
    users["territory_id"] = users.territory_index.map(lambda t: terr.territory_id.iat[t] if t >= 0 else None)
    users["segment"] = users.territory_index.map(lambda t: terr.segment.iat[t] if t >= 0 else None)
    users["pod"] = [
        f"{terr.territory_id.iat[t]}-P{int(org.seats.pod_index.iat[s]) + 1}" if s >= 0 else None
        for t, s in zip(users.territory_index, users.seat_index, strict=True)
    ]
    users["phone_e164"] = world.rep_phone_e164
    con.register("users", users.drop(columns=["skill", "optimism"]))
    con.register("user_truth", users[["user_id", "role", "skill", "optimism", "hire_date", "termination_date"]])
    con.register("user_roles", org.user_roles)
    con.register("territories", org.territories)

    accounts = customers.accounts.copy()
    accounts["account_row"] = np.arange(len(accounts))
    accounts["territory_id"] = org.territories.territory_id.to_numpy()[accounts.territory_index]
    con.register("accounts", accounts)
    first_won = con.execute(
        "select o.account_row, min(t.closed_at) as first_won_at from truth_outcomes t "
        "join opportunities o using (opportunity_id) where t.is_won group by 1"
    ).fetchdf()
    # account versions: created, each change of owner (the seat changes hands), and becoming a customer
    seats = accounts.ae_seat.to_numpy()
    created = accounts.created_at.to_numpy().astype("datetime64[s]")
    far = np.full(len(accounts), np.datetime64(end_exclusive.to_datetime64(), "s"))
    rows, tenure = org.holder_changes(seats, created, far)
    won_at = np.full(len(accounts), np.datetime64("NaT"), dtype="datetime64[s]")
    won_at[first_won.account_row.to_numpy()] = first_won.first_won_at.to_numpy().astype("datetime64[s]")
    has_won = ~np.isnat(won_at)
    version_row = np.concatenate([np.arange(len(accounts)), rows, np.flatnonzero(has_won)])
    version_at = np.concatenate([created, org.tenure_from[tenure], won_at[has_won]])
    versions = pd.DataFrame({"account_row": version_row, "at": version_at})
    versions["owner_index"] = org.holders(seats[version_row], version_at)
    versions["owner_id"] = org.users.user_id.to_numpy()[versions.owner_index]
    versions["account_type"] = np.where(
        version_at >= np.where(has_won, won_at, far)[version_row], "Customer", "Prospect"
    )
    con.register("account_versions", versions)

    contacts = customers.contacts.copy()
    contacts["account_id"] = accounts.account_id.to_numpy()[contacts.account_row]
    contacts["owner_id"] = org.users.user_id.to_numpy()[
        org.holders(accounts.ae_seat.to_numpy()[contacts.account_row], contacts.created_at.to_numpy())
    ]
    rng = np.random.default_rng([world.seed, 5])
    deleted = rng.random(len(contacts)) < 0.005
    contacts["deleted_at"] = np.where(
        deleted, contacts.created_at.to_numpy() + (rng.uniform(30, 400, len(contacts)) * 86400).astype(
            "timedelta64[s]"), np.datetime64("NaT"))  # fmt: skip
    contacts["lead_source"] = np.where(rng.random(len(contacts)) < 0.5, "Existing Customer", "Trade Show")
    con.register("pool_contacts", contacts)
    con.register("fx", _fx_frame(world, end_exclusive))


def _fx_frame(world: World, end_exclusive: pd.Timestamp) -> pd.DataFrame:
    days = pd.date_range(world.cfg.start_date - dt.timedelta(days=60), end_exclusive - pd.Timedelta(days=1))
    frames = []
    for code in ("EUR", "GBP"):
        frames.append(
            pd.DataFrame(
                {
                    "rate_date": days,
                    "from_currency": code,
                    "to_currency": "USD",
                    "rate": world.fx.rates(np.full(len(days), code, dtype=object), days.to_numpy()),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _crm_query(sobject: str) -> str:
    """The rows of one object for the new drops: the latest version of each record modified in each window."""
    latest = "qualify row_number() over (partition by record_id, d.drop_date order by v.at desc, v.seq desc) = 1"
    drop_join = "join new_drops d on v.at >= d.window_start and v.at < d.window_end"
    if sobject == "UserRole":
        return f"""
        with v as (select user_role_id as record_id, timestamp '2023-01-02 09:00:00' as at, 0 as seq, * from user_roles)
        select d.drop_date, row_number() over (partition by d.drop_date order by v.record_id) as _ord,
            v.record_id as "Id", v.name as "Name", {text("v.parent_role_id")} as "ParentRoleId",
            v.developer_name as "DeveloperName", {ts("v.at")} as "LastModifiedDate", {ts("v.at")} as "SystemModstamp"
        from v {drop_join} {latest}"""
    if sobject == "User":
        return f"""
        with v as (
            select user_id as record_id, cast(created_at as timestamp) as at, 0 as seq, true as active, * from users
            union all by name
            select user_id as record_id, cast(termination_date as timestamp) + interval 18 hour as at, 1 as seq,
                   false as active, * from users
            where termination_date is not null
        )
        select d.drop_date, row_number() over (partition by d.drop_date order by v.at, v.record_id) as _ord,
            v.record_id as "Id", v.email as "Username", v.first_name as "FirstName", v.last_name as "LastName",
            v.first_name || ' ' || v.last_name as "Name", v.email as "Email", v.title as "Title",
            'Sales' as "Department", {text("v.user_role_id")} as "UserRoleId",
            {text("v.manager_user_id")} as "ManagerId",
            {boolean("v.active")} as "IsActive", v.timezone as "TimeZoneSidKey", v.country as "Country",
            v.phone_e164 as "Phone", v.role as "Sales_Role__c", {text("v.segment")} as "Segment__c",
            {text("v.region")} as "Region__c", {text("v.territory_id")} as "Territory__c", {text("v.pod")} as "Pod__c",
            {date("v.hire_date")} as "Hire_Date__c", {date("v.termination_date")} as "Termination_Date__c",
            {ts("v.created_at")} as "CreatedDate", {ts("v.at")} as "LastModifiedDate", {ts("v.at")} as "SystemModstamp"
        from v {drop_join} {latest}"""
    if sobject == "Account":
        return f"""
        with v as (select a.account_id as record_id, av.at, av.owner_id, av.account_type,
                          row_number() over (partition by av.account_row order by av.at) as seq, a.*
                   from account_versions av join accounts a using (account_row))
        select d.drop_date, row_number() over (partition by d.drop_date order by v.at, v.record_id) as _ord,
            v.record_id as "Id", 'false' as "IsDeleted", v.name as "Name", v.account_type as "Type",
            v.industry as "Industry", cast(v.employees as varchar) as "NumberOfEmployees",
            v.employee_band as "Employee_Band__c", 'www.' || v.domain as "Website", v.phone as "Phone",
            v.country as "BillingCountryCode", v.segment as "Segment__c", v.region as "Region__c",
            v.territory_id as "Territory__c", v.owner_id as "OwnerId", v.currency as "CurrencyIsoCode",
            {ts("v.created_at")} as "CreatedDate", {ts("v.at")} as "LastModifiedDate", {ts("v.at")} as "SystemModstamp"
        from v {drop_join} {latest}"""
    if sobject == "Contact":
        return f"""
        with c as (
            select contact_id, account_id, first_name, last_name, email, phone, mobile, title, country, owner_id,
                   lead_source, created_at, deleted_at from pool_contacts
            union all
            select x.converted_contact_id, a.account_id, x.converted_contact_first, x.converted_contact_last,
                   x.converted_contact_email, x.converted_contact_phone, '', 'Unknown', x.converted_contact_country,
                   o.owner_id, o.lead_source, x.created_at, null
            from converted_contacts x join accounts a using (account_row)
            join opportunities o on o.converted_contact_id = x.converted_contact_id
        ), v as (
            select contact_id as record_id, cast(created_at as timestamp) as at, 0 as seq, false as deleted, * from c
            union all by name
            select contact_id as record_id, cast(deleted_at as timestamp) as at, 1 as seq, true as deleted, * from c
            where deleted_at is not null
        )
        select d.drop_date, row_number() over (partition by d.drop_date order by v.at, v.record_id) as _ord,
            v.record_id as "Id", {boolean("v.deleted")} as "IsDeleted", v.account_id as "AccountId",
            v.first_name as "FirstName", v.last_name as "LastName", v.email as "Email", v.phone as "Phone",
            {text("v.mobile")} as "MobilePhone", v.title as "Title", v.country as "MailingCountry",
            v.owner_id as "OwnerId", v.lead_source as "LeadSource", {ts("v.created_at")} as "CreatedDate",
            {ts("v.at")} as "LastModifiedDate", {ts("v.at")} as "SystemModstamp"
        from v {drop_join} {latest}"""
    if sobject == "Lead":
        return f"""
        with l as (select l.*, a.account_id as converted_account_id, o.opportunity_id as converted_opportunity_id
                   from leads l left join accounts a on a.account_row = l.converted_account_row
                   left join opportunities o on o.lead_id = l.lead_id),
        v as (
            select lead_id as record_id, created_at as at, 0 as seq, 'Open - Not Contacted' as status, false as deleted,
                   false as converted, * from l
            union all by name
            select lead_id as record_id, greatest(first_worked_at, created_at) as at, 1 as seq,
                   'Working - Contacted' as status, false as deleted, false as converted, * from l
            where first_worked_at is not null
              and first_worked_at < coalesce(converted_at, closed_at, deleted_at, timestamp '2999-01-01')
            union all by name
            select lead_id as record_id, converted_at as at, 2 as seq, 'Closed - Converted' as status,
                   false as deleted, true as converted, * from l where converted_at is not null
            union all by name
            select lead_id as record_id, closed_at as at, 2 as seq, 'Closed - Not Converted' as status,
                   false as deleted, false as converted, * from l where closed_at is not null
            union all by name
            select lead_id as record_id, deleted_at as at, 3 as seq, 'Open - Not Contacted' as status,
                   true as deleted, false as converted, * from l where deleted_at is not null
        )
        select d.drop_date, row_number() over (partition by d.drop_date order by v.at, v.record_id) as _ord,
            v.record_id as "Id", {boolean("v.deleted")} as "IsDeleted", v.first_name as "FirstName",
            v.last_name as "LastName", v.company as "Company", v.email as "Email", v.phone as "Phone",
            v.country as "Country", v.industry as "Industry", v.lead_source as "LeadSource", v.status as "Status",
            v.owner_id as "OwnerId", {boolean("v.converted")} as "IsConverted",
            case when v.converted then {date("v.converted_at")} else '' end as "ConvertedDate",
            case when v.converted then {text("v.converted_account_id")} else '' end as "ConvertedAccountId",
            case when v.converted then {text("v.converted_contact_id")} else '' end as "ConvertedContactId",
            case when v.converted then {text("v.converted_opportunity_id")} else '' end as "ConvertedOpportunityId",
            {ts("v.created_at")} as "CreatedDate", {ts("v.at")} as "LastModifiedDate", {ts("v.at")} as "SystemModstamp"
        from v {drop_join} {latest}"""
    if sobject in ("Opportunity", "OpportunityHistory"):
        kind_order = "case c.kind when 'stage' then 1 when 'push' then 2 when 'owner' then 3 else 4 end"
        base = f"""
        with v as (select c.opportunity_id as record_id, c.at, {kind_order} as seq, c.*, o.name, o.opportunity_type,
                          o.lead_source, o.currency, o.product, o.sourced_by_id, o.created_at as opp_created_at,
                          o.owner_id as creator_id, a.account_id
                   from opportunity_changes c join opportunities o using (opportunity_id)
                   join accounts a on a.account_row = o.account_row)"""
        if sobject == "OpportunityHistory":
            return f"""{base}
        select d.drop_date, row_number() over (partition by d.drop_date order by v.at, v.history_id) as _ord,
            v.history_id as "Id", v.record_id as "OpportunityId", v.owner_id as "CreatedById",
            {ts("v.at")} as "CreatedDate", v.stage as "StageName", {money("v.amount")} as "Amount",
            {money("v.amount * v.probability / 100.0")} as "ExpectedRevenue", {date("v.close_date")} as "CloseDate",
            cast(cast(v.probability as integer) as varchar) as "Probability",
            {_forecast_api("v.forecast_category")} as "ForecastCategory", 'false' as "IsDeleted",
            {ts("v.at")} as "SystemModstamp"
        from v {drop_join} where v.writes_history"""
        return f"""{base}
        select d.drop_date, row_number() over (partition by d.drop_date order by v.at, v.record_id) as _ord,
            v.record_id as "Id", 'false' as "IsDeleted", v.account_id as "AccountId", v.name as "Name",
            v.stage as "StageName", {money("v.amount")} as "Amount",
            cast(cast(v.probability as integer) as varchar) as "Probability",
            {money("v.amount * v.probability / 100.0")} as "ExpectedRevenue", {date("v.close_date")} as "CloseDate",
            v.opportunity_type as "Type", v.lead_source as "LeadSource", {boolean("v.is_closed")} as "IsClosed",
            {boolean("v.is_won")} as "IsWon", v.forecast_category as "ForecastCategoryName",
            v.currency as "CurrencyIsoCode", v.owner_id as "OwnerId", v.product as "Primary_Product__c",
            {text("v.sourced_by_id")} as "Sourced_By__c", {ts("v.opp_created_at")} as "CreatedDate",
            v.creator_id as "CreatedById", {ts("v.at")} as "LastModifiedDate", {ts("v.at")} as "SystemModstamp"
        from v {drop_join} {latest}"""
    if sobject == "Task":
        return f"""
        with v as (
            select task_id as record_id, created_at as at, 0 as seq, false as deleted, * from tasks
            union all by name
            select task_id as record_id, deleted_at as at, 1 as seq, true as deleted, * from tasks
            where deleted_at is not null
        )
        select d.drop_date, row_number() over (partition by d.drop_date order by v.at, v.record_id) as _ord,
            v.record_id as "Id", {boolean("v.deleted")} as "IsDeleted", {text("v.who_id")} as "WhoId",
            {text("v.what_id")} as "WhatId", v.owner_id as "OwnerId", v.subject as "Subject",
            {date("v.activity_at")} as "ActivityDate", 'Completed' as "Status", 'Normal' as "Priority",
            v.task_subtype as "TaskSubtype", v.task_subtype as "Type",
            coalesce(cast(cast(v.call_duration as bigint) as varchar), '') as "CallDurationInSeconds",
            {text("v.call_type")} as "CallType", {text("v.call_disposition")} as "CallDisposition",
            {text("v.call_object")} as "CallObject", {text("v.description")} as "Description",
            {ts("v.created_at")} as "CreatedDate", {ts("v.at")} as "LastModifiedDate", {ts("v.at")} as "SystemModstamp"
        from v {drop_join} {latest}"""
    if sobject == "Event":
        return f"""
        with v as (select event_id as record_id, created_at as at, 0 as seq, * from crm_events)
        select d.drop_date, row_number() over (partition by d.drop_date order by v.at, v.record_id) as _ord,
            v.record_id as "Id", 'false' as "IsDeleted", {text("v.who_id")} as "WhoId", {text("v.what_id")} as "WhatId",
            v.owner_id as "OwnerId", v.subject as "Subject", {ts("v.start_at")} as "StartDateTime",
            {ts("v.end_at")} as "EndDateTime", {ts("v.start_at")} as "ActivityDateTime",
            {date("v.start_at")} as "ActivityDate", cast(v.duration_minutes as varchar) as "DurationInMinutes",
            'false' as "IsAllDayEvent", v.location as "Location", 'Meeting' as "Type",
            {text("v.external_event_id")} as "External_Event_Id__c", {ts("v.created_at")} as "CreatedDate",
            {ts("v.at")} as "LastModifiedDate", {ts("v.at")} as "SystemModstamp"
        from v {drop_join} {latest}"""
    raise ValueError(sobject)


def _forecast_api(column: str) -> str:
    cases = " ".join(f"when '{label}' then '{api}'" for label, api in FORECAST_CATEGORY_API.items())
    return f"case {column} {cases} else '' end"


def _calls_query() -> str:
    # some telephony exports drop the leading '+' of E.164 numbers; about one number in eight here
    def number(column: str) -> str:
        return f"case when ascii(right(call_id, 1)) % 8 = 0 then ltrim({column}, '+') else {column} end"

    return f"""
        select d.drop_date, row_number() over (partition by d.drop_date order by c.started_at, c.call_id) as _ord,
            c.call_id, c.direction, {number("c.from_e164")} as from_number, {number("c.to_e164")} as to_number,
            c.user_email, {TS.format("c.started_at").replace(".000Z", "Z")} as started_at,
            {TS.format("c.answered_at").replace(".000Z", "Z")} as answered_at,
            {TS.format("c.ended_at").replace(".000Z", "Z")} as ended_at,
            cast(c.duration_seconds as varchar) as duration_seconds,
            cast(c.talk_seconds as varchar) as talk_seconds, c.disposition
        from calls c join new_drops d on c.started_at >= d.window_start and c.started_at < d.window_end"""


def _write_reference(con, world: World, state: WorldState, new: pd.DataFrame, landing: Path) -> list[Path]:
    cfg = world.cfg
    written = []
    fx = con.execute(
        """select d.drop_date, strftime(f.rate_date, '%Y-%m-%d') as rate_date, f.from_currency, f.to_currency,
                  printf('%.6f', f.rate) as rate
           from fx f join new_drops d on f.rate_date >= d.window_start and f.rate_date < d.window_end
           order by f.rate_date, f.from_currency"""
    ).fetchdf()
    quotas = quota_frame(world, state.current_end)
    first_drop = min(state.drops)
    for drop in new.drop_date:
        day = drop.date()
        folder = landing / "reference" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        rates = fx[fx.drop_date == drop].drop(columns="drop_date")
        rates.to_csv(folder / "fx_rates.csv", index=False, lineterminator="\n")
        written.append(folder / "fx_rates.csv")
        earlier = [d for d in state.drops if d < day]
        previous = max(earlier) if earlier else dt.date(1900, 1, 1)
        published = quotas[(quotas.published_date > previous) & (quotas.published_date <= day)]
        if len(published):
            published.drop(columns="published_date").to_csv(folder / "quotas.csv", index=False, lineterminator="\n")
            written.append(folder / "quotas.csv")
        if day == first_drop:
            territories = world.org.territories[["territory_id", "name", "region", "segment"]]
            territories.to_csv(folder / "territories.csv", index=False, lineterminator="\n")
            plans = pd.DataFrame(
                [
                    {
                        "plan_id": f"PLAN-{plan.role}", "role": plan.role, "effective_from": cfg.start_date.isoformat(),
                        "currency": cfg.reporting_currency, "base_salary_annual": plan.base_salary_usd,
                        "commission_rate": plan.commission_rate, "accelerator_threshold": plan.accelerator_threshold,
                        "accelerator_multiplier": plan.accelerator_multiplier,
                    }
                    for plan in cfg.comp_plans
                ]
            )  # fmt: skip
            plans.to_csv(folder / "compensation_plans.csv", index=False, lineterminator="\n")
            written += [folder / "territories.csv", folder / "compensation_plans.csv"]
    return written


def quota_frame(world: World, until: dt.date) -> pd.DataFrame:
    """Quarterly quotas per AE and AM (prorated for partial tenure, halved while ramping) and per team.

    Quotas come from the plan, not from what happened: expected bookings per territory from the demand model,
    times `quota_multiple_of_expected`, published two weeks before each fiscal quarter starts.
    """
    cfg, org = world.cfg, world.org
    first_q = fiscal_quarter_start(np.array([np.datetime64(cfg.start_date, "D")]), cfg.fiscal_year_start_month)[0]
    last_q = fiscal_quarter_start(np.array([np.datetime64(until + dt.timedelta(days=20), "D")]),
                                  cfg.fiscal_year_start_month)[0]  # fmt: skip
    quarters = []
    q = first_q
    while q <= last_q:
        nxt = (q.astype("datetime64[M]") + 3).astype("datetime64[D]")
        quarters.append((q, nxt))
        q = nxt
    expected = _expected_bookings_per_day(cfg)
    accounts = world.customers.accounts
    share = accounts.groupby("territory_index").size() / len(accounts)
    rows = []
    seats = org.seats
    for q_start, q_end in quarters:
        days = np.arange(q_start, q_end)
        demand = demand_factor(cfg, days).sum() * expected
        label = fiscal_label(q_start, cfg.fiscal_year_start_month)
        for role, role_share in (("AE", 0.7), ("AM", 0.3)):
            role_seats = seats[seats.role == role]
            if role_seats.empty:
                role_seats, role_share = seats[seats.role == "AE"], 0.3
            for seat in role_seats.itertuples():
                per_seat = (
                    demand
                    * role_share
                    * share.get(seat.territory_index, 0.0)
                    / ((role_seats.territory_index == seat.territory_index).sum())
                )
                start, end = org.seat_start[seat.seat_index], org.seat_start[seat.seat_index + 1]
                for k in range(start, end):
                    user = org.tenure_user[k]
                    held_from = max(q_start, org.tenure_from[k].astype("datetime64[D]"))
                    held_to = min(q_end, org.tenure_from[k + 1].astype("datetime64[D]") if k + 1 < end else q_end)
                    if held_to <= held_from:
                        continue
                    fraction = (held_to - held_from).astype(int) / (q_end - q_start).astype(int)
                    hire = org.users.hire_date.iat[user]
                    ramping = (np.datetime64(hire, "D") + cfg.ramp_days) > held_from
                    amount = per_seat * fraction * cfg.quota_multiple_of_expected * (0.5 if ramping else 1.0)
                    rows.append({"user_index": user, "team_index": seat.territory_index, "quota": amount,
                                 "period_start": q_start, "period_end": q_end - 1, "label": label})  # fmt: skip
    quotas = pd.DataFrame(rows)
    quotas["quota"] = (quotas.quota / 1000).round() * 1000
    users = org.users
    quotas["owner_id"] = users.user_id.to_numpy()[quotas.user_index]
    quotas["quota_type"] = "individual"
    managers = users[users.role == "Manager"].set_index("territory_index").user_id
    team = quotas.groupby(["team_index", "period_start", "period_end", "label"], as_index=False).quota.sum()
    team["owner_id"] = managers.loc[team.team_index].to_numpy()
    team["quota_type"] = "team"
    quotas = pd.concat([quotas, team], ignore_index=True)
    quotas = quotas[quotas.period_start <= np.datetime64(until + dt.timedelta(days=20), "D")]
    out = pd.DataFrame({
        "quota_id": [f"Q-{p}-{o}" for p, o in zip(quotas.label, quotas.owner_id, strict=True)],
        "owner_id": quotas.owner_id, "quota_type": quotas.quota_type, "fiscal_period": quotas.label,
        "period_start": pd.to_datetime(quotas.period_start).dt.strftime("%Y-%m-%d"),
        "period_end": pd.to_datetime(quotas.period_end).dt.strftime("%Y-%m-%d"),
        "quota_amount": quotas.quota.map(lambda v: f"{v:.2f}"), "currency": cfg.reporting_currency,
        "published_date": (pd.to_datetime(quotas.period_start) - pd.Timedelta(days=14)).dt.date,
    })  # fmt: skip
    return (
        out.drop_duplicates("quota_id").sort_values(["period_start", "quota_type", "owner_id"]).reset_index(drop=True)
    )


def fiscal_label(quarter_start: np.datetime64, fiscal_start_month: int) -> str:
    """`FY2025-Q1` style label; a fiscal year is named for the calendar year in which it ends."""
    day = pd.Timestamp(quarter_start)
    year = day.year + (1 if fiscal_start_month > 1 and day.month >= fiscal_start_month else 0)
    return f"FY{year}-Q{(day.month - fiscal_start_month) % 12 // 3 + 1}"


def _expected_bookings_per_day(cfg: WorldConfig) -> float:
    """Mean bookings per day at demand factor 1, from the win model with average reps (a plan, not a forecast)."""
    rng = np.random.default_rng(0)
    advance = np.array([s.advance_logit for s in cfg.stages])
    total = 0.0
    for segment in cfg.segments:
        health = segment.win_logit_shift + rng.normal(0, np.hypot(cfg.engagement_weight, cfg.luck_sd), 20_000)
        win = (1 / (1 + np.exp(-(advance[None, :] + health[:, None])))).prod(axis=1).mean()
        total += segment.share_of_accounts * win * segment.median_amount_usd * np.exp(segment.amount_sigma**2 / 2)
    opportunities_per_day = cfg.opportunities_per_day + cfg.leads_per_day * cfg.lead_conversion_rate * (
        cfg.inbound_lead_share * 1.6 + (1 - cfg.inbound_lead_share) * 0.6
    )
    return total * opportunities_per_day


def _write_calendar(
    con, world: World, new: pd.DataFrame, all_windows: pd.DataFrame, landing: Path, end_exclusive: pd.Timestamp
) -> list[Path]:
    reps = _calendar_reps(world)
    meetings = con.execute(
        f"select * from meetings where created_at < timestamp '{end_exclusive}' order by created_at, uid"
    ).fetchdf()
    attendees = con.execute(
        "select a.* from meeting_attendees a semi join (select uid from meetings "
        f"where created_at < timestamp '{end_exclusive}') m using (uid) order by a.uid, a.email"
    ).fetchdf()
    for column in ("created_at", "start_at", "original_start_at", "rescheduled_at", "cancelled_at"):
        meetings[column] = pd.to_datetime(meetings[column]).dt.tz_localize("UTC")
    customer = calendar.customer_meeting_objects(meetings, attendees)
    objects = [customer]
    if world.cfg.internal_meetings:
        # built over a fixed horizon, not up to today, so that `advance` re-exports the same series
        horizon = world.cfg.end_date + dt.timedelta(days=INTERNAL_MEETING_HORIZON_DAYS)
        internal = calendar.build_internal_meetings(
            reps,
            world.cfg.start_date,
            horizon,
            np.random.default_rng([world.seed, 6]),
            fiscal_year_start_month=world.cfg.fiscal_year_start_month,
        )
        objects = [internal, customer]
    drops = [
        (row.drop_date.date(), row.window_start.tz_localize("UTC"), row.window_end.tz_localize("UTC"))
        for row in new.itertuples()
    ]
    files = calendar.write_calendar_drops(objects, reps, drops, landing.parent)
    # the truth is what the files show: each object as of its last export, and none a mailbox never exported
    every_drop = [
        (row.drop_date.date(), row.window_start.tz_localize("UTC"), row.window_end.tz_localize("UTC"))
        for row in all_windows.itertuples()
    ]
    occurrences = calendar.occurrences(objects, end_exclusive.tz_localize("UTC"), reps=reps, drops=every_drop)
    con.register("calendar_occurrences", occurrences)
    return files


def _calendar_reps(world: World) -> pd.DataFrame:
    users = world.org.users
    return pd.DataFrame({
        "user_id": users.user_id, "email": users.email, "first_name": users.first_name, "last_name": users.last_name,
        "timezone": users.timezone, "manager_user_id": users.manager_user_id, "team_id": users.team_id,
        "role": users.role.replace({"Director": "Manager", "VP": "Manager"}),
        "start_date": pd.to_datetime(users.hire_date).dt.date,
        "end_date": pd.to_datetime(users.termination_date).dt.date,
    })  # fmt: skip


def _write_truth(
    con, world: World, state: WorldState, out_dir: Path, end_exclusive: pd.Timestamp, manifest: list[dict]
) -> None:
    truth = out_dir / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    end = f"timestamp '{end_exclusive}'"
    queries = {
        "opportunity_outcomes": f"""
            select t.opportunity_id, a.account_id, t.segment, o.opportunity_type, t.currency,
                   printf('%.2f', t.amount) as amount, {TS.format("t.created_at")} as created_at,
                   case when t.is_won then 'Closed Won' else 'Closed Lost' end as outcome,
                   {TS.format("t.closed_at")} as closed_at,
                   case when t.closed_at < {end} then 'true' else 'false' end as is_closed_as_of_end,
                   round(t.true_p_win_at_creation, 6) as true_p_win_at_creation
            from truth_outcomes t join opportunities o using (opportunity_id)
            join accounts a on a.account_row = o.account_row
            where t.created_at < {end} order by t.created_at, t.opportunity_id""",
        "stage_entries": f"""
            select opportunity_id, stage, stage_number, {TS.format("entered_at")} as entered_at,
                   round(true_p_win, 6) as true_p_win
            from truth_stage_entries where entered_at < {end} order by entered_at, opportunity_id, stage_number""",
        "bookings": f"""
            select strftime(cast(t.closed_at as date), '%Y-%m-%d') as booking_date,
                   '{world.cfg.reporting_currency}' as reporting_currency,
                   printf('%.2f', sum(t.amount * coalesce(f.rate, 1.0))) as bookings_amount, count(*) as won_deals
            from truth_outcomes t
            left join fx f on f.rate_date = cast(t.closed_at as date) and f.from_currency = t.currency
            where t.is_won and t.closed_at < {end} group by 1 order by 1""",
        "reps": f"""
            select user_id, role, round(skill, 4) as skill, round(optimism, 4) as optimism,
                   strftime(hire_date, '%Y-%m-%d') as hire_date, strftime(termination_date, '%Y-%m-%d')
                   as termination_date
            from user_truth where hire_date - interval 14 day < {end} order by user_id""",
        "activity_links": f"""
            select 'Task' as crm_object, task_id as crm_id, 'phone' as source, source_call_id as source_id
            from tasks where source_call_id is not null and created_at < {end}
            union all
            select 'Event', event_id, 'calendar', calendar_uid from crm_events where created_at < {end}
            order by 1, 2""",
        "calendar_occurrences": """
            select uid, strftime(recurrence_id, '%Y-%m-%dT%H:%M:%SZ') as recurrence_id, kind,
                   organizer_user_id, strftime(start_at, '%Y-%m-%dT%H:%M:%SZ') as start_at,
                   strftime(end_at, '%Y-%m-%dT%H:%M:%SZ') as end_at, is_all_day, status
            from calendar_occurrences order by start_at, uid, recurrence_id""",
    }
    for name, query in queries.items():
        con.execute(f"copy ({query}) to '{truth / (name + '.csv')}' (header, delimiter ',')")
    path = truth / "faults.csv"
    existing = pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None
    frame = pd.DataFrame(manifest, columns=faults.MANIFEST_COLUMNS)
    if existing is not None:
        frame = pd.concat([existing, frame.astype(str)], ignore_index=True)
    if state.faults or existing is not None:
        frame.to_csv(path, index=False, lineterminator="\n")
