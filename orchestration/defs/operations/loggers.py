"""The console logger of every job: Dagster's own, without a line per skipped step (`orchestration/lib/console.py`)."""

import dagster as dg

from orchestration.lib.console import console


@dg.definitions
def loggers() -> dg.Definitions:
    return dg.Definitions(loggers={"console": console})
