"""Crash safety of the ingest: a run killed with SIGKILL at any moment leaves every landing file loaded whole or not
at all, and the next run finishes the job with the ledger saying what happened.

The ingest runs in a child process (with its calendar workers, in a process group of its own) on a DuckDB file. The
child wraps its connection to pause at a chosen transaction boundary, so that the kill lands at a known point: with
a file's rows written and its transaction not yet committed, or just after a commit. Other kills land at a seeded
random moment of a run, while the calendar workers parse or anywhere. After each kill the ingest runs again to the
end, and the warehouse must equal the one a single clean run makes of the same world (`tiny_warehouse`).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ingestion.ledger import FINAL_STATUSES
from ingestion.run import ingest_everything
from tests.conftest import rows_per_source_file

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import sys, time
from pathlib import Path

import duckdb

from ingestion.run import ingest_everything


class PausingConnection:
    # Pauses (until killed) at the `at`-th commit, before or after it: `when` is before, after or calendar (before
    # the `at`-th commit of the calendar ingest); `calendar_parsing` only marks that the calendar ingest has
    # announced its files, and its workers start parsing them.
    def __init__(self, con, when, at, marker):
        self._con, self._when, self._at, self._marker = con, when, at, Path(marker)
        self._commits = self._calendar_commits = 0
        self._in_calendar = False

    def _pause(self, point):
        self._marker.write_text(point)
        while True:
            time.sleep(1)

    def execute(self, sql, *args, **kwargs):
        if not self._in_calendar and "raw.calendar_events" in sql and "create table" in sql:
            self._in_calendar = True
        if self._in_calendar and self._when == "calendar_parsing" and "insert into raw.load_ledger" in sql:
            result = self._con.execute(sql, *args, **kwargs)
            self._marker.write_text("calendar files announced")
            return result
        if sql.strip() == "commit":
            self._commits += 1
            self._calendar_commits += self._in_calendar
            if self._when == "before" and self._commits == self._at:
                self._pause(f"before commit {self._at}")
            if self._when == "calendar" and self._in_calendar and self._calendar_commits == self._at:
                self._pause(f"before calendar commit {self._at}")
            result = self._con.execute(sql, *args, **kwargs)
            if self._when == "after" and self._commits == self._at:
                self._pause(f"after commit {self._at}")
            return result
        return self._con.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


if __name__ == "__main__":
    database, landing, run_id, when, at, marker = sys.argv[1:]
    Path(marker).with_suffix(".began").write_text("")
    with duckdb.connect(database) as con:
        ingest_everything(PausingConnection(con, when, int(at), marker), Path(landing), run_id=run_id)
    Path(marker).write_text("finished")
"""


@pytest.fixture(scope="module")
def clean(tiny_warehouse: Path) -> dict[str, object]:
    """What a single clean run makes of the tiny world: rows per table and file, and each file's final status."""
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        return snapshot(con)


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    rows = rows_per_source_file(con)
    final = sorted(
        con.execute(
            "select table_name, path, status, rows_read, rows_loaded, rows_quarantined from raw.load_ledger "
            f"where status in {FINAL_STATUSES}"
        ).fetchall()
    )
    return {"rows": rows, "final": final}


def run_and_kill(tmp_path: Path, landing: Path, run_id: str, when: str, at: int = 0, delay: float = 0.0) -> str:
    """Run the ingest in a child process; SIGKILL it (and its calendar workers) once it pauses at the chosen
    point, or `delay` seconds after the point `when` names is reached; where the kill landed."""
    script, marker = tmp_path / "child.py", tmp_path / f"{run_id}.marker"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "warehouse.duckdb"), str(landing), run_id, when, str(at),
         str(marker)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    waiting_for = (
        marker if when in ("before", "after", "calendar", "calendar_parsing") else marker.with_suffix(".began")
    )
    deadline = time.monotonic() + 180
    try:
        while not waiting_for.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert waiting_for.exists(), f"the child ended before reaching {when} {at}: {child.communicate()[1][-2000:]}"
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=delay)
        point = marker.read_text() if marker.exists() else f"{delay:.2f} s after the child began"
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    if point == "finished":
        return "not at all: the run finished first"
    assert child.returncode == -signal.SIGKILL, child.communicate()[1][-2000:]
    return point if point != "calendar files announced" else f"{delay:.2f} s into the calendar parsing"


