"""Data-quality stages: how long the Great Expectations suites take on a warehouse, and what the alternatives cost.

GX 1.x cannot validate inside DuckDB (no DuckDB dialect; `duckdb_engine` fails every expectation, see
DESIGN.md's traps), so the suites run GX on data frames that DuckDB computes. Three ways to run one suite are
measured side by side, each in its own process under `bench.probe` for its peak memory:

- `frames`: what the asset checks run: the columns a rule reads plus DuckDB's `rowid`; the ids of failing rows
  are looked up afterwards (`expectations.core.table_batch`);
- `frames --string-ids`: the same, with the id columns in the frame (what a plain "select the columns" would do);
- `sql`: the same rules as DuckDB aggregates (a count of failing rows per expectation), no GX: the in-database
  floor, for the expectation types the suites use.

Each prints one JSON line per suite: rows, seconds per batch (query to frame, GX validation) and failing rows;
then `ROWS=<rows validated>` and `SUITE_MS=<milliseconds in the suites>` (without the process start and the GX
import, which a Dagster run pays once per process) for `python -m bench run`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import duckdb

from expectations.core import TableSuite, Validator
from orchestration.lib.quality import all_suites


def with_string_ids(suite: TableSuite) -> TableSuite:
    """The suite with id columns selected into each frame instead of looked up by rowid."""
    batches = []
    for batch in suite.batches:
        if batch.ids_from:
            sql = batch.sql.replace("rowid as _row", ", ".join(batch.id_columns), 1)
            batch = replace(batch, sql=sql, ids_from=None)
        batches.append(batch)
    return replace(suite, batches=tuple(batches))


def failing_row_sql(expectation) -> str:
    """A DuckDB predicate true for a row the expectation rejects (the types the suites use on rows)."""
    kwargs = expectation.configuration.kwargs
    kind = expectation.configuration.type
    if kind == "expect_column_values_to_be_between":
        column = f'"{kwargs["column"]}"'
        tests = []
        if kwargs.get("min_value") is not None:
            tests.append(f"{column} {'<=' if kwargs.get('strict_min') else '<'} {kwargs['min_value']}")
        if kwargs.get("max_value") is not None:
            tests.append(f"{column} {'>=' if kwargs.get('strict_max') else '>'} {kwargs['max_value']}")
        return " or ".join(tests)
    if kind == "expect_column_values_to_not_be_null":
        return f'"{kwargs["column"]}" is null'
    if kind in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = ", ".join(repr(v) if not isinstance(v, bool) else str(v).lower() for v in kwargs["value_set"])
        operator = "in" if kind == "expect_column_values_to_not_be_in_set" else "not in"
        return f'"{kwargs["column"]}" {operator} ({values})'
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        operator = ">=" if kwargs.get("or_equal") else ">"
        return f'not ("{kwargs["column_A"]}" {operator} "{kwargs["column_B"]}")'
    raise ValueError(f"no SQL form for {kind}")


def run_sql(con: duckdb.DuckDBPyConnection, suite: TableSuite) -> dict:
    report: dict = {"suite": suite.name, "rows": {}, "seconds": {}, "failing": {}}
    for batch in suite.batches:
        rules = [(e.meta["check"], failing_row_sql(e)) for e in batch.expectations if _row_level(e)]
        if not rules:
            continue
        counts = ", ".join(f"count(*) filter (where {predicate})" for _, predicate in rules)
        started = time.perf_counter()
        row = con.execute(f"select count(*), {counts} from ({batch.sql})").fetchone()
        report["seconds"][batch.name] = time.perf_counter() - started
        report["rows"][batch.name] = row[0]
        report["failing"].update({check: n for (check, _), n in zip(rules, row[1:], strict=True)})
    return report


ROW_RULES = {
    "expect_column_values_to_be_between", "expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set", "expect_column_pair_values_a_to_be_greater_than_b",
}  # fmt: skip


def _row_level(expectation) -> bool:
    """Rules judged row by row; aggregates (a mean, a set of distinct values) are left out of the SQL floor."""
    return expectation.configuration.type in ROW_RULES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    parser.add_argument("mode", choices=["frames", "sql"])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--suite", action="append", help="e.g. marts.fct_pipeline_daily (default: every suite)")
    parser.add_argument("--string-ids", action="store_true", help="frames: select the id columns into the frame")
    args = parser.parse_args(argv)
    suites = [s for s in all_suites() if not args.suite or s.name in args.suite]
    if not suites:
        parser.error(f"no suite named {args.suite}")
    rows = 0
    suite_seconds = 0.0
    with duckdb.connect(str(args.warehouse), read_only=True) as con:
        validator = Validator() if args.mode == "frames" else None
        for suite in suites:
            started = time.perf_counter()
            if validator is None:
                report = run_sql(con, suite)
            else:
                result = validator.run(con, with_string_ids(suite) if args.string_ids else suite, build_docs=False)
                failing = {o.check: o.unexpected_count for o in result.failed}
                report = {"suite": suite.name, "rows": result.rows, "seconds": result.seconds, "failing": failing}
            report["total_seconds"] = time.perf_counter() - started
            rows += sum(report["rows"].values())
            suite_seconds += report["total_seconds"]
            print(json.dumps(report), flush=True)
    print(f"ROWS={rows}")
    print(f"SUITE_MS={round(suite_seconds * 1000)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
