"""`python -m orchestration.lib.recovery`: release what runs that died left behind in the Dagster instance.

Every step that writes the warehouse takes the one slot of the `warehouse_writer` pool. A run whose process is
killed (SIGKILL, an out-of-memory kill, a machine that lost power) never gives its slot back and stays `STARTED`, so
every later run waits for that slot forever without a word. Dagster frees slots when a run ends, and its daemon can
fail runs whose worker died only for launchers that report worker health, which the default launcher and
`dagster job execute` do not. So `make materialize` calls this first, and the `abandoned_runs` sensor does the
same under `dagster dev`: a run that is not finished and whose process no longer exists is marked failed, with a
message saying so, and its slots are freed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES


@dataclass(frozen=True)
class Recovered:
    run_id: str
    job_name: str
    pid: int | None
    status: str


def run_process(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process that executes the run's steps, from its engine event ("Executing steps in process (pid: N)")."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.event_specific_data if record.dagster_event else None
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None:
            return int(getattr(pid, "value", pid))
    return None


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def recover_abandoned_runs(instance: dg.DagsterInstance, log: Callable[[str], None] = print) -> list[Recovered]:
    """Fail the unfinished runs whose process is gone and free the pool slots of every run that has ended."""
    recovered = []
    unfinished = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING,
                                dg.DagsterRunStatus.CANCELING])
    )  # fmt: skip
    for record in unfinished:
        run = record.dagster_run
        pid = run_process(instance, run.run_id)
        if pid is None or pid == os.getpid() or process_exists(pid):
            continue  # still running, or not yet executing steps (it holds no slot then)
        instance.report_run_failed(
            run,
            f"The process of this run (pid {pid}) is gone: it was killed or crashed before the run ended. Marked "
            "failed so that its pool slots are freed and later runs can start; the next run reloads what it "
            "left half done.",
        )
        recovered.append(Recovered(run.run_id, run.job_name, pid, run.status.value))
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.status in FINISHED_STATUSES:
                storage.free_concurrency_slots_for_run(run_id)
    for run in recovered:
        log(f"run {run.run_id} ({run.job_name}) was {run.status.lower()} but its process {run.pid} is gone: marked "
            "failed and its warehouse_writer slot freed")  # fmt: skip
    return recovered


def main() -> None:
    if not os.environ.get("DAGSTER_HOME"):
        return  # an ephemeral instance keeps nothing between runs
    with dg.DagsterInstance.get() as instance:
        recover_abandoned_runs(instance)


if __name__ == "__main__":
    main()
