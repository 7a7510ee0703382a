"""Jobs that build the warehouse: the dbt models alone, and the whole refresh from landing files to marts."""

import dagster as dg

transform_job = dg.define_asset_job(
    "transform",
    selection=dg.AssetSelection.groups("staging", "intermediate", "marts"),
    description="Build and test the dbt models (staging, intermediate, marts) from raw.*.",
    executor_def=dg.in_process_executor,
)

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.groups("ingest", "staging", "intermediate", "marts"),
    description="Load new landing files into raw.*, then build and test the dbt models.",
    # One process: every step writes to the one DuckDB file.
    executor_def=dg.in_process_executor,
)

daily_refresh = dg.ScheduleDefinition(
    name="daily_refresh",
    job=refresh_job,
    cron_schedule="30 6 * * *",
    execution_timezone="UTC",
    description="Every day at 06:30 UTC, after the 06:00 ingest: the marts as of the latest drop.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
