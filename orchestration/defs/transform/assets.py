"""The dbt project as Dagster assets: staging, intermediate and mart models downstream of the raw ingest assets,
with dbt's data tests as asset checks.

The models run as one `dbt build` per layer (`mart_layers`): staging, intermediate and the marts that read no other
mart first, then each layer of marts that reads the one before. Data-quality checks on a mart are blocking asset
checks (`defs/quality/checks.py`), and Dagster holds back only steps that wait on them: with one step for the
whole project, a failing check on `fct_opportunity` would arrive after `fct_bookings` had been built from it.
A test that reads models of two steps runs in the later one (`cross_layer_tests`), so every dbt test has a result.
"""

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource

from orchestration.defs.resources import WAREHOUSE_POOL, WarehouseBuild
from orchestration.lib.dbt_project import (
    WarehouseTranslator,
    build_args,
    compiled_tests,
    cross_layer_tests,
    failing_rows,
    mart_layers,
    prepared_project,
)

project = prepared_project()
LAYERS = mart_layers(project.manifest_path)
CROSS_LAYER_TESTS = cross_layer_tests(project.manifest_path, LAYERS)


def _layer(number: int, models: list[str], tests: list[str]) -> dg.AssetsDefinition:
    # layer 0 also holds the seeds, staging and intermediate models; selected by path rather than by excluding the
    # later marts, since an exclusion would leave their tests selected (dagster-dbt selects `fqn:*`, tests included).
    # The tests that also read an earlier step's model are named: indirect selection would leave them out.
    foundation = ["path:seeds", "path:models/staging", "path:models/intermediate"] if number == 0 else []

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=WarehouseTranslator(),
        pool=WAREHOUSE_POOL,
        name=f"warehouse_models_{number}",
        select=" ".join([*foundation, *models, *tests]),
    )
    def layer(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse_build: WarehouseBuild,
        warehouse: DuckDBResource,
    ):  # fmt: skip
        """One layer of dbt models (grain in each model's description), built and tested by `dbt build`."""
        invocation = dbt.cli(build_args(warehouse_build.as_of_date, warehouse_build.full_refresh), context=context)
        failed = []
        for event in invocation.stream():
            if isinstance(event, dg.AssetCheckResult) and not event.passed:
                failed.append(event)  # named once dbt has exited and closed the warehouse file
            else:
                yield event
        yield from with_failing_rows(failed, invocation, warehouse)

    return layer


def with_failing_rows(failed: list[dg.AssetCheckResult], invocation, warehouse: DuckDBResource):
    """Failed dbt tests with up to ten of the rows each test's query returned (a duplicated key, an orphan id)."""
    if not failed:
        return
    sql_by_test = compiled_tests(invocation.get_artifact("run_results.json"))
    with warehouse.get_connection() as con:
        for result in failed:
            sql = sql_by_test.get(str(getattr(result.metadata.get("unique_id"), "value", "")))
            examples = failing_rows(con, sql) if sql else []
            yield dg.AssetCheckResult(
                asset_key=result.asset_key,
                check_name=result.check_name,
                passed=False,
                severity=result.severity,
                description=result.description,
                metadata={**result.metadata, "example_failing_rows": dg.MetadataValue.json(examples)},
            )


warehouse_models = [
    _layer(number, models, tests) for number, (models, tests) in enumerate(zip(LAYERS, CROSS_LAYER_TESTS, strict=True))
]
