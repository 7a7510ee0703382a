"""Ingest assets: each loads the new landing files of one source family into `raw.<table>`.

Every asset writes through the `warehouse` resource in the `warehouse_writer` pool (limit 1), skips files the load
ledger has already seen, and reports what it did per file in the ledger and in its metadata.

All of them hang off `landing/new_files`, the refresh's gate: it compares the landing folder with the ledger
(read-only) and materializes only when there is something to take in. When there is nothing, it yields no output,
and Dagster skips every step downstream of it in the run (a step whose upstream asset was not materialized in the
run does not run): no load, no dbt build, no ML stage, no check, no publication, and the warehouse file is not
touched. When anything landed, for one source or all, every ingest asset runs (those with no new file load nothing)
so that the dbt build, which needs all of them, runs too.
"""

from pathlib import Path
from typing import Any

import dagster as dg

from ingestion.calendar_ingest import CalendarWindowSettings, ingest_calendars
from ingestion.ingest import TableLoad, ingest_csv_table, load_order, parents_of
from ingestion.mapping import load_mappings
from ingestion.phones import PhoneNormalizer
from orchestration.defs.resources import WAREHOUSE_POOL, Landing, Publishing, Warehouse
from orchestration.lib.pending import PendingWork, pending_work, publication_time
from orchestration.lib.publish import DATABASE_NAME

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
NEW_FILES = dg.AssetKey(["landing", "new_files"])
# A run configured to rebuild the dbt models (a full refresh, another as-of date) rebuilds whatever landed.
REBUILD_FIELDS = {"warehouse_models": ("full_refresh", "as_of_date"), "models_on_ml": ("full_refresh", "as_of_date")}


class GateConfig(dg.Config):
    """When a refresh with nothing new to load still builds."""

    rebuild: bool = False
    """Build, audit and publish even when nothing new landed: after a change to the dbt project, the suites or the
    models (`make materialize REBUILD=1`)."""


def rebuild_requested(run_config: dict[str, Any]) -> bool:
    """Whether the run's config asks the dbt steps for something other than the latest state (a full refresh, an
    as-of date): such a run builds even when nothing new landed."""
    ops = run_config.get("ops") or {}
    return any((ops.get(op) or {}).get("config", {}).get(name) for op, names in REBUILD_FIELDS.items()
               for name in names)  # fmt: skip


@dg.asset(
    key=NEW_FILES,
    group_name="ingest",
    kinds={"files"},
    pool=WAREHOUSE_POOL,
    output_required=False,
    description="The landing files the warehouse has not taken in yet: files the load ledger has not seen with "
    "their content, and files loaded since the current publication. Materialized only when there are any; when "
    "there are none the refresh stops here and every later step is skipped.",
)
def new_files(
    context: dg.AssetExecutionContext, config: GateConfig, warehouse: Warehouse, landing: Landing,
    publishing: Publishing,
):  # fmt: skip
    """The refresh's gate: one decision for the whole run, so a drop for one source still rebuilds everything."""
    database = Path(warehouse.database)
    published_at = publication_time(Path(publishing.path) / DATABASE_NAME)
    if database.exists():
        with warehouse.get_connection(read_only=True) as con:
            work = pending_work(con, landing.root, landing.mappings(), published_at)
    else:
        work = pending_work(None, landing.root, landing.mappings(), published_at)
    rebuild = config.rebuild or rebuild_requested(context.run.run_config)
    if work.nothing and not rebuild:
        # an observation, not a materialization: nothing downstream runs, and the asset's history says why
        context.log.debug(f"{work.describe()} in {landing.root}: nothing to load, build, audit or publish")
        yield dg.AssetObservation(asset_key=NEW_FILES, metadata=gate_metadata(work, rebuild))
        return
    context.log.info(f"{work.describe()}" + ("; rebuild requested" if rebuild else ""))
    yield dg.MaterializeResult(data_version=dg.DataVersion(work.digest), metadata=gate_metadata(work, rebuild))


def gate_metadata(work: PendingWork, rebuild: bool) -> dict[str, object]:
    paths = sorted(path for paths in work.new_files.values() for path in paths)
    return {
        "new_files": work.files,
        "new_files_per_table": dg.MetadataValue.json({table: len(paths) for table, paths in work.new_files.items()}),
        "first_new_files": dg.MetadataValue.json(paths[:20]),
        "loaded_since_publication": work.unpublished_loads,
        "rebuild_requested": rebuild,
        "why": work.describe(),
    }


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
        deps=[NEW_FILES, *(dg.AssetKey(["raw", parent]) for parent in parents_of(CANONICAL, table))],
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
            deps=[NEW_FILES],
            description="Calendar event occurrences after recurrence expansion, one row per occurrence per "
            "export (latest export of a UID is current); start and end in UTC beside the original TZID.",
        ),
        dg.AssetSpec(
            ["raw", "calendar_attendees"],
            group_name="ingest",
            kinds={"duckdb", "ical"},
            deps=[NEW_FILES],
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
