"""Crash safety of the whole refresh: a `dagster job execute` run killed with SIGKILL during ingestion, during the
dbt build or during publish leaves BI on the last good publication, and the next run ends as if nothing had happened.

Each scenario starts from the same folder: a first refresh over the first half of the drops has published, and the
rest of the drops have landed since. A second refresh runs as `make materialize` runs it, in a process group of its
own (so the kill reaches dbt's process and the calendar workers too), and is killed at a point read from its output
or its process tree. The published copy must still be the first run's, whole; a rerun must publish, and the working
warehouse must then equal the one a clean, uninterrupted second refresh makes of the same folder.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from tests.conftest import rows_per_source_file

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
# a refresh of the tiny world takes about a minute here; five is a hung run, not a slow one
REFRESH_TIMEOUT_S = 300
_RUN_ID = re.compile(r" - refresh - (?P<run_id>[0-9a-f-]{36}) - ")
_DBT_MODEL_BUILT = re.compile(r"\b(?P<done>\d+) of (?P<total>\d+) OK created ")
_TABLE_PUBLISHED = re.compile(r"published marts\.\w+: [\d,]+ rows")


@dataclass
class Refresh:
    """What one refresh process did: its run, exit code, output and wall time, and where it was killed."""

    run_id: str
    status: str  # in the instance's run history
    returncode: int
    lines: list[str]
    seconds: float
    killed_at: str | None = None
    recovered: str = ""  # what the recovery step said before the run started


@dataclass
class Watch:
    """What the watcher has seen so far of a refresh: its output lines and the command lines of its processes."""

    lines: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)


def session_processes(session: int) -> list[str]:
    """Command lines of the live processes in process group `session` (the refresh and everything it started)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            # the fields after the command name, which may hold spaces and parentheses: state, ppid, pgrp, ...
            state, _, group = stat.rpartition(")")[2].split()[:3]
            if int(group) != session or state == "Z":  # a zombie holds nothing; whoever adopted it reaps it
                continue
            found.append(Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # the process ended while we looked
    return found


def refresh(folder: Path, kill_when: Callable[[Watch], str | None] | None = None) -> Refresh:
    """Run the `refresh` job over `folder` as `make materialize` does, in a process group of its own; with
    `kill_when`, SIGKILL the whole group as soon as it names the point reached (it sees every line and the group's
    processes, polled every 20 ms)."""
    home = folder / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "WAREHOUSE_PATH": str(folder / "warehouse.duckdb"),
        "LANDING_DIR": str(folder / "landing"),
        "QUALITY_DIR": str(folder / "quality"),
        "PUBLISH_DIR": str(folder / "published"),
        "DAGSTER_HOME": str(home),
    }
    env.pop("PUBLISH_POSTGRES_DSN", None)
    command = [DAGSTER, "job", "execute", "-m", "orchestration.definitions", "-j", "refresh", "-c",
               str(REPO / "orchestration" / "run_config.yaml")]  # fmt: skip
    started = time.monotonic()
    # as `make materialize`: first release what runs that died left behind (their pool slot)
    recovery = subprocess.run([sys.executable, "-m", "orchestration.lib.recovery"], cwd=REPO, env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        start_new_session=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    watch, killed_at, ended = Watch(), None, False
    try:
        while not ended:
            assert time.monotonic() - started < REFRESH_TIMEOUT_S, (
                f"the refresh hung for {REFRESH_TIMEOUT_S} s (a pool slot still claimed by a killed run?); its "
                "output:\n" + "\n".join(watch.lines[-30:])
            )
            try:
                line = lines.get(timeout=0.02)
                while line is not None:
                    watch.lines.append(line)
                    if kill_when is not None and killed_at is None and (killed_at := kill_when(watch)):
                        break
                    line = lines.get_nowait()
                ended = line is None and killed_at is None
            except queue.Empty:
                pass
            if kill_when is not None and killed_at is None and not ended:
                watch.processes = session_processes(process.pid)
                killed_at = kill_when(watch)
            if killed_at:
                os.killpg(process.pid, signal.SIGKILL)
                break
        returncode = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
    seconds = time.monotonic() - started
    reader.join(timeout=60)
    while (line := _next(lines)) is not None:
        watch.lines.append(line)
    run_id, status = latest_run(home)
    # a run killed before its first log line is known only to the instance's run history
    assert {match["run_id"] for line in watch.lines if (match := _RUN_ID.search(line))} <= {run_id}
    if killed_at:
        # nothing of the group outlives the kill: a surviving dbt or calendar worker would hold the warehouse
        deadline = time.monotonic() + 10
        while session_processes(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session_processes(process.pid) == [], "processes of the killed refresh survived the kill"
    return Refresh(run_id, status, returncode, watch.lines, seconds, killed_at, recovery.stdout.strip())


def latest_run(home: Path) -> tuple[str, str]:
    """The newest run in the Dagster instance at `home`, and its status as the run history records it."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(limit=1)[0]
        return run.run_id, run.status.value


def _next(lines: queue.Queue[str | None]) -> str | None:
    try:
        return lines.get_nowait()
    except queue.Empty:
        return None


def during_ingestion(watch: Watch) -> str | None:
    """While the calendar workers parse: the calendar ingest announced its files (`started`, committed) and has not
    committed their rows, which it does only once every file is parsed."""
    if any(_DBT_MODEL_BUILT.search(line) or "calendar [" in line for line in watch.lines):
        return None
    if any("multiprocessing.spawn" in command for command in watch.processes):
        return "while the calendar workers parsed"
    return None


def during_dbt_build(watch: Watch) -> str | None:
    """A third of the way through `dbt build`, models already rebuilt and most of them not yet."""
    built = _DBT_MODEL_BUILT.search(watch.lines[-1]) if watch.lines else None
    if built and int(built["done"]) >= int(built["total"]) // 3:
        return f"at dbt's {built['done']} of {built['total']} nodes"
    return None


def during_publish(watch: Watch) -> str | None:
    """After the first table of the new publication was written into its `.building` file, before the swap."""
    if watch.lines and _TABLE_PUBLISHED.search(watch.lines[-1]):
        return "after '" + _TABLE_PUBLISHED.search(watch.lines[-1])[0] + "'"
    return None


def land(world: Path, folder: Path, dates: list[str]) -> None:
    """Copy the drops of `dates` from the world's landing folder into `folder/landing`, as exports arrive."""
    for source in (world / "landing").iterdir():
        for drop in source.iterdir():
            if drop.name in dates:
                shutil.copytree(drop, folder / "landing" / source.name / drop.name, dirs_exist_ok=True)


def copy_folder(source: Path, target: Path) -> Path:
    """A copy of a refresh folder (no process holds its files), the published Parquet link kept a link."""
    shutil.copytree(source, target, symlinks=True)
    return target


def publication(published: Path) -> dict[str, object]:
    """The published copy's run, as-of date and row counts, opened as BI opens it; its tables' actual counts too."""
    with duckdb.connect(str(published / "sales.duckdb"), read_only=True) as con:
        row = con.execute("select run_id, as_of_date, row_counts from marts.publication").fetchone()
        run_id, as_of, row_counts = row
        counts = json.loads(row_counts)
        actual = {relation: con.execute(f"select count(*) from {relation}").fetchone()[0] for relation in counts}
    return {"run_id": run_id, "as_of_date": as_of, "row_counts": counts, "actual_counts": actual}


def warehouse_state(folder: Path) -> dict[str, object]:
    """What the working warehouse holds: rows per raw and quarantine table and landing file, and the final ledger
    row of each file (its run aside)."""
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
        rows = rows_per_source_file(con)
        final = sorted(
            con.execute(
                "select table_name, path, content_hash, status, rows_read, rows_loaded, rows_quarantined "
                "from raw.load_ledger where status in ('loaded', 'skipped', 'rejected')"
            ).fetchall()
        )
        statuses = dict(con.execute("select status, count(*) from raw.load_ledger group by all").fetchall())
    return {"rows": rows, "final": final, "statuses": statuses}


def ledger_rows(folder: Path, where: str, parameters: list[object]) -> list[tuple[str, str, str | None]]:
    """(run, path, reason) of the ledger rows that match `where`."""
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            f"select run_id, path, reason from raw.load_ledger where {where} order by path", parameters
        ).fetchall()


def landed_files(folder: Path) -> set[str]:
    landing = folder / "landing"
    return {path.relative_to(landing).as_posix() for path in landing.rglob("*") if path.is_file()}


@dataclass(frozen=True)
class Base:
    """The folder every scenario copies, the first (good) publication's run, and a clean second refresh of it."""

    folder: Path
    first_run: str
    clean: dict[str, object]
    clean_publication: dict[str, object]
    clean_seconds: float


@pytest.fixture(scope="module")
def base(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Base:
    folder = tmp_path_factory.mktemp("refresh_kill") / "base"
    dates = sorted({drop.name for drop in (tiny_world / "landing").glob("*/*") if drop.is_dir()})
    land(tiny_world, folder, dates[: len(dates) // 2])
    first = refresh(folder)
    assert first.returncode == 0, "\n".join(first.lines[-40:])
    land(tiny_world, folder, dates[len(dates) // 2 :])
    reference = copy_folder(folder, folder.with_name("clean"))
    clean = refresh(reference)
    assert clean.returncode == 0, "\n".join(clean.lines[-40:])
    return Base(folder, first.run_id, warehouse_state(reference), publication(reference / "published"), clean.seconds)


SCENARIOS = {"ingestion": during_ingestion, "dbt build": during_dbt_build, "publish": during_publish}


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(SCENARIOS))
def test_a_refresh_killed_mid_run_leaves_the_last_publication_and_its_rerun_ends_as_one_clean_refresh(
    base: Base, stage: str, tmp_path: Path
) -> None:
    folder = copy_folder(base.folder, tmp_path / "folder")
    published = folder / "published"
    killed = refresh(folder, SCENARIOS[stage])
    assert killed.killed_at, f"the refresh ended before it reached the {stage}:\n" + "\n".join(killed.lines[-40:])
    assert killed.returncode == -signal.SIGKILL

    # BI still reads the first publication, whole; a killed publish left only its `.building` file behind
    after_kill = publication(published)
    assert after_kill["run_id"] == base.first_run
    assert after_kill["actual_counts"] == after_kill["row_counts"]
    assert os.readlink(published / "parquet") == f"parquet-{base.first_run}"
    leftovers = sorted(path.name for path in published.glob(".*.building*"))
    if stage == "publish":
        assert leftovers, "the kill was meant to land while the new publication was being built"
    announced = ledger_rows(folder, "status = 'started'", [])
    if stage == "ingestion":
        assert announced, "the kill was meant to land after the calendar ingest announced its files"
        assert {run for run, _, _ in announced} == {killed.run_id}
    else:
        assert announced == []

    print(
        f"\nkilled during {stage}: SIGKILL {killed.killed_at}, {killed.seconds:.1f} s into run {killed.run_id[:8]} "
        f"(its status in Dagster's run history: {killed.status}); ledger after the kill: {len(announced)} started "
        f"row(s); published copy still run {base.first_run[:8]} ({len(after_kill['row_counts'])} tables, counts "
        f"match), leftovers {leftovers or 'none'}"
    )
    rerun = refresh(folder)
    assert rerun.returncode == 0, "the rerun after the kill failed:\n" + "\n".join(rerun.lines[-60:])
    # Regression: the killed run kept the warehouse_writer slot and the rerun waited for it forever
    assert f"run {killed.run_id} (refresh) was started but its process" in rerun.recovered
    after_rerun = publication(published)
    assert after_rerun["run_id"] == rerun.run_id
    assert after_rerun["actual_counts"] == after_rerun["row_counts"]
    # the rerun publishes what a clean second refresh publishes: no model lost or doubled the killed run's work
    assert (after_rerun["as_of_date"], after_rerun["row_counts"]) == (
        base.clean_publication["as_of_date"],
        base.clean_publication["row_counts"],
    )
    assert sorted(path.name for path in published.glob(".*.building*")) == []

    state = warehouse_state(folder)
    assert state["rows"] == base.clean["rows"]  # nothing duplicated or lost, in raw and in quarantine, file by file
    assert state["final"] == base.clean["final"]  # one final ledger row per file, as the clean refresh wrote it
    assert "started" not in state["statuses"]
    final_paths = [row[1] for row in state["final"]]
    assert len(final_paths) == len(set(final_paths))
    assert set(final_paths) == landed_files(folder)

    interrupted = ledger_rows(folder, "status = 'interrupted'", [])
    if stage == "ingestion":
        assert [path for _, path, _ in interrupted] == [path for _, path, _ in announced]
        for _, _, reason in interrupted:
            assert reason == (
                f"the run {killed.run_id} stopped before this file finished loading (killed or crashed); nothing of "
                f"it was kept; read again by run {rerun.run_id}"
            )
    else:
        # the killed run had finished ingesting: its loads stand, and the rerun had nothing left to load
        assert interrupted == []
        assert ledger_rows(folder, "run_id = ?", [killed.run_id])
        assert ledger_rows(folder, "run_id = ?", [rerun.run_id]) == []
    print(
        f"  rerun {rerun.run_id[:8]} of the {stage} kill succeeded in {rerun.seconds:.0f} s (clean refresh "
        f"{base.clean_seconds:.0f} s), marked {len(interrupted)} file(s) interrupted, published; the warehouse "
        f"equals the clean refresh's; before it: {rerun.recovered}"
    )
