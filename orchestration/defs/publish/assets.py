"""Publish: the copy of the marts that BI tools, finance and the report read, swapped in only after every audit of
this run passed."""

import json
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.defs.ml.assets import FORECAST_BACKTEST, REVENUE_FORECAST, WIN_BACKTEST, WIN_MODELS, WIN_PROBABILITY
from orchestration.defs.resources import WAREHOUSE_POOL, Publishing, Warehouse, warehouse_busy
from orchestration.defs.transform.assets import models_on_ml, project, warehouse_models
from orchestration.lib.publish import Publication, publish, tables_to_publish

PUBLISHED_KEY = dg.AssetKey(["published", "sales"])
# The marts and the ML tables are published; their blocking checks (dbt tests of severity error, the Great
# Expectations audits of severity ERROR) must pass before this asset runs.
ML_TABLES = [WIN_MODELS, WIN_PROBABILITY, WIN_BACKTEST, REVENUE_FORECAST, FORECAST_BACKTEST]
AUDITED = sorted(
    [*(key for key in [*warehouse_models.keys, *models_on_ml.keys] if key.path[0] == "marts"), *ML_TABLES],
    key=lambda key: key.path,
)


def checks_of_this_run(context: dg.AssetExecutionContext) -> tuple[int, int]:
    """(checks that passed, checks of severity warn that failed) among the asset checks evaluated in this run."""
    passed = warned = 0
    for record in context.instance.all_logs(context.run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data
        if evaluation.passed:
            passed += 1
        elif evaluation.severity == dg.AssetCheckSeverity.WARN:
            warned += 1
    return passed, warned


@dg.asset(
    key=PUBLISHED_KEY,
    group_name="publish",
    kinds={"duckdb", "parquet"},
    deps=AUDITED,
    pool=WAREHOUSE_POOL,
    description="The published copy: DATA_DIR/published/sales.duckdb (the marts and ml schemas, documented, with a "
    "marts.publication row) and DATA_DIR/published/parquet/<schema>/<table>.parquet, plus PostgreSQL when "
    "PUBLISH_POSTGRES_DSN is set. Replaced atomically, only when every blocking check of the run passed.",
)
def published(context: dg.AssetExecutionContext, warehouse: Warehouse, publishing: Publishing) -> dg.MaterializeResult:
    """Builds the next publication beside the current one and swaps it in; readers keep the old one until then."""
    passed, warned = checks_of_this_run(context)
    tables = tables_to_publish(json.loads(Path(project.manifest_path).read_text()))
    also = None
    if publishing.postgres_dsn:
        # psycopg is loaded only by the deployments that publish to PostgreSQL
        from orchestration.lib.publish_postgres import publish_to_postgres

        def also(path: Path) -> None:
            publish_to_postgres(path, publishing.postgres_dsn, log=context.log.info)

    try:
        publication = publish(
            Path(warehouse.database), Path(publishing.path), tables, run_id=context.run.run_id, checks_passed=passed,
            checks_warned=warned, pii_key=publishing.pii_key, also=also, log=context.log.info,
        )  # fmt: skip
    except duckdb.IOException as error:
        raise warehouse_busy(Path(warehouse.database), error) from error
    context.log.info(
        f"published {len(publication.row_counts)} tables as of {publication.as_of_date} to {publication.path} "
        f"and {publication.parquet_dir} in {publication.seconds:.1f} s"
        + (" and to PostgreSQL" if publishing.postgres_dsn else "")
    )
    return dg.MaterializeResult(metadata=publication_metadata(publication, postgres=bool(publishing.postgres_dsn)))


def publication_metadata(publication: Publication, postgres: bool) -> dict[str, object]:
    rows = "\n".join(f"| {table} | {count:,} |" for table, count in sorted(publication.row_counts.items()))
    return {
        "path": dg.MetadataValue.path(str(publication.path)),
        "parquet": dg.MetadataValue.path(str(publication.parquet_dir)),
        "as_of_date": str(publication.as_of_date),
        "tables": len(publication.row_counts),
        "dagster/row_count": sum(publication.row_counts.values()),
        "row_counts": dg.MetadataValue.md(f"| table | rows |\n|---|---:|\n{rows}"),
        "checks_passed": publication.checks_passed,
        "checks_warned": publication.checks_warned,
        "pii_protection": publication.pii_protection,
        "postgres": postgres,
        "seconds": round(publication.seconds, 2),
    }
