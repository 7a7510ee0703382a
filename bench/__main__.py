"""`python -m bench run --preset P`: time every stage that exists at a scale preset and print a table.

Stages run one after another, each in its own process, on a fresh world under `--out` (default `bench/out/P`).
`--reuse` skips generating when that folder already holds a world (kept with `--keep`) and measures the rest on it
with a new warehouse: the loader can be measured again without waiting for the simulator.
After ingestion, `dbt build` runs on the warehouse in full (bench.dbt prints its profile: the slowest models); then
the Great Expectations suites (bench.quality): the largest fact table's suite on data frames (what the asset checks
run) and as plain SQL (the in-database floor), and every suite; after the next day's drop is ingested, `dbt build`
runs again, incrementally, and the table gives the incremental build's time over the full one's.
Record results with the machine's core count in docs/benchmarks.md.

`python -m bench oracle --preset P`: the forecast noise floor, from futures of the world (see bench.oracle).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from simulator.__main__ import source_sizes


@dataclass
class StageResult:
    stage: str
    wall_seconds: float
    rows: int
    peak_rss_mb: float
    detail: dict[str, float] = field(default_factory=dict)  # e.g. one model's time inside a dbt build

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.wall_seconds if self.wall_seconds else 0.0


def measure(command: list[str]) -> dict:
    """Wall time and peak RSS of `command`, measured by bench.probe in a separate process; `KEY=<int>` lines the
    command prints come back as counts."""
    probe = subprocess.run(
        [sys.executable, "-m", "bench.probe", *command], check=False, stdout=subprocess.PIPE, text=True
    )
    lines = probe.stdout.strip().splitlines()
    counts = {}
    for line in lines[:-1]:
        key, _, value = line.partition("=")
        if key.isupper() and value.isdigit():
            counts[key] = int(value)
        else:
            print(line)
    result = json.loads(lines[-1])
    if result["returncode"] != 0:
        raise SystemExit(f"stage failed ({result['returncode']}): {' '.join(command)}")
    result["counts"] = counts
    return result


def landing_records(landing: Path, since: set[Path] | None = None) -> int:
    """Rows written under landing/: CSV lines less the header, plus VEVENTs in .ics files.

    Files are read in chunks: a `bench` CRM drop is larger than this process should hold at once.
    """
    total = 0
    for path in landing.rglob("*"):
        if not path.is_file() or (since is not None and path in since):
            continue
        with path.open("rb") as handle:
            if path.suffix == ".ics":
                total += sum(line.startswith(b"BEGIN:VEVENT") for line in handle)
            else:
                total += max(0, sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b"")) - 1)
    return total


def run(preset: str, out: Path, seed: int, reuse: bool = False) -> list[StageResult]:
    python = sys.executable
    results = []
    if reuse and (out / "landing").is_dir():
        for name in ("warehouse.duckdb", "warehouse.duckdb.wal", "floor.duckdb", "floor.duckdb.wal"):
            (out / name).unlink(missing_ok=True)
        # a kept partial parse would spare the full build the parse a fresh one pays
        for folder in ("dbt_target", "dbt_logs"):
            shutil.rmtree(out / folder, ignore_errors=True)
    else:
        shutil.rmtree(out, ignore_errors=True)
        generate = measure([python, "-m", "simulator", "generate", "--preset", preset, "--seed", str(seed),
                            "--out", str(out), "--quiet"])  # fmt: skip
        results.append(StageResult("simulate: generate", generate["wall_seconds"], landing_records(out / "landing"),
                                   generate["peak_rss_mb"]))  # fmt: skip
    results.extend(ingest_stages(out))
    results.append(transform_stage(out, "dbt build (full)", "build", "--full-refresh"))
    results[-1].detail[LARGEST_FACT] = dbt_model_seconds(out, LARGEST_FACT) or 0.0
    results.extend(quality_stages(out))
    before = {p for p in (out / "landing").rglob("*") if p.is_file()}
    advance = measure([python, "-m", "simulator", "advance", "--days", "1", "--out", str(out), "--quiet"])
    results.append(StageResult("simulate: advance 1 day", advance["wall_seconds"],
                               landing_records(out / "landing", since=before), advance["peak_rss_mb"]))  # fmt: skip
    results.append(ingest_stage(out, "ingest: the new daily drop", "crm,reference,phone,calendar", "load"))
    results.append(transform_stage(out, "dbt build (incremental)", "build"))
    return results


def ingest_stage(out: Path, label: str, sources: str, mode: str = "load", count: str = "ROWS") -> StageResult:
    database = out / ("warehouse.duckdb" if mode == "load" else "floor.duckdb")
    result = measure([sys.executable, "-m", "bench.ingest", mode, "--landing", str(out / "landing"),
                      "--database", str(database), "--sources", sources])  # fmt: skip
    return StageResult(label, result["wall_seconds"], result["counts"].get(count, 0), result["peak_rss_mb"])


def ingest_stages(out: Path) -> list[StageResult]:
    """Each CSV source loaded by the ingest code and, right after, copied by bare `read_csv` (the floor); then the
    calendars, then a second run over the same drops, which must find nothing to do. The CRM goes first, as in
    the Dagster job: the call records' numbers are mostly the CRM's, already validated by then."""
    results = []
    for label, sources in (("crm + reference", "crm,reference"), ("phone", "phone")):
        results.append(ingest_stage(out, f"ingest: {label}", sources))
        results.append(ingest_stage(out, f"floor: bare read_csv, {label}", sources, mode="floor"))
        (out / "floor.duckdb").unlink(missing_ok=True)
    results.append(ingest_stage(out, "ingest: calendar (rows = occurrences)", "calendar", count="OCCURRENCES"))
    results.append(ingest_stage(out, "ingest: again, same drops (no-op)", "crm,reference,phone,calendar"))
    return results


def transform_stage(out: Path, label: str, mode: str, *options: str) -> StageResult:
    """A `bench.dbt` stage on the run's warehouse; rows are those of the two largest marts (see bench.dbt)."""
    result = measure([sys.executable, "-m", "bench.dbt", mode, "--warehouse", str(out / "warehouse.duckdb"),
                      *options])  # fmt: skip
    return StageResult(label, result["wall_seconds"], result["counts"].get("ROWS", 0), result["peak_rss_mb"])


