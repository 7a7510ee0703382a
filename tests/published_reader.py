"""A BI client for the load test: `python tests/published_reader.py <published.duckdb> <hold|loop> <out.json>`.

`hold` opens one connection and keeps it for the whole test, as a connection pool does; `loop` opens a fresh
connection for every query. Each query checks one snapshot: every table has the rows `marts.publication` says it
has. It waits for the first publication, runs until `<out.json>.stop` exists, then writes what it saw to
`<out.json>`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb


def read_once(con: duckdb.DuckDBPyConnection) -> tuple[str, bool]:
    """(run id of the publication, whether every table holds the rows the publication row counts for it)."""
    run_id, row_counts = con.execute("select run_id, row_counts from marts.publication").fetchone()
    expected = json.loads(row_counts)
    counts = " union all ".join(f"select '{table}', count(*) from {table}" for table in expected)
    actual = dict(con.execute(counts).fetchall())
    return run_id, actual == expected


def main(published: Path, mode: str, out: Path) -> None:
    stop = Path(f"{out}.stop")
    reads, errors, inconsistent, longest = 0, [], 0, 0.0
    runs_seen: list[str] = []
    while not published.exists() and not stop.exists():
        time.sleep(0.05)
    held = duckdb.connect(str(published), read_only=True) if mode == "hold" and published.exists() else None
    while not stop.exists():
        started = time.perf_counter()
        try:
            if held is not None:
                run_id, consistent = read_once(held)
            else:
                with duckdb.connect(str(published), read_only=True) as con:
                    run_id, consistent = read_once(con)
            reads += 1
            inconsistent += not consistent
            if not runs_seen or runs_seen[-1] != run_id:
                runs_seen.append(run_id)
        except Exception as error:  # every error is a finding of the test
            errors.append(f"{type(error).__name__}: {error}")
        longest = max(longest, time.perf_counter() - started)
        time.sleep(0.02)
    out.write_text(json.dumps({"mode": mode, "reads": reads, "errors": errors, "inconsistent": inconsistent,
                               "longest_read_s": longest, "runs_seen": runs_seen}))  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
