"""`python -m orchestration.lib.report`: what the last run did and what readers now see: per raw table, from the
ledger, what the ingest loaded; whether the run published, and if not which blocking checks withheld it; then the
published marts with their row counts and the as-of date they were built for, and the forecasts (the serving win
model beside its baselines, the company's bookings forecast and its backtest).

The working warehouse is opened read-only, after the run, for the ledger; the marts are read from the published copy.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

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
    for status, path, reason in con.execute(
        "select status, path, reason from raw.load_ledger where status in ('rejected', 'interrupted') "
        "order by status desc, path"
    ).fetchall():
        lines.append(f"{status} {path}: {reason}")
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


def forecasts_summary(con: duckdb.DuckDBPyConnection) -> str:
    """What finance reads from `ml`: the serving win model beside its baselines on the backfilled history, and the
    company's bookings forecast for this fiscal quarter and the next two; empty before the ML stages have run."""
    tables = {name for (name,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'ml'").fetchall()}  # fmt: skip
    if not {"win_models", "win_backtest", "revenue_forecast", "forecast_backtest"} <= tables:
        return ""
    lines = [f"{'ml table':<32}{'rows':>12}"]
    for name in sorted(tables):
        lines.append(f"{name:<32}{con.execute(f'select count(*) from ml.{name}').fetchall()[0][0]:>12,}")
    serving = con.execute(
        "select model_version, model_kind, training_cutoff, coalesce(gate_reason, kind_reason) from ml.win_models "
        "where is_served order by training_cutoff desc limit 1"
    ).fetchone()
    if serving:
        lines.append(f"win probability: model {serving[0]} ({serving[1]}, data to {serving[2]}): {serving[3]}")
    for method, n, auc, brier, ece in con.execute(
        "select method, n, auc, brier, ece from ml.win_backtest "
        "where evaluated_as_of = (select max(evaluated_as_of) from ml.win_backtest) order by brier"
    ).fetchall():
        lines.append(f"  {method:<24} AUC {auc:.3f}  Brier {brier:.4f}  calibration error {ece:.3f}  ({n:,} pairs)")
    for period_start, currency, booked, p10, p50, p90 in con.execute(
        "select period_start, currency, booked_to_date, p10, p50, p90 from ml.revenue_forecast "
        "where level = 'company' and period_grain = 'fiscal_quarter' "
        "and forecast_date = (select max(forecast_date) from ml.revenue_forecast) order by period_start"
    ).fetchall():
        lines.append(
            f"bookings forecast, fiscal quarter from {period_start}: p50 {p50:,.0f} {currency} (80% interval "
            f"{p10:,.0f} to {p90:,.0f}; {booked:,.0f} booked so far)"
        )
    for method, wape in con.execute(
        "select method, sum(absolute_error) / sum(actual_total) from ml.forecast_backtest "
        "where level = 'company' and period_grain = 'fiscal_quarter' group by method order by 2"
    ).fetchall():
        lines.append(f"  backtest, company fiscal quarters: {method:<22} WAPE {wape:.3f}")
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


def publication_summary(published: Path, run_id: str | None, failed_checks: list[str]) -> str:
    """Whether run `run_id` published, what the published copy is, and, when withheld, the checks that stopped it."""
    current = None
    if published.exists():
        with duckdb.connect(str(published), read_only=True) as con:
            current = con.execute(
                "select run_id, published_at, as_of_date, json_array_length(json_keys(row_counts::json)),"
                " checks_passed, checks_warned from marts.publication"
            ).fetchone()
    lines = []
    if current and (run_id is None or current[0] == run_id):
        lines.append(
            f"published {published} as of {current[2]} (run {current[0]}, {current[1]:%Y-%m-%d %H:%M:%S %Z}): "
            f"{current[3]} tables, {current[4]} checks passed, {current[5]} warnings; Parquet in "
            f"{published.parent / 'parquet'}"
        )
        return "\n".join(lines)
    lines.append(f"publishing withheld: run {run_id} did not publish" + (":" if failed_checks else ""))
    lines += [f"  {check}" for check in failed_checks]
    if current:
        lines.append(f"readers still see the publication of run {current[0]} as of {current[2]} ({published})")
    else:
        lines.append(f"nothing has been published yet ({published} does not exist)")
    return "\n".join(lines)


def last_run(job_name: str = "refresh") -> tuple[str | None, list[str]]:
    """The id of the latest run of `job_name` in the Dagster instance (DAGSTER_HOME), and its failed blocking
    checks as 'asset: check: what failed'."""
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        return None, []
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(dg.RunsFilter(job_name=job_name), limit=1)
        if not records:
            return None, []
        run_id = records[0].dagster_run.run_id
        failed = []
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = record.dagster_event.event_specific_data
            if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
                continue
            examples = evaluation.metadata.get("example_failing_rows")
            detail = f"; first failing rows: {str(examples.value)[:300]}" if examples is not None else ""
            failed.append(
                f"{evaluation.asset_key.to_user_string()}: {evaluation.check_name}: "
                f"{evaluation.description or 'failed'}{detail}"
            )
        return run_id, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warehouse", default=os.environ.get("WAREHOUSE_PATH", "data/warehouse.duckdb"))
    parser.add_argument("--published", help="the published DuckDB file (default: published/sales.duckdb beside the "
                        "warehouse, or PUBLISH_DIR/sales.duckdb)")  # fmt: skip
    args = parser.parse_args()
    published = Path(args.published) if args.published else default_published(Path(args.warehouse))
    if Path(args.warehouse).exists():
        with duckdb.connect(args.warehouse, read_only=True) as con:
            print(summary(con))
            crm_values = crm_values_summary(con)
    else:
        crm_values = ""
    run_id, failed = last_run()
    print(publication_summary(published, run_id, failed))
    if published.exists():
        with duckdb.connect(str(published), read_only=True) as con:
            print(marts_summary(con))
            forecasts = forecasts_summary(con)
            if forecasts:
                print(forecasts)
    if crm_values:
        print(crm_values)


def default_published(warehouse: Path) -> Path:
    folder = os.environ.get("PUBLISH_DIR")
    return Path(folder) / "sales.duckdb" if folder else warehouse.resolve().parent / "published" / "sales.duckdb"


if __name__ == "__main__":
    main()
