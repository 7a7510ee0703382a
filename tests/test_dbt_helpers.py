"""The dbt glue of the code location (orchestration/lib/dbt_project.py), tested alone: the arguments of a build, the
translator that keys dbt nodes as assets, when the manifest is stale, and how a failing dbt test's rows are read.
No dbt run, no Dagster run: the fast tier (`make test-fast`)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest

from orchestration.lib.dbt_project import (
    WarehouseTranslator,
    build_args,
    compiled_tests,
    failing_rows,
    manifest_is_stale,
)

# ------------------------------------------------------------------------------------------------ build arguments


def test_a_build_without_a_date_takes_todays_date_from_the_data() -> None:
    assert build_args() == ["build"]


def test_a_build_as_of_a_date_passes_it_as_the_only_var() -> None:
    assert build_args("2025-06-30") == ["build", "--vars", '{"as_of_date": "2025-06-30"}']


def test_a_full_refresh_comes_after_the_vars() -> None:
    assert build_args("2025-06-30", full_refresh=True) == [
        "build", "--vars", '{"as_of_date": "2025-06-30"}', "--full-refresh",
    ]  # fmt: skip
    assert build_args(full_refresh=True) == ["build", "--full-refresh"]


@pytest.mark.parametrize("as_of", ["2025-06-31", "30/06/2025", "2025-06-30'; drop table marts.fct_bookings"])
def test_a_build_date_that_is_not_a_date_is_refused_before_dbt_sees_it(as_of: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        build_args(as_of)


# ------------------------------------------------------------------------------------------------- the translator


def test_a_dbt_source_is_the_ingest_asset_of_its_raw_table() -> None:
    source = {"resource_type": "source", "source_name": "raw", "name": "opportunity"}
    translator = WarehouseTranslator()
    assert translator.get_asset_key(source) == dg.AssetKey(["raw", "opportunity"])
    assert translator.get_group_name(source) == "ingest"


def test_a_model_is_keyed_and_grouped_by_its_schema() -> None:
    model = {"resource_type": "model", "name": "fct_opportunity", "config": {"schema": "marts"}}
    translator = WarehouseTranslator()
    assert translator.get_asset_key(model) == dg.AssetKey(["marts", "fct_opportunity"])
    assert translator.get_group_name(model) == "marts"


def test_a_model_without_a_schema_lands_in_main_and_the_transform_group() -> None:
    seed = {"resource_type": "seed", "name": "stage_definitions", "config": {}}
    translator = WarehouseTranslator()
    assert translator.get_asset_key(seed) == dg.AssetKey(["main", "stage_definitions"])
    assert translator.get_group_name(seed) == "transform"


def test_dbt_tests_become_asset_checks() -> None:
    assert WarehouseTranslator().settings.enable_asset_checks


# ------------------------------------------------------------------------------------------ a stale manifest


def manifest_at(path: Path, modified: float) -> SimpleNamespace:
    path.write_text("{}")
    os.utime(path, (modified, modified))
    return SimpleNamespace(manifest_path=path)


def test_a_missing_manifest_is_stale(tmp_path: Path) -> None:
    assert manifest_is_stale(SimpleNamespace(manifest_path=tmp_path / "manifest.json"))


def test_a_manifest_older_than_a_project_file_is_stale(tmp_path: Path) -> None:
    assert manifest_is_stale(manifest_at(tmp_path / "manifest.json", modified=0))


def test_a_manifest_newer_than_every_project_file_is_not_stale(tmp_path: Path) -> None:
    assert not manifest_is_stale(manifest_at(tmp_path / "manifest.json", modified=time.time() + 3600))


# ------------------------------------------------------------------------------------ the rows of a failing test


def test_the_compiled_sql_of_each_test_is_read_from_the_run_results() -> None:
    run_results = {
        "results": [
            {"unique_id": "test.sales.unique_fct_bookings_booking_id.1", "compiled_code": "select 1"},
            {"unique_id": "model.sales.fct_bookings", "compiled_code": "select * from x"},
            {"unique_id": "test.sales.not_compiled.2", "compiled_code": None},
            {"unique_id": "unit_test.sales.fct_bookings.rounds", "compiled_code": "select 2"},
        ]
    }
    assert compiled_tests(run_results) == {"test.sales.unique_fct_bookings_booking_id.1": "select 1"}
    assert compiled_tests({}) == {}


def test_failing_rows_are_json_ready_and_limited() -> None:
    with duckdb.connect() as con:
        con.execute(
            "create table failures as select i as id, (i * 1.5)::decimal(10, 2) as amount, "
            "date '2025-01-01' + i::integer as day, i % 2 = 0 as even, null as nothing from range(20) as t(i)"
        )
        rows = failing_rows(con, "select * from failures order by id", limit=3)
    assert rows == [
        {"id": 0, "amount": str(Decimal("0.00")), "day": str(dt.date(2025, 1, 1)), "even": True, "nothing": None},
        {"id": 1, "amount": "1.50", "day": "2025-01-02", "even": False, "nothing": None},
        {"id": 2, "amount": "3.00", "day": "2025-01-03", "even": True, "nothing": None},
    ]
    json.dumps(rows)


def test_a_test_query_that_fails_gives_its_error_instead_of_rows() -> None:
    with duckdb.connect() as con:
        (row,) = failing_rows(con, "select * from a_table_that_is_gone")
    assert row["error"].startswith("CatalogException") and "a_table_that_is_gone" in row["error"]
