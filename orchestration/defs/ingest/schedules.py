"""The daily ingest run, for drops that arrive on a timetable."""

import dagster as dg

ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.groups("ingest"),
    description="Load every new landing file into raw.*, quarantining what fails.",
    # One process, steps in dependency order: the steps all write to one DuckDB file, and a fresh process per step
    # would cost more (importing Dagster) than most incremental loads take.
    executor_def=dg.in_process_executor,
)

daily_ingest = dg.ScheduleDefinition(
    name="daily_ingest",
    job=ingest_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    description="Every day at 06:00 UTC, after the nightly exports land.",
)
