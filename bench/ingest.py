"""Ingestion stages for `python -m bench run`, each run as its own process by `bench.probe`.

`load` ingests sources into a warehouse file as the Dagster assets do (ledger, typing, checks, quarantine, E.164).
`floor` is the bar the loader is measured against: DuckDB's bare `read_csv` copying the same CSV files into tables
of a fresh database file, one statement per table, with its own type detection and nothing else.
Both print `ROWS=<n>` (and `OCCURRENCES=<n>` for calendars) for the bench table.

`compare` measures the two side by side on a landing folder, source by source (the CRM, then the reference data,
then the call records, into one warehouse, as the Dagster job loads them), `--runs` times, and prints each wall,
the medians and the ratio of the medians per source. Each `--checkout` adds that checkout's `load`, run in turn with
the others in every run: the loader before and after a change, measured on the same files, by the same harness and
under the same load of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

from ingestion.ingest import files_for
from ingestion.mapping import load_mappings
from ingestion.run import ingest_everything


def connect(database: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse with the memory budget the Dagster `warehouse` resource uses."""
    return duckdb.connect(str(database), config={"memory_limit": os.environ.get("WAREHOUSE_MEMORY_LIMIT", "2GB")})


def load(landing: Path, database: Path, sources: tuple[str, ...]) -> None:
    with connect(database) as con:
        loads = ingest_everything(con, landing, sources=sources)
    print(f"ROWS={sum(load.rows_read for load in loads.values())}")
    calendar = loads.get("calendar_events")
    if calendar is not None:
        print(f"OCCURRENCES={calendar.occurrences}")
        print(f"FALLBACK_FILES={len(calendar.fallback_files)}")
    print(f"FILES={sum(len(load.files) for load in loads.values())}")


def floor(landing: Path, database: Path, sources: tuple[str, ...]) -> None:
    mappings = load_mappings()
    rows = 0
    with connect(database) as con:
        for mapping in mappings.files:
            if mapping.table.source not in sources or mapping.vendor in ("hubspot", "asterisk"):
                continue
            paths = [str(path) for path in files_for(mapping, landing)]
            if not paths:
                continue
            con.execute(f"create or replace table floor_{mapping.table.name} as select * from read_csv({paths})")
            rows += con.execute(f"select count(*) from floor_{mapping.table.name}").fetchall()[0][0]
    print(f"ROWS={rows}")


REPO = Path(__file__).resolve().parents[1]
COMPARED_SOURCES = ("crm", "reference", "phone")  # the CSV sources, in the order the Dagster job loads them


