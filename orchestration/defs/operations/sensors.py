"""Free what dead runs hold, so that the next run does not wait for a pool slot forever."""

import dagster as dg

from orchestration.lib.recovery import recover_abandoned_runs


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def abandoned_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Every minute under the daemon: a run whose process was killed is marked failed and its pool slot freed
    (`orchestration/lib/recovery.py`); `make materialize` does the same before each run."""
    recovered = recover_abandoned_runs(context.instance, log=context.log.warning)
    if recovered:
        return dg.SkipReason(f"marked {len(recovered)} dead run(s) failed: {[run.run_id for run in recovered]}")
    return dg.SkipReason("no dead run holds a pool slot")
