"""Resources, bound once for the whole code location under noun keys."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ingestion.mapping import Mappings, load_mappings
from orchestration.lib.dbt_project import dbt_cli

WAREHOUSE_POOL = "warehouse_writer"  # one writer at a time: DuckDB admits one read-write process per file
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
# DuckDB names the process holding a file in its lock error: "... Conflicting lock is held in <program> (PID 123)"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


class WarehouseBusyError(RuntimeError):
    """Another process holds the working warehouse file."""


class Warehouse(DuckDBResource):
    """The working DuckDB warehouse, the pipeline's own file.

    Unlike `DuckDBResource`, which retries a locked file for about 100 s, a connection fails at once when another
    process holds the file, naming that process: nothing but this pipeline should ever open it (BI tools read the
    published copy), so waiting only hides the cause. Steps that only read open it read-only.
    """

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = Path(self.database)
        if read_only and not path.exists():
            # a read-only open of a missing file is an error; the checks of an empty run read an empty warehouse
            read_only = False
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=dict(self.connection_config))
        except duckdb.IOException as error:
            raise warehouse_busy(path, error) from error
        try:
            yield con
        finally:
            con.close()


def warehouse_busy(path: Path, error: Exception) -> Exception:
    """The error to raise when `path` cannot be opened: who holds it and what to do, when DuckDB says so."""
    holder = _LOCK_HOLDER.search(str(error))
    if not holder:
        return error
    pid = holder["pid"]
    return WarehouseBusyError(
        f"The working warehouse {path} is held by another process: {holder['program']} (PID {pid}). Only this "
        f"pipeline may open it; BI tools and scripts read the published copy (published/sales.duckdb) instead. "
        f"Close that program or stop it (`kill {pid}`), then run again."
    )


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


class Quality(dg.ConfigurableResource):
    """Where Great Expectations keeps its project and HTML Data Docs (`<path>/gx/uncommitted/data_docs/`)."""

    path: str = "data/quality"


class Publishing(dg.ConfigurableResource):
    """Where the published copy goes (`<path>/sales.duckdb`, `<path>/parquet/<schema>/<table>.parquet`), and the
    optional PostgreSQL database it is also loaded into."""

    path: str = "data/published"
    postgres_dsn: str | None = None
    """A libpq connection string (`PUBLISH_POSTGRES_DSN`); empty: no PostgreSQL copy."""
    pii_key: str | None = None
    """Key of the keyed hash (HMAC-SHA256) that replaces contact e-mails and phone numbers in the published copy
    (`PUBLISH_PII_KEY`); empty: they are masked instead (`***@example.com`, `+*********42`)."""


class ModelStore(dg.ConfigurableResource):
    """Where the win-probability models are kept, outside git: `<path>/<sha256 prefix>.joblib`, each with its JSON
    model card beside it (`ml/store.py`)."""

    path: str = "data/models"


def _data_dir() -> Path:
    """The folder of the warehouse file (`data/` for the default `data/warehouse.duckdb`): the default home of the
    Data Docs, the published copy and the models."""
    return Path(os.environ.get("WAREHOUSE_PATH", DEFAULT_WAREHOUSE)).resolve().parent


def warehouse_resource() -> Warehouse:
    # A bounded buffer pool keeps a bench-scale load within memory; DuckDB spills what does not fit.
    memory = os.environ.get("WAREHOUSE_MEMORY_LIMIT", "2GB")
    return Warehouse(
        database=os.environ.get("WAREHOUSE_PATH", DEFAULT_WAREHOUSE), connection_config={"memory_limit": memory}
    )


def landing_resource() -> Landing:
    return Landing(
        path=os.environ.get("LANDING_DIR", "data/landing"), mappings_dir=os.environ.get("SOURCE_MAPPINGS_DIR")
    )


def publishing_resource() -> Publishing:
    return Publishing(
        path=os.environ.get("PUBLISH_DIR", str(_data_dir() / "published")),
        postgres_dsn=os.environ.get("PUBLISH_POSTGRES_DSN") or None,
        pii_key=os.environ.get("PUBLISH_PII_KEY") or None,
    )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "warehouse": warehouse_resource(),
            "landing": landing_resource(),
            # dbt reads WAREHOUSE_PATH itself (dbt_project/profiles.yml)
            "dbt": dbt_cli(),
            "quality": Quality(path=os.environ.get("QUALITY_DIR", str(_data_dir() / "quality"))),
            "publishing": publishing_resource(),
            "model_store": ModelStore(path=os.environ.get("MODELS_DIR", str(_data_dir() / "models"))),
        }
    )