def probe(mode: str, landing: Path, database: Path, source: str, checkout: Path | None = None) -> dict:
    """Wall time, CPU time, peak RSS and rows of one `load` or `floor` process, measured by bench.probe; `checkout`
    runs that checkout's code instead of this one's."""
    env, cwd = dict(os.environ), None
    if checkout is not None:
        env["PYTHONPATH"], cwd = str(checkout), checkout
    command = [sys.executable, "-m", "bench.probe", sys.executable, "-m", "bench.ingest", mode]
    command += ["--landing", str(landing.resolve()), "--database", str(database), "--sources", source]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(command, check=False, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = completed.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    # CPU time, user and system, of the process and its DuckDB threads: steadier than the wall on a shared machine
    result["cpu_seconds"] = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if result["returncode"] != 0:
        raise SystemExit(f"{mode} of {source} failed ({result['returncode']}): {' '.join(command)}")
    result["rows"] = next((int(line[5:]) for line in lines if line.startswith("ROWS=")), 0)
    return result


def compare(landing: Path, runs: int, sources: tuple[str, ...], checkouts: list[Path | None], work: Path) -> None:
    """Each run loads each source with each checkout's loader into a warehouse of its own (the checkouts in turn,
    their order swapped from one run to the next) and copies it by bare `read_csv` once; then a table per source
    and loader of the walls, their median, the median CPU time, and the ratios of the medians."""
    names = [str(checkout) if checkout else "this checkout" for checkout in checkouts]
    walls: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    peaks: dict[tuple[str, str], list[float]] = {}
    rows: dict[tuple[str, str], int] = {}
    for run in range(1, runs + 1):
        for path in work.glob("*.duckdb*"):
            path.unlink()
        turn = list(enumerate(checkouts)) if run % 2 else list(enumerate(checkouts))[::-1]
        for source in sources:
            for index, checkout in turn:
                result = probe("load", landing, work / f"warehouse-{index}.duckdb", source, checkout)
                walls.setdefault((names[index], source), []).append(result["wall_seconds"])
                cpus.setdefault((names[index], source), []).append(result["cpu_seconds"])
                peaks.setdefault((names[index], source), []).append(result["peak_rss_mb"])
                rows[(names[index], source)] = result["rows"]
            result = probe("floor", landing, work / "floor.duckdb", source)
            walls.setdefault(("floor", source), []).append(result["wall_seconds"])
            cpus.setdefault(("floor", source), []).append(result["cpu_seconds"])
            rows[("floor", source)] = result["rows"]
            (work / "floor.duckdb").unlink(missing_ok=True)
            loads = ", ".join(f"{name} {walls[(name, source)][-1]:.2f} s" for name in names)
            print(f"run {run}, {source}: ingest by {loads}; bare read_csv {walls[('floor', source)][-1]:.2f} s")
    budget = os.environ.get("WAREHOUSE_MEMORY_LIMIT", "2GB")
    print(f"\n{runs} run(s), {os.cpu_count()} cores, DuckDB budget {budget}\n")
    header = ["source", "loader", "rows", "ingest wall s", "median", "CPU s", "peak RSS MB", "bare read_csv wall s"]
    header += ["median", "CPU s", "ingest / bare, wall", "CPU"]
    print("| " + " | ".join(header) + " |\n|---|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for source in sources:
        bare, bare_cpu = walls[("floor", source)], statistics.median(cpus[("floor", source)])
        for name in names:
            loaded, cpu = walls[(name, source)], statistics.median(cpus[(name, source)])
            print(
                f"| {source} | {name} | {rows[(name, source)]:,} | {', '.join(f'{w:.2f}' for w in loaded)} | "
                f"{statistics.median(loaded):.2f} | {cpu:.2f} | {statistics.median(peaks[(name, source)]):,.0f} | "
                f"{', '.join(f'{w:.2f}' for w in bare)} | {statistics.median(bare):.2f} | {bare_cpu:.2f} | "
                f"{statistics.median(loaded) / statistics.median(bare):.2f}x | {cpu / bare_cpu:.2f}x |"
            )
            if rows[(name, source)] != rows[("floor", source)]:
                bare_rows = rows[("floor", source)]
                print(f"  {name} read {rows[(name, source)]:,} rows of {source}, bare read_csv {bare_rows:,}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("mode", choices=["load", "floor", "compare"])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--database", type=Path, help="load, floor: the database file to write")
    parser.add_argument("--sources", help="default: crm,reference,phone,calendar (compare: crm,reference,phone)")
    parser.add_argument("--runs", type=int, default=3, help="compare: how many times to measure each")
    parser.add_argument(
        "--checkout",
        type=Path,
        action="append",
        help="compare: measure this checkout's `load` (repeat to measure several side by side; `.` is this one)",
    )
    args = parser.parse_args(argv)
    if args.mode == "compare":
        sources = tuple(args.sources.split(",")) if args.sources else COMPARED_SOURCES
        # the databases go beside the landing folder: at `bench` they outgrow a small /tmp
        work = Path(tempfile.mkdtemp(prefix="compare-", dir=args.landing.resolve().parent))
        try:
            checkouts = [None if path.resolve() == REPO else path.resolve() for path in args.checkout or [REPO]]
            compare(args.landing, args.runs, sources, checkouts, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    if args.database is None:
        parser.error(f"{args.mode} needs --database")
    sources = tuple((args.sources or "crm,reference,phone,calendar").split(","))
    (load if args.mode == "load" else floor)(args.landing, args.database, sources)
    return 0


if __name__ == "__main__":
    sys.exit(main())