def rerun(tmp_path: Path, landing: Path, run_id: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ingest_everything(con, landing, run_id=run_id)
    return con


def assert_as_after_one_clean_run(con: duckdb.DuckDBPyConnection, clean: dict[str, object]) -> None:
    found = snapshot(con)
    assert found["rows"] == clean["rows"]  # nothing duplicated or lost, in raw and in quarantine, file by file
    assert found["final"] == clean["final"]  # one final ledger row per landing file, as a clean run writes it
    assert con.execute("select count(*) from raw.load_ledger where status = 'started'").fetchone()[0] == 0


def interrupted_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    return con.execute(
        "select table_name, path, reason from raw.load_ledger where status = 'interrupted' order by all"
    ).fetchall()


KILL_POINTS = [  # (when, at): before or after the at-th commit of the run, or before the calendar's at-th commit
    ("before", random.Random(42).randint(1, 14)),
    ("before", random.Random(43).randint(1, 14)),
    ("after", random.Random(44).randint(1, 14)),
    ("calendar", 1),
]


@pytest.mark.parametrize(("when", "at"), KILL_POINTS)
def test_a_run_killed_at_a_commit_is_finished_by_the_next_run_as_if_never_killed(tmp_path, tiny_world, clean, when, at):
    landing = tiny_world / "landing"
    point = run_and_kill(tmp_path, landing, "kill-1", when, at)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        committed = con.execute("select status, count(*) from raw.load_ledger group by all order by all").fetchall()
    con = rerun(tmp_path, landing, "rerun-1")
    interrupted = interrupted_rows(con)
    print(f"killed {point}: the ledger after the kill held {committed}; the rerun marked {len(interrupted)} file(s) "
          f"interrupted, e.g. {interrupted[:1]}")  # fmt: skip
    assert_as_after_one_clean_run(con, clean)
    if when == "after":
        assert interrupted == []  # killed between files: nothing was in flight
    else:
        assert interrupted, "a kill inside a load's transaction leaves its files announced"
        for table, path, reason in interrupted:
            assert reason == (
                "the run kill-1 stopped before this file finished loading (killed or crashed); nothing of it was "
                "kept; read again by run rerun-1"
            )
            assert not con.execute(
                f'select count(*) from raw."{table}" where _source_file = ? and _load_id in '
                "(select load_id from raw.load_ledger where status = 'interrupted')",
                [path],
            ).fetchone()[0]
    con.close()


def test_a_run_killed_while_the_calendar_workers_parse_is_finished_by_the_next_run(tmp_path, tiny_world, clean):
    landing = tiny_world / "landing"
    delay = random.Random(7).uniform(0.0, 0.5)
    point = run_and_kill(tmp_path, landing, "kill-1", "calendar_parsing", delay=delay)
    con = rerun(tmp_path, landing, "rerun-1")
    interrupted = interrupted_rows(con)
    calendar = [row for row in interrupted if row[0] == "calendar_events"]
    print(f"killed {point}: the rerun marked {len(calendar)} calendar file(s) interrupted")
    assert_as_after_one_clean_run(con, clean)
    assert calendar, "every file the calendar ingest set out to parse was announced before the parsing began"
    con.close()


def test_runs_killed_at_random_moments_one_after_another_end_as_one_clean_run(tmp_path, tiny_world, clean):
    landing = tiny_world / "landing"
    measure = tmp_path / "measure"
    measure.mkdir()
    began = time.monotonic()
    assert run_and_kill(measure, landing, "measure", "anywhere", delay=120) == "not at all: the run finished first"
    duration = time.monotonic() - began
    rng = random.Random(2024)
    points = []
    for attempt in range(1, 4):
        # each run has less left to do than the one before: the later kills come sooner
        delay = rng.uniform(0.1, 0.9) * duration / attempt
        points.append(run_and_kill(tmp_path, landing, f"kill-{attempt}", "anywhere", delay=delay))
        print(f"kill {attempt}: {points[-1]} (a whole run takes {duration:.2f} s)")
    assert not points[0].startswith("not at all")
    con = rerun(tmp_path, landing, "rerun-1")
    interrupted = interrupted_rows(con)
    by_run = sorted({reason.split(" stopped")[0] for _, _, reason in interrupted})
    print(f"after {attempt} kills the ledger holds {len(interrupted)} interrupted attempt(s), of {by_run}")
    assert_as_after_one_clean_run(con, clean)
    for _, _, reason in interrupted:
        assert reason.startswith("the run kill-") and "stopped before this file finished loading" in reason
    con.close()


def test_a_load_that_fails_with_an_error_is_marked_interrupted_by_the_next_run(tmp_path, tiny_world, clean):
    # Regression: a load whose transaction failed left no trace in the ledger, so nobody could tell it had run.
    landing = tiny_world / "landing"
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))

    class FailingConnection:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args, **kwargs):
            if sql.strip() == "commit":
                raise RuntimeError("disk full")
            return self._con.execute(sql, *args, **kwargs)

        def __getattr__(self, name):
            return getattr(self._con, name)

    with pytest.raises(RuntimeError, match="disk full"):
        ingest_everything(FailingConnection(con), landing, run_id="failed-1")
    statuses = dict(con.execute("select status, count(*) from raw.load_ledger group by all").fetchall())
    assert statuses.get("started") and "loaded" not in statuses  # the first batch announced, and nothing loaded
    con.close()
    con = rerun(tmp_path, landing, "rerun-1")
    assert_as_after_one_clean_run(con, clean)
    assert {reason.split(" stopped")[0] for _, _, reason in interrupted_rows(con)} == {"the run failed-1"}
    con.close()
