"""Glue between the Great Expectations suites (`expectations/`) and the warehouse as ingestion builds it.

Nothing here defines Dagster objects; `defs/quality/checks.py` turns the suites into asset checks.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from expectations import mart_suites, raw_suites
from expectations.core import TableSuite, Validator
from orchestration.lib.csv_loader import sql_type
from orchestration.lib.mapping import load_mappings


def raw_schemas() -> dict[str, dict[str, str]]:
    """Each CSV-loaded raw table's declared columns and DDL types, as `csv_loader.ensure_tables` creates them."""
    schemas: dict[str, dict[str, str]] = {}
    for name, table in load_mappings().tables.items():
        columns: dict[str, str] = {}
        for column in table.columns:
            columns[column.name] = sql_type(column)
            if column.type == "phone":
                columns[f"{column.name}_e164"] = "varchar"
        schemas[name] = columns
    return schemas


def all_suites() -> tuple[TableSuite, ...]:
    return (*raw_suites(raw_schemas()), *mart_suites())


@cache
def validator(docs_dir: str) -> Validator:
    """One GX project per Data Docs folder and process: GX's import and context cost seconds, paid once."""
    return Validator(Path(docs_dir))
