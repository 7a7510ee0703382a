"""Building blocks of the raw-table suites: null rates, row volume against the trailing loads, and freshness of a
source.

A raw table holds what ingestion loaded after its row checks (`ingestion/mappings/canonical.yaml`: types, required
columns, lower bounds, fixed value lists, dates against their export), so a suite here never restates one of them:
such a rule cannot fail on what the loader let in. The other row rules on raw tables (upper bounds, value lists the
loader does not own) are dbt source tests (`dbt_project/models/staging/crm/_crm__sources.yml`). These suites watch the
tables as a whole, so a changed export, a broken loader or a thin drop is seen before dbt reads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import great_expectations.expectations as gxe

from expectations.core import WARN, Batch, TableSuite, expect, table_batch

VOLUME_DROP = 0.9  # a drop with this share fewer rows than the median of the trailing loads is flagged
TRAILING_LOADS = 8  # the loads the median is taken over
MIN_HISTORY = 4  # a table needs this many earlier loads before its volume is judged
FRESHNESS_DAYS = 1  # a source whose newest export is older than the newest export of any source by more is stale


@dataclass(frozen=True)
class RawTable:
    """What a raw table should look like as a whole; the suite is built from it by `raw_suite`."""

    table: str
    id_columns: tuple[str, ...]
    # column -> least share of rows with a value, below 1: a drift in the null rate of a column the loader lets be
    # empty (a column every row must fill is the loader's `required`, and quarantines the row)
    null_rates: Mapping[str, float] = field(default_factory=dict)
    volume: bool = True  # judge each drop's rows against the trailing loads (tables exported as daily changes)
    freshness_of: str | None = None  # the source whose freshness this table's checks report

    def __post_init__(self) -> None:
        full = sorted(column for column, share in self.null_rates.items() if share >= 1)
        if full:
            raise ValueError(f"raw.{self.table}: {full} must always be filled: that is the loader's `required`")


def raw_suites(tables: Sequence[RawTable]) -> tuple[TableSuite, ...]:
    """A suite per table that has something to watch (a reference table replaced whole, whose columns the loader
    checks row by row, has none)."""
    suites = (raw_suite(spec) for spec in tables)
    return tuple(suite for suite in suites if suite.batches)


def raw_suite(spec: RawTable) -> TableSuite:
    table = f"raw.{spec.table}"
    batches: list[Batch] = []
    if spec.null_rates:
        null_rates = [
            expect(
                f"{column}_null_rate",
                gxe.ExpectColumnValuesToNotBeNull,
                f"{column} is filled in {share:.0%} of rows or more.",
                severity=WARN,
                column=column,
                mostly=share,
            )
            for column, share in spec.null_rates.items()
        ]
        batches.append(table_batch(table, spec.id_columns, null_rates))
    if spec.volume:
        batches.append(_volume(spec.table))
    if spec.freshness_of:
        batches.append(_freshness(spec.freshness_of))
    return TableSuite(
        asset=("raw", spec.table),
        batches=tuple(batches),
        requires=("raw.load_ledger",),
        description=f"Null rates, volume and freshness of raw.{spec.table} after ingestion.",
    )


def volume_sql(table: str) -> str:
    """Rows loaded per export date of `table` and per day since the export before it, against the median of the
    trailing loads. Per day, so that a change of cadence (a daily drop after monthly ones) is not a volume drop."""
    return f"""
with drops as (
    select export_date, sum(rows_loaded) as rows_loaded
    from raw.load_ledger
    where table_name = '{table}' and status = 'loaded' and export_date is not null
    group by export_date
),
per_day as (
    select
        export_date,
        rows_loaded,
        cast(rows_loaded as double)
        / greatest(1, datediff('day', lag(export_date) over (order by export_date), export_date)) as rows_per_day
    from drops
),
with_history as (
    select
        export_date,
        rows_loaded,
        rows_per_day,
        median(rows_per_day) over recent as trailing_median_per_day,
        count(rows_per_day) over recent as trailing_loads
    from per_day
    window recent as (order by export_date rows between {TRAILING_LOADS} preceding and 1 preceding)
)
select
    export_date,
    rows_loaded,
    rows_per_day,
    trailing_median_per_day,
    rows_per_day / trailing_median_per_day as share_of_trailing_median
from with_history
where trailing_loads >= {MIN_HISTORY} and trailing_median_per_day > 0
"""


def _volume(table: str) -> Batch:
    return Batch(
        "volume",
        volume_sql(table),
        ("export_date", "rows_loaded", "rows_per_day", "trailing_median_per_day"),
        (
            expect(
                "volume_vs_trailing_loads",
                gxe.ExpectColumnValuesToBeBetween,
                f"No drop loads {VOLUME_DROP:.0%} fewer rows per day since the previous export than the median of "
                f"the {TRAILING_LOADS} loads before it.",
                severity=WARN,
                column="share_of_trailing_median",
                min_value=round(1 - VOLUME_DROP, 6),
            ),
        ),
    )


def _freshness(source: str) -> Batch:
    sql = f"""
select
    '{source}' as source,
    max(export_date) filter (where source = '{source}') as newest_export,
    max(export_date) as newest_export_of_any_source,
    coalesce(datediff('day', max(export_date) filter (where source = '{source}'), max(export_date)), 999999)
        as days_behind
from raw.load_ledger
where status = 'loaded'
"""
    return Batch(
        "freshness",
        sql,
        ("source", "newest_export", "newest_export_of_any_source"),
        (
            expect(
                f"{source}_freshness",
                gxe.ExpectColumnValuesToBeBetween,
                f"The newest {source} export is at most {FRESHNESS_DAYS} day(s) older than the newest export of "
                "any source.",
                severity=WARN,
                column="days_behind",
                max_value=FRESHNESS_DAYS,
            ),
        ),
    )
