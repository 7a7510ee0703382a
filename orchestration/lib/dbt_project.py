"""The dbt project as Dagster sees it: where it lives, its manifest, and the arguments of a build.

Nothing here defines Dagster objects; `defs/transform/assets.py` wires these into `@dbt_assets`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
# The dbt of the environment Dagster runs in, found without relying on an activated virtual environment's PATH.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
# The models that read the tables the ML assets write (dbt_project.yml tags staging/ml, and the marts on them): they
# build after those assets, in a second `dbt build`; a build of the rest excludes them.
READS_ML = "tag:reads_ml"
# Files whose change makes the manifest stale.
_PROJECT_SOURCES = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests", "seeds", "snapshots", "analyses")


def warehouse_dbt_project() -> DbtProject:
    return DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR)


def manifest_is_stale(project: DbtProject) -> bool:
    """True when the manifest is missing or older than any file of the project.

    `DbtProject.prepare_if_dev` parses only under `dagster dev`; `dagster job execute`, the tests and a fresh clone
    load the definitions without it, so the code location parses on load whenever the manifest would be out of date
    (a `dbt parse` of this project takes a few seconds).
    """
    manifest = Path(project.manifest_path)
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    for name in _PROJECT_SOURCES:
        path = PROJECT_DIR / name
        files = [path] if path.is_file() else list(path.rglob("*")) if path.exists() else []
        if any(candidate.is_file() and candidate.stat().st_mtime > built for candidate in files):
            return True
    return False


def dbt_cli() -> DbtCliResource:
    return DbtCliResource(project_dir=str(PROJECT_DIR), profiles_dir=str(PROJECT_DIR), dbt_executable=DBT_EXECUTABLE)


def prepared_project() -> DbtProject:
    """The project with an up-to-date manifest, parsed now when needed."""
    project = warehouse_dbt_project()
    if manifest_is_stale(project):
        dbt_cli().cli(["parse", "--quiet"], target_path=Path(project.target_path), manifest={}).wait()
    return project


def build_args(as_of_date: str | None = None, full_refresh: bool = False) -> list[str]:
    """`dbt build` arguments: `as_of_date` is the only "today" the models use, so a run for a past date passes it
    explicitly; without it the models take the latest export date in the ledger."""
    args = ["build"]
    if as_of_date:
        try:
            dt.date.fromisoformat(as_of_date)
        except ValueError:
            raise ValueError(f"as_of_date must be a date written YYYY-MM-DD, not {as_of_date!r}") from None
        args += ["--vars", json.dumps({"as_of_date": as_of_date})]
    if full_refresh:
        args.append("--full-refresh")
    return args


def compiled_tests(run_results: Mapping[str, Any]) -> dict[str, str]:
    """The SQL each dbt test ran, by the test's unique id (from a run's run_results.json)."""
    return {
        result["unique_id"]: result["compiled_code"]
        for result in run_results.get("results", [])
        if result["unique_id"].startswith("test.") and result.get("compiled_code")
    }


def failing_rows(con, test_sql: str, limit: int = 10) -> list[dict[str, Any]]:
    """Up to `limit` rows a dbt test's query returns: the rows that make it fail, as JSON-ready dicts."""
    try:
        cursor = con.execute(f"select * from ({test_sql}) as failures limit {int(limit)}")
    except Exception as error:  # the example rows are a help, never a reason to lose the check result
        return [{"error": f"{type(error).__name__}: {error}"}]
    names = [column[0] for column in cursor.description]
    return [{name: _json_value(value) for name, value in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class WarehouseTranslator(DagsterDbtTranslator):
    """dbt sources are the ingest assets (`["raw", <table>]`); models are keyed and grouped by their schema
    (`["marts", "fct_opportunity"]` in group `marts`), so the UI shows one graph from landing to marts."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or "main"
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "ingest"
        return dbt_resource_props.get("config", {}).get("schema") or "transform"


def run_dbt(
    args: list[str], warehouse: Path, *, target_path: Path | None = None, threads: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a dbt command on the project against `warehouse` (outside Dagster: tests, benchmarks, scripts).

    A separate `target_path` keeps the run's artifacts away from the manifest the code location loads.
    """
    env = {**os.environ, "WAREHOUSE_PATH": str(warehouse)}
    if threads:
        env["DBT_THREADS"] = str(threads)
    command = [DBT_EXECUTABLE, *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    if target_path is not None:
        command += ["--target-path", str(target_path)]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)