LARGEST_FACT = "fct_pipeline_daily"  # the most rows of any mart at every preset (31.8 million deal-days at bench)


def quality_stages(out: Path) -> list[StageResult]:
    warehouse = str(out / "warehouse.duckdb")
    results = []
    for label, mode, options in (
        (f"quality: {LARGEST_FACT} suite, GX on frames", "frames", ["--suite", f"marts.{LARGEST_FACT}"]),
        (f"quality: {LARGEST_FACT} suite, SQL in DuckDB", "sql", ["--suite", f"marts.{LARGEST_FACT}"]),
        ("quality: every suite, GX on frames", "frames", []),
    ):
        result = measure([sys.executable, "-m", "bench.quality", mode, "--warehouse", warehouse, *options])
        # suite_seconds: inside the suites, without the process start and the GX import
        suite_seconds = result["counts"].get("SUITE_MS", 0) / 1000
        rows = result["counts"].get("ROWS", 0)
        results.append(
            StageResult(label, result["wall_seconds"], rows, result["peak_rss_mb"], {"suite_seconds": suite_seconds})
        )
    return results


def dbt_model_seconds(out: Path, model: str) -> float | None:
    """The execution time dbt recorded for `model` in the last build on this run's warehouse."""
    path = out / "dbt_target" / "run_results.json"
    if not path.exists():
        return None
    for result in json.loads(path.read_text())["results"]:
        if result["unique_id"].startswith("model.") and result["unique_id"].endswith(f".{model}"):
            return result["execution_time"]
    return None


