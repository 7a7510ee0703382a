"""`python -m orchestration.lib.report`: what the warehouse holds after ingestion, per table, from the ledger."""

from __future__ import annotations

import argparse
import os

import duckdb


def summary(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute(
        """
        select table_name,
            count(*) filter (where status = 'loaded') as loaded,
            count(*) filter (where status = 'skipped') as skipped,
            count(*) filter (where status = 'rejected') as rejected,
            coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0)
        from raw.load_ledger group by table_name order by table_name
        """
    ).fetchall()
    lines = [
        f"{'table':<22}{'files loaded':>13}{'skipped':>9}{'rejected':>10}{'rows read':>12}{'loaded':>12}"
        f"{'quarantined':>13}"
    ]
    for table, loaded, skipped, rejected, read, good, bad in rows:
        lines.append(f"{table:<22}{loaded:>13,}{skipped:>9,}{rejected:>10,}{read:>12,}{good:>12,}{bad:>13,}")
    occurrences = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'raw' and table_name = 'calendar_events'"
    ).fetchall()[0][0]
    if occurrences:
        count = con.execute("select count(*) from raw.calendar_events").fetchall()[0][0]
        lines.append(f"calendar occurrences in raw.calendar_events: {count:,}")
    for path, reason in con.execute(
        "select path, reason from raw.load_ledger where status = 'rejected' order by path"
    ).fetchall():
        lines.append(f"rejected {path}: {reason}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warehouse", default=os.environ.get("WAREHOUSE_PATH", "data/warehouse.duckdb"))
    args = parser.parse_args()
    with duckdb.connect(args.warehouse, read_only=True) as con:
        print(summary(con))


if __name__ == "__main__":
    main()
