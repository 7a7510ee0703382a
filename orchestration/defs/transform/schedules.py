"""Jobs that build the warehouse: the dbt models alone, and the whole refresh from landing files to the
published copy."""

import dagster as dg

transform_job = dg.define_asset_job(
    "transform",
    selection=dg.AssetSelection.groups("staging", "intermediate", "marts", "ml", "publish"),
    description="Build and test the dbt models (staging, intermediate, marts) from raw.*, score the open deals and "
    "forecast bookings (ml), build the models on those, audit, and publish when every audit passed.",
    executor_def=dg.in_process_executor,
)

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.groups("ingest", "staging", "intermediate", "marts", "ml", "publish"),
    description="Load new landing files into raw.*, build and test the dbt models, score the open deals and "
    "forecast bookings (retraining the win model when the serving one is a week old), build the models on those, "
    "audit, and publish when every audit passed.",
    # One process: every step writes to the one DuckDB file.
    executor_def=dg.in_process_executor,
)

daily_refresh = dg.ScheduleDefinition(
    name="daily_refresh",
    job=refresh_job,
    cron_schedule="30 6 * * *",
    execution_timezone="UTC",
    description="Every day at 06:30 UTC, after the 06:00 ingest: the marts as of the latest drop, today's win "
    "probabilities and forecasts, published.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
