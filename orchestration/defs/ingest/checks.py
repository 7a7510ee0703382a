"""Reconciliation checks: for every file an ingest asset loaded, rows read = rows loaded + rows quarantined, and
the tables hold exactly the rows the ledger says were written."""

import dagster as dg

from orchestration.defs.ingest.assets import CSV_TABLES
from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse

RECONCILE_SQL = """
with ledger as (
    select load_id, path, rows_read, rows_loaded, rows_quarantined
    from raw.load_ledger where table_name = ? and status = 'loaded'
),
loaded as (select _load_id as load_id, count(*) as n from raw.{raw_table} group by all),
quarantined as (select _load_id as load_id, count(*) as n from quarantine.{quarantine_table} group by all)
select l.path, l.rows_read, l.rows_loaded, l.rows_quarantined, coalesce(a.n, 0), coalesce(q.n, 0)
from ledger l left join loaded a using (load_id) left join quarantined q using (load_id)
where l.rows_read <> l.rows_loaded + l.rows_quarantined
   or l.rows_loaded <> coalesce(a.n, 0) or l.rows_quarantined <> coalesce(q.n, 0)
order by l.path
"""


def reconcile(con, ledger_table: str, raw_table: str, quarantine_table: str) -> dg.AssetCheckResult:
    """Files whose ledger counts do not add up, or do not match the rows in the tables; passes when none."""
    if not all(_exists(con, schema, name) for schema, name in
               (("raw", "load_ledger"), ("raw", raw_table), ("quarantine", quarantine_table))):  # fmt: skip
        return dg.AssetCheckResult(passed=True, metadata={"files_checked": 0})
    files = con.execute(
        "select count(*) from raw.load_ledger where table_name = ? and status = 'loaded'", [ledger_table]
    ).fetchall()[0][0]
    bad = con.execute(
        RECONCILE_SQL.format(raw_table=raw_table, quarantine_table=quarantine_table), [ledger_table]
    ).fetchall()
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={
            "files_checked": files,
            "files_not_reconciled": len(bad),
            "first_mismatches": dg.MetadataValue.json(
                [
                    {"path": p, "read": r, "loaded": a, "quarantined": q, "rows_in_raw": ra, "rows_in_quarantine": rq}
                    for p, r, a, q, ra, rq in bad[:20]
                ]
            ),
        },
        description=None if not bad else f"{len(bad)} file(s) do not reconcile",
    )


def _exists(con, schema: str, table: str) -> bool:
    query = "select count(*) from information_schema.tables where table_schema = ? and table_name = ?"
    return con.execute(query, [schema, table]).fetchall()[0][0] > 0


def _csv_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["raw", table]),
        name="rows_reconcile",
        description="Per file: rows read = rows loaded + rows quarantined, matching the rows in the tables.",
        blocking=True,
        pool=WAREHOUSE_POOL,
    )
    def check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.get_connection(read_only=True) as con:
            return reconcile(con, table, table, table)

    return check


def _calendar_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["raw", "calendar_events"]),
        name="rows_reconcile",
        description="Per file: VEVENTs read = VEVENTs loaded + VEVENTs quarantined.",
        blocking=True,
        pool=WAREHOUSE_POOL,
    )
    def check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.get_connection(read_only=True) as con:
            if not _exists(con, "raw", "load_ledger"):
                return dg.AssetCheckResult(passed=True, metadata={"files_not_reconciled": 0})
            bad = con.execute(
                "select path, rows_read, rows_loaded, rows_quarantined from raw.load_ledger "
                "where table_name = 'calendar_events' and status = 'loaded' "
                "and rows_read <> rows_loaded + rows_quarantined"
            ).fetchall()
        return dg.AssetCheckResult(passed=not bad, metadata={"files_not_reconciled": len(bad)})

    return check


ingest_checks = [_csv_check(table) for table in CSV_TABLES] + [_calendar_check()]
