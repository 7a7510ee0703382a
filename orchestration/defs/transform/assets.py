"""The dbt project as Dagster assets: staging, intermediate and mart models downstream of the raw ingest assets,
with dbt's data tests as asset checks."""

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.defs.resources import WAREHOUSE_POOL
from orchestration.lib.dbt_project import WarehouseTranslator, build_args, prepared_project

project = prepared_project()


class WarehouseBuildConfig(dg.Config):
    """Run config of a warehouse build."""

    as_of_date: str | None = None
    """The build's "today" (YYYY-MM-DD); empty for the latest export date in the data."""
    full_refresh: bool = False
    """Rebuild the incremental facts from scratch instead of adding the latest days."""


@dbt_assets(
    manifest=project.manifest_path,
    project=project,
    dagster_dbt_translator=WarehouseTranslator(),
    pool=WAREHOUSE_POOL,
    name="warehouse_models",
)
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: WarehouseBuildConfig):
    """Every dbt model, one asset per model (grain in each model's description), built and tested by `dbt build`."""
    yield from dbt.cli(build_args(config.as_of_date, config.full_refresh), context=context).stream()
