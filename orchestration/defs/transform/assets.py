"""The dbt project as Dagster assets: staging, intermediate and mart models downstream of the raw ingest assets,
with dbt's data tests as asset checks.

The models run as one `dbt build` per layer (`mart_layers`): staging, intermediate and the marts that read no other
mart first, then each layer of marts that reads the one before. Data-quality checks on a mart are blocking asset
checks (`defs/quality/checks.py`), and Dagster holds back only steps that wait on them: with one step for the
whole project, a failing check on `fct_opportunity` would arrive after `fct_bookings` had been built from it.
"""

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.defs.resources import WAREHOUSE_POOL, WarehouseBuild
from orchestration.lib.dbt_project import WarehouseTranslator, build_args, mart_layers, prepared_project

project = prepared_project()
LAYERS = mart_layers(project.manifest_path)


def _layer(number: int, models: list[str]) -> dg.AssetsDefinition:
    # layer 0 also holds the seeds, staging and intermediate models; selected by path rather than by excluding the
    # later marts, since an exclusion would leave their tests selected (dagster-dbt selects `fqn:*`, tests included)
    foundation = ["path:seeds", "path:models/staging", "path:models/intermediate"] if number == 0 else []

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=WarehouseTranslator(),
        pool=WAREHOUSE_POOL,
        name=f"warehouse_models_{number}",
        select=" ".join([*foundation, *models]),
    )
    def layer(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse_build: WarehouseBuild):
        """One layer of dbt models (grain in each model's description), built and tested by `dbt build`."""
        args = build_args(warehouse_build.as_of_date, warehouse_build.full_refresh)
        yield from dbt.cli(args, context=context).stream()

    return layer


warehouse_models = [_layer(number, models) for number, models in enumerate(LAYERS)]
