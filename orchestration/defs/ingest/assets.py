"""Ingest assets: each loads the new landing files of one source family into `raw.<table>`.

Every asset writes through the `warehouse` resource in the `warehouse_writer` pool (limit 1), skips files the load
ledger has already seen, and reports what it did per file in the ledger and in its metadata.
"""

import dagster as dg

from ingestion.calendar_ingest import CalendarWindowSettings, ingest_calendars
from ingestion.ingest import TableLoad, ingest_csv_table, load_order, parents_of
from ingestion.mapping import load_mappings
from ingestion.phones import PhoneNormalizer
from orchestration.defs.resources import WAREHOUSE_POOL, Landing, Warehouse

# canonical table -> what a row is (the asset's description in the UI)
GRAIN: dict[str, str] = {
    "user_role": "CRM user roles (the management hierarchy), one row per role version exported.",
    "user": "CRM users (reps, managers, ops), one row per user version exported.",
    "account": "CRM accounts, one row per account version exported.",
    "contact": "CRM contacts, one row per contact version exported; phones as written and in E.164.",
    "lead": "CRM leads, one row per lead version exported; phone as written and in E.164.",
    "opportunity_stage": "CRM stage definitions (Salesforce's OpportunityStage), one row per stage version exported.",
    "opportunity": "CRM opportunities, one row per opportunity version exported (the latest per Id is current).",
    "opportunity_history": "CRM opportunity field history, one row per stage, amount or close-date change.",
    "task": "CRM tasks (calls and e-mails logged against people and deals), one row per task version exported.",
    "event": "CRM events (meetings synced from calendars), one row per event version exported.",
    "fx_rates": "Daily FX rates to the reporting currency, one row per rate date and currency pair.",
    "quotas": "Quotas per owner (rep or team) and fiscal period, one row per quota version.",
    "territories": "Sales territories (region x segment), one row per territory version.",
    "compensation_plans": "Compensation plans per sales role, one row per plan version.",
    "phone_calls": "Call-detail records from the phone system, one row per call; numbers in E.164 beside the "
    "original text.",
}
CANONICAL = load_mappings()
CSV_TABLES = [table for table in load_order(CANONICAL) if CANONICAL.tables[table].source != "calendar"]


def _metadata(load: TableLoad) -> dict[str, object]:
    metadata = load.metadata()
    return {
        "dagster/row_count": metadata.pop("rows_loaded"),
        **{key: dg.MetadataValue.json(value) if isinstance(value, dict | list) else value
           for key, value in metadata.items()},
    }  # fmt: skip


def _csv_asset(table: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", table],
        group_name="ingest",
        kinds={"duckdb", "csv"},
        pool=WAREHOUSE_POOL,
        # tables a load reuses (phone_calls reads the phone numbers the CRM tables established) load first
        deps=[dg.AssetKey(["raw", parent]) for parent in parents_of(CANONICAL, table)],
        description=GRAIN.get(table, f"Canonical raw table {table}, one row per exported record version."),
    )
    def load(context: dg.AssetExecutionContext, warehouse: Warehouse, landing: Landing) -> dg.MaterializeResult:
        with warehouse.get_connection() as con:
            result = ingest_csv_table(
                con, landing.mappings(), table, landing.root, run_id=context.run.run_id, phones=PhoneNormalizer(),
                log=context.log.info,
            )  # fmt: skip
        for report in result.files:
            if report.outcome.status == "rejected":
                context.log.warning(f"rejected {report.path}: {report.outcome.reason}")
            if report.outcome.extra_columns:
                context.log.warning(
                    f"{report.path}: kept unknown column(s) {report.outcome.extra_columns} in _extra_columns"
                )
        return dg.MaterializeResult(metadata=_metadata(result))

    return load


csv_assets = [_csv_asset(table) for table in CSV_TABLES]


class CalendarConfig(dg.Config):
    """Recurring meetings are expanded from `window_start` to `horizon_days` after the newest export date."""

    window_start: str = CalendarWindowSettings.window_start
    horizon_days: int = CalendarWindowSettings.horizon_days
    workers: int = 0  # 0: one per core


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["raw", "calendar_events"],
            group_name="ingest",
            kinds={"duckdb", "ical"},
            description="Calendar event occurrences after recurrence expansion, one row per occurrence per "
            "export (latest export of a UID is current); start and end in UTC beside the original TZID.",
        ),
        dg.AssetSpec(
            ["raw", "calendar_attendees"],
            group_name="ingest",
            kinds={"duckdb", "ical"},
            description="Attendees of calendar events, one row per attendee per exported VEVENT.",
        ),
    ],
    name="calendars",
    pool=WAREHOUSE_POOL,
)
def calendars(context: dg.AssetExecutionContext, config: CalendarConfig, warehouse: Warehouse, landing: Landing):
    """Mailbox exports (`calendar/<date>/<mailbox>.ics`) expanded with the fast reader, icalendar as fallback."""
    settings = CalendarWindowSettings(config.window_start, config.horizon_days, config.workers or None)
    with warehouse.get_connection() as con:
        result = ingest_calendars(con, landing.root, settings, run_id=context.run.run_id, log=context.log.info)
    for report in result.files:
        if report.outcome.status == "rejected":
            context.log.warning(f"rejected {report.path}: {report.outcome.reason}")
    metadata = _metadata(result)
    metadata["occurrences_loaded"] = result.occurrences
    metadata["files_read_by_fallback"] = result.fallback_files
    yield dg.MaterializeResult(asset_key=["raw", "calendar_events"], metadata=metadata)
    yield dg.MaterializeResult(
        asset_key=["raw", "calendar_attendees"], metadata={"dagster/row_count": result.attendees}
    )
