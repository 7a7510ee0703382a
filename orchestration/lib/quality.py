"""Glue between the Great Expectations suites (`expectations/`) and the warehouse as ingestion builds it.

Nothing here defines Dagster objects; `defs/quality/checks.py` turns the suites into asset checks.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from expectations import mart_suites, raw_suites
from expectations.core import TableSuite, Validator


@cache
def all_suites() -> tuple[TableSuite, ...]:
    """Every suite, built once per process (the GX expectations are made here)."""
    return (*raw_suites(), *mart_suites())


@cache
def validator(docs_dir: str) -> Validator:
    """One GX project per Data Docs folder and process: GX's import and context cost seconds, paid once."""
    return Validator(Path(docs_dir))
