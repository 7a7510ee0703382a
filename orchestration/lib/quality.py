"""Glue between the Great Expectations suites (`expectations/`) and the warehouse as ingestion builds it.

Nothing here defines Dagster objects; `defs/quality/checks.py` turns the suites into asset checks.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from expectations import mart_suites, raw_suites
from expectations.core import TableSuite, Validator
from ingestion.csv_loader import raw_columns
from ingestion.mapping import load_mappings


def raw_schemas() -> dict[str, dict[str, str]]:
    """Each CSV-loaded raw table's declared columns and DDL types, as ingestion creates them."""
    return {name: raw_columns(table) for name, table in load_mappings().tables.items()}


@cache
def all_suites() -> tuple[TableSuite, ...]:
    """Every suite, built once per process (the mappings are read and the GX expectations made here)."""
    return (*raw_suites(raw_schemas()), *mart_suites())


@cache
def validator(docs_dir: str) -> Validator:
    """One GX project per Data Docs folder and process: GX's import and context cost seconds, paid once."""
    return Validator(Path(docs_dir))