def ratios(results: list[StageResult]) -> list[str]:
    """Loader time over floor time, per CSV source; an incremental build's time over a full one's; all from the same
    run."""
    by_stage = {result.stage: result for result in results}
    lines = []
    for label in ("crm + reference", "phone"):
        loaded, bare = by_stage.get(f"ingest: {label}"), by_stage.get(f"floor: bare read_csv, {label}")
        if loaded and bare and bare.wall_seconds:
            lines.append(f"- {label}: ingest / bare read_csv = {loaded.wall_seconds / bare.wall_seconds:.2f}x")
    measured, reference = by_stage.get("dbt build (incremental)"), by_stage.get("dbt build (full)")
    if measured and reference and reference.wall_seconds:
        ratio = measured.wall_seconds / reference.wall_seconds
        lines.append(f"- transform: dbt build (incremental) / dbt build (full) = {ratio:.1%}")
    model = by_stage.get("dbt build (full)")
    suite = by_stage.get(f"quality: {LARGEST_FACT} suite, GX on frames")
    if model and suite and model.detail.get(LARGEST_FACT):
        built = model.detail[LARGEST_FACT]
        lines.append(
            f"- quality: {LARGEST_FACT} suite / its dbt build ({built:.1f} s) = "
            f"{suite.detail['suite_seconds'] / built:.1%} in the suite, {suite.wall_seconds / built:.1%} as a process"
        )
    return lines


def render(preset: str, results: list[StageResult]) -> str:
    header = (f"preset `{preset}` on {os.cpu_count()} cores, Python {platform.python_version()}\n\n"
              "| stage | wall s | rows | rows/s | peak RSS MB |\n|---|---:|---:|---:|---:|")  # fmt: skip
    rows = [f"| {r.stage} | {r.wall_seconds:.1f} | {r.rows:,} | {r.rows_per_second:,.0f} | {r.peak_rss_mb:,.0f} |"
            for r in results]  # fmt: skip
    return "\n".join([header, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="time every stage at a preset")
    run_parser.add_argument("--preset", default="demo")
    run_parser.add_argument("--seed", type=int, default=42)
    run_parser.add_argument("--out", type=Path, default=None, help="scratch folder (default bench/out/PRESET)")
    run_parser.add_argument("--keep", action="store_true", help="keep the generated world")
    run_parser.add_argument("--reuse", action="store_true", help="measure on the world kept in --out, if any")
    oracle_parser = commands.add_parser("oracle", help="the forecast noise floor, from futures of the world")
    oracle_parser.add_argument("--preset", default="demo")
    oracle_parser.add_argument("--seed", type=int, default=42)
    oracle_parser.add_argument("--futures", type=int, default=20, help="futures per origin (future seeds 1..N)")
    oracle_parser.add_argument(
        "--origins",
        default="monthly",
        help="monthly (first of each of the last 12 months), quarterly (fiscal quarter starts among them) "
        "or dates YYYY-MM-DD,...",
    )
    oracle_parser.add_argument("--grains", default="fiscal_quarter,month", help="fiscal_quarter and/or month")
    oracle_parser.add_argument("--workers", type=int, default=2, help="processes (the futures run in parallel)")
    oracle_parser.add_argument("--out", type=Path, default=None, help="folder (default bench/out/oracle)")
    args = parser.parse_args(argv)
    if args.command == "oracle":
        from bench import oracle

        return oracle.main(args.preset, args.seed, args.futures, args.origins, args.grains, args.workers, args.out)
    out = args.out or Path("bench/out") / args.preset
    results = run(args.preset, out, args.seed, reuse=args.reuse)
    print(render(args.preset, results))
    print("\n".join(["", *ratios(results)]))
    print("\n| source | files | MB |\n|---|---:|---:|")
    for source, files, size in source_sizes(out):
        print(f"| {source} | {files:,} | {size / 1e6:,.1f} |")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
