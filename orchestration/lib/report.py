"""`python -m orchestration.lib.report`: what the last refresh did, what readers now see, and where the time went.

A refresh that found nothing new prints one line. Otherwise the report describes that run, not the warehouse's
history: per raw table, the files it loaded (its rows of the load ledger); what it built and audited, and which steps
failed (its events in the Dagster instance, DAGSTER_HOME); whether it published and, if not, which blocking checks
withheld the publication. Then the headline figures of the published copy (the as-of date, the deals, the latest
bookings, the forecast), and each stage's wall time: the run's step timings, and the times `make` passes in (the
world's generation, the moment `make materialize` began), with the report and the dbt docs it regenerates when the
run built a model.

The working warehouse is opened read-only, for this run's ledger rows; the marts are read from the published copy.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

STARTED = time.time()
# The stages of `make demo`, in the order they run. A step of the refresh job belongs to the stage `stage_of` names.
STAGES = ("world generation", "start-up", "ingest", "dbt", "ML", "audits", "publish", "between steps", "report",
          "dbt docs")  # fmt: skip
STEP_STAGES = {
    "landing__new_files": "ingest",
    "calendars": "ingest",
    "warehouse_models": "dbt",
    "models_on_ml": "dbt",
    "win_probability_stage": "ML",
    "revenue_forecast_stage": "ML",
    "published__sales": "publish",
}
WHAT_IS_IN = {
    "start-up": "recovery, Python imports, loading the definitions",
    "ingest": "the gate and the loads",
    "dbt": "two dbt builds, their tests included",
    "audits": "Great Expectations suites and reconciliations",
    "between steps": "Dagster's own work between the steps",
}
DBT_SCHEMAS = ("staging", "intermediate", "marts")
BUILT_SCHEMAS = (*DBT_SCHEMAS, "ml")  # the loads and the publication have lines of their own


def stage_of(step_key: str) -> str:
    """The stage of a refresh step: the loads and the gate are ingest, the two dbt builds dbt, the ML stages ML, the
    Great Expectations suites (`quality_*`) and the reconciliation checks (`*_rows_reconcile`) audits, `published`
    publish (tests/test_orchestration.py checks that every step of the job has one)."""
    if step_key in STEP_STAGES:
        return STEP_STAGES[step_key]
    if step_key.startswith("quality_") or step_key.endswith("_rows_reconcile"):
        return "audits"
    if step_key.startswith("raw__"):
        return "ingest"
    return "other"


@dataclass
class RunFacts:
    """What one run did, from its events in the Dagster instance."""

    run_id: str
    status: str
    started: float | None
    ended: float | None
    step_seconds: dict[str, float] = field(default_factory=dict)
    materialized: list[str] = field(default_factory=list)
    checks_passed: int = 0
    checks_warned: int = 0
    failed_checks: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    metadata: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def did_nothing(self) -> bool:
        """A successful run that materialized nothing and evaluated no check: its gate found nothing new."""
        checks = self.checks_passed + self.checks_warned + len(self.failed_checks)
        return self.status == "SUCCESS" and not self.materialized and not checks and not self.failed_steps

    @property
    def built_models(self) -> bool:
        return any(key.split("/")[0] in DBT_SCHEMAS for key in self.materialized)

    def stage_seconds(self) -> dict[str, float]:
        """Wall seconds per stage of the steps that ran, and Dagster's time between them."""
        seconds: dict[str, float] = defaultdict(float)
        for step, duration in self.step_seconds.items():
            seconds[stage_of(step)] += duration
        if self.started is not None and self.ended is not None:
            seconds["between steps"] = max(0.0, self.ended - self.started - sum(self.step_seconds.values()))
        return dict(seconds)


def run_facts(job_name: str = "refresh") -> RunFacts | None:
    """The latest run of `job_name` in the Dagster instance (DAGSTER_HOME); None without an instance or a run."""
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        return None
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(dg.RunsFilter(job_name=job_name), limit=1)
        if not records:
            return None
        record = records[0]
        facts = RunFacts(record.dagster_run.run_id, record.dagster_run.status.value, record.start_time,
                         record.end_time)  # fmt: skip
        types = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
                 dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION}  # fmt: skip
        step_started: dict[str, float] = {}
        for entry in instance.all_logs(facts.run_id, of_type=types):
            event = entry.dagster_event
            kind = event.event_type
            if kind == dg.DagsterEventType.STEP_START:
                step_started[event.step_key] = entry.timestamp
            elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                facts.step_seconds[event.step_key] = entry.timestamp - step_started.get(event.step_key, entry.timestamp)
                if kind == dg.DagsterEventType.STEP_FAILURE:
                    error = event.event_specific_data.error
                    message = error.message.strip().splitlines()[0] if error and error.message else "failed"
                    facts.failed_steps.append(f"{event.step_key}: {message}")
            elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
                materialization = event.event_specific_data.materialization
                key = materialization.asset_key.to_user_string()
                facts.materialized.append(key)
                facts.metadata[key] = {name: value.value for name, value in materialization.metadata.items()}
            else:
                evaluation = event.event_specific_data
                if evaluation.passed:
                    facts.checks_passed += 1
                elif evaluation.severity != dg.AssetCheckSeverity.ERROR:
                    facts.checks_warned += 1
                else:
                    examples = evaluation.metadata.get("example_failing_rows")
                    detail = f"; first failing rows: {str(examples.value)[:300]}" if examples is not None else ""
                    facts.failed_checks.append(
                        f"{evaluation.asset_key.to_user_string()}: {evaluation.check_name}: "
                        f"{evaluation.description or 'failed'}{detail}"
                    )
        return facts


