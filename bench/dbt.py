"""The transformation stage for `python -m bench run`, run as its own process by `bench.probe`, and by hand.

`build` runs `dbt build` (models, data tests and unit tests) on `dbt_project/` against a warehouse file and prints
`MODELS=<models built>` and `ROWS=<rows in marts.fct_activity + marts.fct_pipeline_daily>`, then the build's profile
from its run_results.json: the time dbt spent in each kind of node and the slowest models, the figures
docs/benchmarks.md quotes. Build twice on one warehouse, in full (`--full-refresh`) and again after the next day's
drop is loaded, to compare an incremental build with a full one:

    python -m bench.dbt build --warehouse W --full-refresh
    python -m bench.ingest load --landing L --database W      # after `python -m simulator advance --days 1`
    python -m bench.dbt build --warehouse W

dbt runs as a subprocess of the environment's `dbt` executable rather than through `dbtRunner`: Dagster's
`DbtCliResource` runs dbt that way, so the bench times what the refresh job runs, and the warehouse file is
closed when the process exits, before this one opens it to count rows. Its target and log folders sit next to the
warehouse, not in `dbt_project/`, so a bench run neither competes with nor overwrites the artifacts of a build
someone runs from the project; an incremental build after a full one reuses the full build's partial parse, as a
deployed project does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from orchestration.lib.dbt_project import DBT_EXECUTABLE, PROJECT_DIR, READS_ML

DBT_ROW_TABLES = ("marts.fct_activity", "marts.fct_pipeline_daily")
SLOWEST_MODELS = 12  # the profile's list: at `bench` these are the models that take nearly all of the time


def build_command(
    warehouse: Path, full_refresh: bool = False, as_of_date: str | None = None, select: list[str] | None = None
) -> list[str]:
    """The `dbt build` command line. Target and logs go next to the warehouse (see the module docstring), and
    `--quiet` keeps dbt's progress lines out of the bench table: errors still print, without colour codes."""
    command = [
        DBT_EXECUTABLE, "build", "--quiet", "--no-use-colors",
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(warehouse.parent / "dbt_target"), "--log-path", str(warehouse.parent / "dbt_logs"),
    ]  # fmt: skip
    if as_of_date:
        command += ["--vars", json.dumps({"as_of_date": as_of_date})]
    if full_refresh:
        command.append("--full-refresh")
    # the models on the ML assets' tables build after those assets: the ML stage's benchmark measures them
    command += ["--select", *select] if select else ["--exclude", READS_ML]
    return command


def models_built(target_path: Path) -> int:
    """Models that ran successfully, from the build's run_results.json."""
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return sum(result["unique_id"].startswith("model.") and result["status"] == "success" for result in results)


def row_count(warehouse: Path, tables: tuple[str, ...]) -> int:
    """Rows in those of `tables` that exist: a `--select` build may not have made all of them."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.execute("select schema_name || '.' || table_name from duckdb_tables()").fetchall()
        existing = [table for table in tables if (table,) in names]
        return sum(con.execute(f"select count(*) from {table}").fetchall()[0][0] for table in existing)


def profile(run_results: dict, slowest: int = SLOWEST_MODELS) -> list[str]:
    """What a build spent its time on, from its run_results.json: dbt's elapsed time, the node time per kind of
    node (models, data tests, unit tests: summed over dbt's threads, so more than the elapsed time when two ran at
    once) and the `slowest` models with their share of all model time."""
    results = run_results["results"]
    kinds = {"model": [], "test": [], "unit_test": []}
    for result in results:
        kind = result["unique_id"].split(".")[0]
        if kind in kinds:
            kinds[kind].append(result)
    seconds = {kind: sum(result["execution_time"] for result in found) for kind, found in kinds.items()}
    counted = ", ".join(
        f"{len(kinds[kind])} {name} {seconds[kind]:.1f} s"
        for kind, name in (("model", "models"), ("test", "data tests"), ("unit_test", "unit tests"))
    )
    lines = [
        f"dbt elapsed {run_results['elapsed_time']:.1f} s; node time summed over threads: {counted}",
        f"slowest models (of {seconds['model']:.1f} s):",
    ]
    for result in sorted(kinds["model"], key=lambda result: -result["execution_time"])[:slowest]:
        share = result["execution_time"] / seconds["model"] if seconds["model"] else 0.0
        lines.append(f"  {result['unique_id'].split('.')[-1]:<40} {result['execution_time']:8.2f} s {share:6.1%}")
    return lines


def build(warehouse: Path, full_refresh: bool, as_of_date: str | None, select: list[str] | None) -> int:
    """dbt's exit code; the counts and the profile only when the build passed. Usage statistics are off unless the
    environment turns them on: they would add a network call to the measured time."""
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **os.environ, "WAREHOUSE_PATH": str(warehouse.resolve())}
    completed = subprocess.run(build_command(warehouse, full_refresh, as_of_date, select), env=env, check=False)
    if completed.returncode != 0:
        return completed.returncode
    target = warehouse.parent / "dbt_target"
    print(f"MODELS={models_built(target)}")
    print(f"ROWS={row_count(warehouse, DBT_ROW_TABLES)}")
    print("\n".join(profile(json.loads((target / "run_results.json").read_text()))))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="dbt build (models and tests) on a warehouse file")
    build_parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    build_parser.add_argument("--select", nargs="+", default=None, help="dbt node selection")
    build_parser.add_argument("--as-of-date", default=None, help="YYYY-MM-DD; default: latest loaded export date")
    build_parser.add_argument("--warehouse", type=Path, required=True)
    args = parser.parse_args(argv)
    # dbt runs from dbt_project/, so a relative path would put the warehouse's target folder under it
    return build(args.warehouse.resolve(), args.full_refresh, args.as_of_date, args.select)


if __name__ == "__main__":
    sys.exit(main())
