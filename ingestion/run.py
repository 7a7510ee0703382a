"""Ingest every source in one call, in the order the Dagster ingest job uses; for tests, benchmarks and scripts."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ingestion.calendar_ingest import CalendarWindowSettings, ingest_calendars
from ingestion.ingest import Log, TableLoad, ingest_csv_table, load_order
from ingestion.mapping import Mappings, load_mappings
from ingestion.phones import PhoneNormalizer


def ingest_everything(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    *,
    mappings: Mappings | None = None,
    calendar: CalendarWindowSettings | None = None,
    sources: tuple[str, ...] = ("crm", "reference", "phone", "calendar"),
    run_id: str | None = None,
    log: Log | None = None,
) -> dict[str, TableLoad]:
    """Load the new files of every canonical table (referenced tables first), then the calendars."""
    mappings = mappings or load_mappings()
    phones = PhoneNormalizer()
    loads: dict[str, TableLoad] = {}
    for table in load_order(mappings):
        if mappings.tables[table].source in sources:
            loads[table] = ingest_csv_table(con, mappings, table, landing, run_id=run_id, phones=phones, log=log)
    if "calendar" in sources:
        loads["calendar_events"] = ingest_calendars(con, landing, calendar, run_id=run_id, log=log)
    return loads
