"""`python -m orchestration.lib.report`: what the warehouse holds: per raw table, from the ledger, what the ingest
loaded; then the marts the dbt build made, with their row counts and the as-of date they were built for."""

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


def marts_summary(con: duckdb.DuckDBPyConnection) -> str:
    """Rows per mart, and the headline figures a reader checks first; empty when no dbt build has run."""
    marts = [
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by table_name"
        ).fetchall()
    ]
    if not marts:
        return ""
    lines = [f"{'mart':<32}{'rows':>12}"]
    for name in marts:
        lines.append(f"{name:<32}{con.execute(f'select count(*) from marts.{name}').fetchall()[0][0]:>12,}")
    if {"dim_date", "fct_opportunity", "fct_bookings"} <= set(marts):
        as_of = con.execute("select max(date_day) from marts.dim_date where is_as_of_date").fetchall()[0][0]
        won, lost, open_ = con.execute(
            "select count(*) filter (where status = 'won'), count(*) filter (where status = 'lost'),"
            " count(*) filter (where status = 'open') from marts.fct_opportunity"
        ).fetchall()[0]
        lines.append(f"as of {as_of}: {open_:,} open, {won:,} won and {lost:,} lost opportunities")
        for period, amount, deals in con.execute(
            "select fiscal_period, sum(amount_reporting), count(*) from marts.fct_bookings"
            " group by 1 order by 1 desc limit 4"
        ).fetchall():
            lines.append(f"bookings {period}: {amount:,.2f} {deals:,} deals")
    return "\n".join(lines)


def crm_values_summary(con: duckdb.DuckDBPyConnection) -> str:
    """What the CRM wrote that the warehouse has no definition for (docs/crm_values.md): stages in no definition and
    open deals without an amount, with the rows affected and what to do; empty when there are none."""
    built = {
        (schema, name)
        for schema, name in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
    }
    if not {("intermediate", "int_opportunity_stages_resolved"), ("marts", "fct_opportunity")} <= built:
        return ""
    lines = []
    for stage, deals in con.execute(
        """
        select stages.stage_name, count(deals.opportunity_id)
        from intermediate.int_opportunity_stages_resolved stages
        left join marts.fct_opportunity deals on deals.stage_name = stages.stage_name
        where not stages.is_defined group by 1 order by 1
        """
    ).fetchall():
        lines.append(
            f"stage {stage!r} is in no stage definition (opportunities in it: {deals:,}): export the "
            "OpportunityStage object with the CRM drop, or add it to dbt_project/seeds/stage_definitions.csv"
        )
    without_amount = con.execute(
        "select count(*) from marts.fct_opportunity where status = 'open' and amount is null"
    ).fetchall()[0][0]
    if without_amount:
        lines.append(
            f"open opportunities without an amount: {without_amount:,} (they count as deals, not in pipeline value)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warehouse", default=os.environ.get("WAREHOUSE_PATH", "data/warehouse.duckdb"))
    args = parser.parse_args()
    with duckdb.connect(args.warehouse, read_only=True) as con:
        print(summary(con))
        for section in (marts_summary(con), crm_values_summary(con)):
            if section:
                print(section)


if __name__ == "__main__":
    main()