def loaded_in_run(con: duckdb.DuckDBPyConnection, run_id: str) -> str:
    """Per raw table, the landing files run `run_id` took in (its ledger rows), and what it rejected or reloaded."""
    if not con.execute(
        "select count(*) from information_schema.tables where table_schema = 'raw' and table_name = 'load_ledger'"
    ).fetchall()[0][0]:
        return "loaded: no file (the warehouse has no load ledger yet)"
    rows = con.execute(
        """
        select table_name,
            count(*) filter (where status = 'loaded') as loaded,
            count(*) filter (where status = 'skipped') as skipped,
            count(*) filter (where status = 'rejected') as rejected,
            coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0)
        from raw.load_ledger where run_id = ? and status in ('loaded', 'skipped', 'rejected')
        group by table_name order by table_name
        """,
        [run_id],
    ).fetchall()
    if not rows:
        return "loaded: no new file (this run built what earlier runs had loaded and not yet published)"
    lines = [
        f"{'loaded by this run':<22}{'files':>8}{'skipped':>9}{'rejected':>10}{'rows read':>12}{'loaded':>12}"
        f"{'quarantined':>13}"
    ]
    for table, loaded, skipped, rejected, read, good, bad in rows:
        lines.append(f"{table:<22}{loaded:>8,}{skipped:>9,}{rejected:>10,}{read:>12,}{good:>12,}{bad:>13,}")
    for status, path, reason in con.execute(
        "select status, path, reason from raw.load_ledger where run_id = ? and status in ('rejected', 'interrupted') "
        "order by status desc, path",
        [run_id],
    ).fetchall():
        lines.append(f"{status} {path}: {reason}")
    return "\n".join(lines)


def built_summary(facts: RunFacts) -> str:
    """What the run built and audited, and which of its steps failed."""
    by_schema: dict[str, int] = defaultdict(int)
    for key in facts.materialized:
        by_schema[key.split("/")[0]] += 1
    built = ", ".join(f"{by_schema[schema]} {schema}" for schema in BUILT_SCHEMAS if by_schema[schema])
    lines = [
        f"built: {built or 'nothing'}; checks: {facts.checks_passed:,} passed, {facts.checks_warned:,} warned, "
        f"{len(facts.failed_checks):,} failed"
    ]
    scored = facts.metadata.get("ml/win_probability", {}).get("rows_appended")
    forecast = facts.metadata.get("ml/revenue_forecast", {}).get("rows_appended")
    if scored is not None or forecast is not None:
        lines.append(f"ML: {scored or 0:,} win probabilities and {forecast or 0:,} forecast rows appended")
    lines += [f"failed step {failure}" for failure in facts.failed_steps]
    return "\n".join(lines)


def nothing_new(facts: RunFacts, published: Path, landing: str, seconds: dict[str, float]) -> str:
    """The one line a refresh that found nothing new prints, with where its seconds went."""
    current = current_publication(published)
    readers = (f"readers keep the publication of run {current[0]} as of {current[2]}" if current
               else "nothing has been published yet")  # fmt: skip
    parts = {
        "start-up": seconds.get("start-up"),
        "run": facts.ended - facts.started if facts.started is not None and facts.ended is not None else None,
        "report": seconds.get("report"),
    }
    timing = ", ".join(f"{name} {value:.1f}" for name, value in parts.items() if value is not None)
    total = sum(value for value in parts.values() if value is not None)
    return (
        f"nothing new landed in {landing}: run {facts.run_id} loaded, rebuilt, audited and published nothing; "
        f"{readers} ({total:.1f} s: {timing})"
    )


def current_publication(published: Path) -> tuple | None:
    """(run id, published at, as-of date, tables, checks passed, checks warned) of the published copy, if any."""
    if not published.exists():
        return None
    with duckdb.connect(str(published), read_only=True) as con:
        rows = con.execute(
            "select run_id, published_at, as_of_date, json_array_length(json_keys(row_counts::json)),"
            " checks_passed, checks_warned from marts.publication"
        ).fetchall()
    return rows[0] if rows else None


