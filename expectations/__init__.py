"""Great Expectations suites as code, one module per table family, and what runs them.

Each rule has one home: the loader owns row validity (types, required columns, lower bounds, fixed value lists), dbt
tests own the row rules on models and sources (keys, relationships, accepted values, ranges, reconciliations), and
the suites here keep what a row rule cannot judge. `tests/test_rule_homes.py` fails when a rule is in two homes.
No Dagster imports here: `orchestration/defs/quality/checks.py` turns each suite into asset checks.

- `raw_crm`, `raw_phone`, `raw_calendar`, `raw_reference`: the raw tables (null rates of the columns the loader lets
  be empty, volume against the trailing loads, freshness of each source);
- `marts_activity`: the share of activities attributed to a deal;
- `marts_volume`: ERROR audits that block publishing an empty mart built from a source with rows;
- `forecasts`: the revenue forecast finance reads (intervals ordered, no negative amount, levels adding up);
- `core`: what a suite is and how it runs (`Validator`).
"""

from __future__ import annotations

from expectations import (
    forecasts,
    marts_activity,
    marts_volume,
    raw_calendar,
    raw_common,
    raw_crm,
    raw_phone,
    raw_reference,
)
from expectations.core import TableSuite


def raw_suites() -> tuple[TableSuite, ...]:
    return raw_common.raw_suites((*raw_crm.TABLES, *raw_phone.TABLES, *raw_calendar.TABLES, *raw_reference.TABLES))


def mart_suites() -> tuple[TableSuite, ...]:
    return (*marts_activity.SUITES, *marts_volume.SUITES, *forecasts.SUITES)
