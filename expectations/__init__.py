"""Great Expectations suites as code, one module per table family, and what runs them.

No Dagster imports here: `orchestration/defs/quality/checks.py` turns each suite into asset checks.

- `raw_crm`, `raw_phone`, `raw_calendar`, `raw_reference`: the raw tables (columns and types, value sets, ranges,
  null rates, dates against their export, volume against the trailing loads, freshness of each source);
- `marts_pipeline`, `marts_activity`, `marts_finance`: business rules of the marts BI and finance read;
- `forecasts`: forecast intervals, for the ML tables to come;
- `core`: what a suite is and how it runs (`Validator`).
"""

from __future__ import annotations

from collections.abc import Mapping

from expectations import (
    marts_activity,
    marts_finance,
    marts_pipeline,
    raw_calendar,
    raw_common,
    raw_crm,
    raw_phone,
    raw_reference,
)
from expectations.core import TableSuite


def raw_suites(schemas: Mapping[str, Mapping[str, str]]) -> tuple[TableSuite, ...]:
    """Every raw suite; `schemas` maps each CSV-loaded table to its columns and DDL types."""
    return raw_common.raw_suites(
        (*raw_crm.TABLES, *raw_phone.TABLES, *raw_calendar.TABLES, *raw_reference.TABLES), schemas
    )


def mart_suites() -> tuple[TableSuite, ...]:
    return (*marts_pipeline.SUITES, *marts_activity.SUITES, *marts_finance.SUITES)