def marts_summary(con: duckdb.DuckDBPyConnection) -> str:
    """The headline figures a reader of the published copy checks first; empty when it has no marts yet."""
    marts = {name for (name,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts'").fetchall()}  # fmt: skip
    if not {"dim_date", "fct_opportunity", "fct_bookings"} <= marts:
        return ""
    as_of = con.execute("select max(date_day) from marts.dim_date where is_as_of_date").fetchall()[0][0]
    won, lost, open_ = con.execute(
        "select count(*) filter (where status = 'won'), count(*) filter (where status = 'lost'),"
        " count(*) filter (where status = 'open') from marts.fct_opportunity"
    ).fetchall()[0]
    lines = [f"readers now see, as of {as_of}: {open_:,} open, {won:,} won and {lost:,} lost opportunities"]
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
    lines = []
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
    current = current_publication(published)
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


def stage_table(seconds: dict[str, float]) -> str:
    """Each stage's wall time, in the order the stages run, and the total."""
    lines = [f"{'stage':<18}{'seconds':>9}"]
    for stage in [*STAGES, *sorted(set(seconds) - set(STAGES))]:
        if stage in seconds:
            note = f"   {WHAT_IS_IN[stage]}" if stage in WHAT_IS_IN else ""
            lines.append(f"{stage:<18}{seconds[stage]:>9.1f}{note}")
    lines.append(f"{'total':<18}{sum(seconds.values()):>9.1f}")
    return "\n".join(lines)


def regenerate_dbt_docs(dbt: str, project_dir: str) -> str:
    """`dbt docs generate`; where the docs are and how to serve them, or why they could not be generated."""
    where = ["--project-dir", project_dir, "--profiles-dir", project_dir]
    done = subprocess.run([dbt, "docs", "generate", *where, "--quiet"], capture_output=True, text=True, check=False)
    if done.returncode:
        return f"dbt docs generate failed: {(done.stdout + done.stderr).strip()[-600:]}"
    return f"dbt docs: {project_dir}/target/index.html (serve with: {shlex.join([dbt, 'docs', 'serve', *where])})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", default=os.environ.get("WAREHOUSE_PATH", "data/warehouse.duckdb"))
    parser.add_argument("--published", help="the published DuckDB file (default: published/sales.duckdb beside the "
                        "warehouse, or PUBLISH_DIR/sales.duckdb)")  # fmt: skip
    parser.add_argument("--started-at", type=float, help="when `make materialize` began (seconds since the epoch): "
                        "the start-up is the time from then to the run's start")  # fmt: skip
    parser.add_argument("--world-seconds", type=float, help="how long the world's generation took (`make demo`)")
    parser.add_argument("--dbt", help="the dbt executable: regenerate the dbt docs when the run built a model")
    parser.add_argument("--dbt-project-dir", default="dbt_project")
    args = parser.parse_args()
    published = Path(args.published) if args.published else default_published(Path(args.warehouse))
    facts = run_facts()
    seconds: dict[str, float] = {}
    if args.world_seconds is not None:
        seconds["world generation"] = args.world_seconds
    if args.started_at is not None and facts is not None and facts.started is not None:
        seconds["start-up"] = max(0.0, facts.started - args.started_at)
    if facts is not None:
        seconds.update(facts.stage_seconds())
    if facts is not None and facts.did_nothing:
        landing = os.environ.get("LANDING_DIR", "the landing folder")
        seconds["report"] = time.time() - STARTED
        print(nothing_new(facts, published, landing, seconds))
        return
    print(report(facts, Path(args.warehouse), published))
    seconds["report"] = time.time() - STARTED
    if args.dbt and facts is not None and facts.built_models:
        docs_started = time.time()
        print(regenerate_dbt_docs(args.dbt, args.dbt_project_dir))
        seconds["dbt docs"] = time.time() - docs_started
    print(stage_table(seconds))


def report(facts: RunFacts | None, warehouse: Path, published: Path) -> str:
    """The run's loads, builds, audits and publication, then what readers of the published copy see."""
    sections = []
    crm_values = ""
    if facts is None:
        sections.append("no refresh run in the Dagster instance (DAGSTER_HOME): nothing to report on")
    else:
        sections.append(f"run {facts.run_id} ({facts.status.lower()}):")
        if warehouse.exists():
            with duckdb.connect(str(warehouse), read_only=True) as con:
                sections.append(loaded_in_run(con, facts.run_id))
                crm_values = crm_values_summary(con)
        sections.append(built_summary(facts))
        sections.append(publication_summary(published, facts.run_id, facts.failed_checks))
        quality = os.environ.get("QUALITY_DIR")
        if quality and any(stage_of(step) == "audits" for step in facts.step_seconds):
            sections.append(f"Data Docs: {quality}/gx/uncommitted/data_docs/local_site/index.html")
    if published.exists():
        with duckdb.connect(str(published), read_only=True) as con:
            sections += [marts_summary(con), forecasts_summary(con)]
    sections.append(crm_values)
    return "\n".join(section for section in sections if section)


def default_published(warehouse: Path) -> Path:
    folder = os.environ.get("PUBLISH_DIR")
    return Path(folder) / "sales.duckdb" if folder else warehouse.resolve().parent / "published" / "sales.duckdb"


if __name__ == "__main__":
    main()
