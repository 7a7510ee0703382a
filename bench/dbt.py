"""Transformation stages for `python -m bench run`, each run as its own process by `bench.probe`.

`build` runs `dbt build` (models and their tests) on `dbt_project/` against a warehouse file and prints
`MODELS=<models built>` and `ROWS=<rows in marts.fct_activity + marts.fct_pipeline_daily>`.

`floor` is the bar the dbt build is measured against: `bench/floor.sql`, one hand-written DuckDB script that
computes `marts.fct_activity` and `marts.mart_pipeline_summary` straight from `raw.*` into the schema `floor`, the
way a person would write it for DuckDB alone (QUALIFY, ASOF joins, no views, temporary tables only for what both
facts read). It prints `ROWS=<rows in floor.fct_activity + floor.mart_pipeline_summary>`: the rows it writes, which
are not the rows `build` counts, so compare the two stages by wall time, not by rows per second.

dbt runs as a subprocess of the environment's `dbt` executable rather than through `dbtRunner`: Dagster's
`DbtCliResource` runs dbt that way, so the bench times what the refresh job runs, and the warehouse file is
closed when the process exits, before this one opens it to count rows. Its target and log folders sit next to the
warehouse, not in `dbt_project/`, so a bench run neither competes with nor overwrites the artifacts of a build
someone runs from the project; an incremental build after a full one reuses the full build's partial parse, as a
deployed project does.

The floor reproduces the dbt models' logic, their ties and fan-outs included: on the tiny world (seed 42) both
tables match the dbt tables row for row, as of the latest drop and as of 2024-04-15 (`python -m bench.dbt compare`
checks it). What can still tell them apart:

- A user exported twice with the same `SystemModstamp` and different fields gives two versions with the same
  time; both sides number them by `row_number()` in an order DuckDB does not fix, so the "current" one may differ.
- Weighted amounts are DOUBLE sums, added in another order: a cent may round differently, and `compare` rounds
  DOUBLE columns to 9 decimals.
- The floor writes the project's vars as constants (fiscal year from February, calendar from 2023-01-01, USD);
  a change to them in dbt_project.yml must be made in floor.sql too.
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

FLOOR_SQL = Path(__file__).with_name("floor.sql")
DBT_ROW_TABLES = ("marts.fct_activity", "marts.fct_pipeline_daily")
FLOOR_ROW_TABLES = ("floor.fct_activity", "floor.mart_pipeline_summary")
COMPARED_TABLES = ("fct_activity", "mart_pipeline_summary")


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


def build(warehouse: Path, full_refresh: bool, as_of_date: str | None, select: list[str] | None) -> int:
    """dbt's exit code; the counts only when the build passed. Usage statistics are off unless the environment
    turns them on: they would add a network call to the measured time."""
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **os.environ, "WAREHOUSE_PATH": str(warehouse.resolve())}
    completed = subprocess.run(build_command(warehouse, full_refresh, as_of_date, select), env=env, check=False)
    if completed.returncode != 0:
        return completed.returncode
    print(f"MODELS={models_built(warehouse.parent / 'dbt_target')}")
    print(f"ROWS={row_count(warehouse, DBT_ROW_TABLES)}")
    return 0


def floor(warehouse: Path, as_of_date: str | None) -> int:
    """Run floor.sql with the settings of the dbt profile (the same memory limit, insertion order not kept; the
    script sets UTC itself), so that the two differ only in the SQL and in dbt itself."""
    config = {"memory_limit": os.environ.get("WAREHOUSE_MEMORY_LIMIT", "8GB"), "preserve_insertion_order": False}
    with duckdb.connect(str(warehouse), config=config) as con:
        if as_of_date:
            con.execute("set variable as_of_date = cast(? as date)", [as_of_date])
        con.execute(FLOOR_SQL.read_text())
    print(f"ROWS={row_count(warehouse, FLOOR_ROW_TABLES)}")
    return 0


def comparable_columns(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The select list of a marts table with DOUBLE columns rounded: the floor sums them in another order, which
    moves the last bits."""
    columns = con.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'marts' and table_name = ? order by ordinal_position",
        [table],
    ).fetchall()
    return ", ".join(f"round({name}, 9)" if data_type == "DOUBLE" else name for name, data_type in columns)


def compare(warehouse: Path) -> int:
    """Each floor table against its dbt table, after both ran on the same warehouse and date: counts, and rows only
    one side holds (EXCEPT ALL over every column). Non-zero when they differ, to check the floor after the models
    change."""
    differing = 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in COMPARED_TABLES:
            columns = comparable_columns(con, table)
            dbt_side, floor_side = f"select {columns} from marts.{table}", f"select {columns} from floor.{table}"
            dbt_rows, floor_rows, only_dbt, only_floor = con.execute(
                f"""select
                    (select count(*) from marts.{table}),
                    (select count(*) from floor.{table}),
                    (select count(*) from ({dbt_side} except all {floor_side})),
                    (select count(*) from ({floor_side} except all {dbt_side}))"""
            ).fetchall()[0]
            print(f"{table}: dbt {dbt_rows:,} rows, floor {floor_rows:,}; "
                  f"only in dbt {only_dbt:,}, only in floor {only_floor:,}")  # fmt: skip
            differing += only_dbt + only_floor
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="dbt build (models and tests) on a warehouse file")
    build_parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    build_parser.add_argument("--select", nargs="+", default=None, help="dbt node selection")
    floor_parser = commands.add_parser("floor", help="run bench/floor.sql on a warehouse file")
    for command in (build_parser, floor_parser):
        command.add_argument("--as-of-date", default=None, help="YYYY-MM-DD; default: latest loaded export date")
    compare_parser = commands.add_parser("compare", help="floor tables against the dbt tables, row by row")
    for command in (build_parser, floor_parser, compare_parser):
        command.add_argument("--warehouse", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "build":
        return build(args.warehouse, args.full_refresh, args.as_of_date, args.select)
    if args.command == "floor":
        return floor(args.warehouse, args.as_of_date)
    return compare(args.warehouse)


if __name__ == "__main__":
    sys.exit(main())
