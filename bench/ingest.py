"""Ingestion stages for `python -m bench run`, each run as its own process by `bench.probe`.

`load` ingests sources into a warehouse file as the Dagster assets do (ledger, typing, checks, quarantine, E.164).
`floor` is the bar the loader is measured against: DuckDB's bare `read_csv` copying the same CSV files into tables
of a fresh database file, one statement per table, with its own type detection and nothing else.
Both print `ROWS=<n>` (and `OCCURRENCES=<n>` for calendars) for the bench table.
"""

from __future__ import annotations

import argparse
import os
import sys
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("mode", choices=["load", "floor"])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--database", type=Path, required=True)
    parser.add_argument("--sources", default="crm,reference,phone,calendar")
    args = parser.parse_args(argv)
    sources = tuple(args.sources.split(","))
    (load if args.mode == "load" else floor)(args.landing, args.database, sources)
    return 0


if __name__ == "__main__":
    sys.exit(main())
