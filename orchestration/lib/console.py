"""The console log of a run, without the lines about steps Dagster skipped.

When the refresh's gate (`landing/new_files`) finds nothing new, Dagster skips every later step and says so once
per step at INFO (about 60 lines), and its execution engine warns, once per blocking check of a skipped step, that
the next step "will proceed without gating on it" (several hundred lines: every dbt test is a blocking check), when
that next step is skipped as well. None of it says more than "nothing to do"; this logger drops those lines and
nothing else, so a refresh with nothing new prints nothing and the report after it says so in one line. A warning
about a check of a step that did run is kept. The event log (the Dagster UI) keeps every event.
"""

import logging
import re

import dagster as dg
from dagster._loggers import colored_console_logger

# dagster/_core/execution/plan/active.py (1.13): "Blocking asset check '<key>' emitted no result in step '<step>';
# downstream step '<step>' will proceed without gating on it."
ENGINE_LOGGER = "dagster._core.execution.plan.active"
_UNGATED = re.compile(r"emitted no result in step '(?P<step>[^']+)'")
# and, before each STEP_SKIPPED event (DEBUG), at INFO: "... - Skipping step <step> due to skipped dependencies: [...]."
_SKIPPING = re.compile(r"Skipping step (?P<step>\S+) due to skipped dependencies")


class SkippedSteps(logging.Filter):
    """Drops what Dagster logs about the steps it skips, remembering them, and the engine's warnings about their
    checks."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        event = getattr(record, "dagster_event", None)
        if event is not None and event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            self.skipped.add(event.step_key)
            return False
        message = record.getMessage()
        if skipping := _SKIPPING.search(message):
            self.skipped.add(skipping["step"])
            return False
        ungated = _UNGATED.search(message)
        return not (ungated and ungated["step"] in self.skipped)


@dg.logger(
    colored_console_logger.config_schema,
    description="Dagster's colored console logger, without a line per skipped step (orchestration/lib/console.py).",
)
def console(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = colored_console_logger.logger_fn(init_context)
    threshold = logger.level
    # every record reaches the filter, which must see the skips even when the threshold hides them; the handler
    # keeps the configured threshold
    logger.setLevel(logging.DEBUG)
    for handler in logger.handlers:
        handler.setLevel(max(handler.level, threshold))
    skipped = SkippedSteps()
    logger.addFilter(skipped)
    engine = logging.getLogger(ENGINE_LOGGER)
    for previous in [f for f in engine.filters if isinstance(f, SkippedSteps)]:
        engine.removeFilter(previous)  # a filter of an earlier run in this process (tests run many)
    engine.addFilter(skipped)
    return logger
