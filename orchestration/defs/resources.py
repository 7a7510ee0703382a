"""Resources, bound once for the whole code location under noun keys."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from ingestion.mapping import Mappings, load_mappings
from orchestration.lib.dbt_project import dbt_cli

WAREHOUSE_POOL = "warehouse_writer"  # one writer at a time: DuckDB admits one read-write process per file


class Landing(dg.ConfigurableResource):
    """The landing folder the exports are dropped in (`crm/`, `calendar/`, `phone/`, `reference/`), and the
    column mappings that say how to read them."""

    path: str = "data/landing"
    mappings_dir: str | None = None

    @property
    def root(self) -> Path:
        return Path(self.path).resolve()

    def mappings(self) -> Mappings:
        return load_mappings(Path(self.mappings_dir) if self.mappings_dir else None)


class WarehouseBuild(dg.ConfigurableResource):
    """How the dbt models are built in a run: set once per run, read by every layer of models."""

    as_of_date: str | None = None
    """The build's "today" (YYYY-MM-DD); empty for the latest export date in the data."""
    full_refresh: bool = False
    """Rebuild the incremental facts from scratch instead of adding the latest days."""


class Quality(dg.ConfigurableResource):
    """Where Great Expectations keeps its project and HTML Data Docs (`<path>/gx/uncommitted/data_docs/`)."""

    path: str = "data/quality"


def warehouse_resource() -> DuckDBResource:
    path = Path(os.environ.get("WAREHOUSE_PATH", "data/warehouse.duckdb"))
    path.parent.mkdir(parents=True, exist_ok=True)
    # A bounded buffer pool keeps a bench-scale load within memory; DuckDB spills what does not fit.
    memory = os.environ.get("WAREHOUSE_MEMORY_LIMIT", "2GB")
    return DuckDBResource(database=str(path), connection_config={"memory_limit": memory})


def _default_quality_dir() -> Path:
    """`quality/` beside the warehouse file (`data/quality` for the default `data/warehouse.duckdb`)."""
    return Path(os.environ.get("WAREHOUSE_PATH", "data/warehouse.duckdb")).resolve().parent / "quality"


def landing_resource() -> Landing:
    return Landing(
        path=os.environ.get("LANDING_DIR", "data/landing"), mappings_dir=os.environ.get("SOURCE_MAPPINGS_DIR")
    )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "warehouse": warehouse_resource(),
            "landing": landing_resource(),
            # dbt reads WAREHOUSE_PATH itself (dbt_project/profiles.yml)
            "dbt": dbt_cli(),
            "warehouse_build": WarehouseBuild(),
            "quality": Quality(path=os.environ.get("QUALITY_DIR", str(_default_quality_dir()))),
        }
    )
