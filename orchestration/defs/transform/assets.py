"""The dbt project as Dagster assets: staging, intermediate and mart models downstream of the raw ingest assets,
with dbt's data tests as asset checks.

The project runs as two `dbt build`s: every model up to the marts (including the ML features mart), then, after the
ML assets (`defs/ml/assets.py`), the models that read their tables. Within a build dbt orders models and tests
itself, and a model whose test of severity error fails leaves everything built from it skipped. The dbt tests of
severity error are blocking checks, and so are the Great Expectations audits of the marts and the forecast
(`defs/quality/checks.py`): `publish` runs only when all of them pass.
"""

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse
from orchestration.lib.dbt_project import (
    READS_ML,
    WarehouseTranslator,
    build_args,
    compiled_tests,
    failing_rows,
    prepared_project,
)

project = prepared_project()


class WarehouseBuildConfig(dg.Config):
    """How the dbt models are built in this run."""

    as_of_date: str | None = None
    """The build's "today" (YYYY-MM-DD); empty for the latest export date in the data."""
    full_refresh: bool = False
    """Rebuild the incremental facts from scratch instead of adding the latest days."""


# The models that read the ML assets' tables build in a second `dbt build`, after the ML assets, so the graph runs
# marts -> ML -> models on ML -> audits -> publish.
@dbt_assets(
    manifest=project.manifest_path,
    project=project,
    dagster_dbt_translator=WarehouseTranslator(),
    pool=WAREHOUSE_POOL,
    name="warehouse_models",
    exclude=READS_ML,
)
def warehouse_models(
    context: dg.AssetExecutionContext, config: WarehouseBuildConfig, dbt: DbtCliResource, warehouse: Warehouse
):
    """Every dbt model but those on ML outputs (grain in each model's description), built and tested by one
    `dbt build`."""
    yield from build_and_test(context, config, dbt, warehouse)


@dbt_assets(
    manifest=project.manifest_path,
    project=project,
    dagster_dbt_translator=WarehouseTranslator(),
    pool=WAREHOUSE_POOL,
    name="models_on_ml",
    select=READS_ML,
)
def models_on_ml(
    context: dg.AssetExecutionContext, config: WarehouseBuildConfig, dbt: DbtCliResource, warehouse: Warehouse
):
    """The dbt models that read the ML assets' tables (scored deals, forecast accuracy), built and tested after
    them."""
    yield from build_and_test(context, config, dbt, warehouse)


def build_and_test(
    context: dg.AssetExecutionContext, config: WarehouseBuildConfig, dbt: DbtCliResource, warehouse: Warehouse
):
    """`dbt build` of this asset's selection; failing tests come with their first failing rows, and a failed build
    fails the step, so nothing downstream (publish) runs."""
    args = build_args(config.as_of_date, config.full_refresh)
    with warehouse.get_connection():
        pass  # fails at once, naming the holder, when another process has the file; dbt would wait on it
    invocation = dbt.cli(args, context=context, raise_on_error=False)
    failed = []
    for event in invocation.stream():
        if isinstance(event, dg.AssetCheckResult) and not event.passed:
            failed.append(event)  # named once dbt has exited and closed the warehouse file
        else:
            yield event
    yield from with_failing_rows(context, failed, invocation, warehouse)
    if not invocation.is_successful():
        raise dg.Failure(
            description="dbt build failed: the models and tests above that failed, and everything built from them, "
            "were skipped; nothing is published in this run.",
            metadata={
                "failed_tests": dg.MetadataValue.json([result.check_name for result in failed if _blocks(result)])
            },
        )


def _blocks(result: dg.AssetCheckResult) -> bool:
    return result.severity == dg.AssetCheckSeverity.ERROR


def with_failing_rows(context: dg.AssetExecutionContext, failed: list[dg.AssetCheckResult], invocation, warehouse):
    """Failed dbt tests with up to ten of the rows each test's query returned (a duplicated key, an orphan id)."""
    if not failed:
        return
    sql_by_test = compiled_tests(invocation.get_artifact("run_results.json"))
    with warehouse.get_connection(read_only=True) as con:
        for result in failed:
            sql = sql_by_test.get(str(getattr(result.metadata.get("unique_id"), "value", "")))
            examples = failing_rows(con, sql) if sql else []
            if _blocks(result):
                context.log.error(
                    f"dbt test {result.check_name} on {result.asset_key.to_user_string()} failed "
                    f"({result.description or 'see its failing rows'}); first failing rows: {examples[:3]}. "
                    "Publishing is withheld: BI keeps reading the last good publication."
                )
            yield dg.AssetCheckResult(
                asset_key=result.asset_key,
                check_name=result.check_name,
                passed=False,
                severity=result.severity,
                description=result.description,
                metadata={**result.metadata, "example_failing_rows": dg.MetadataValue.json(examples)},
            )
