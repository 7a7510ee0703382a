"""Building blocks of the raw-table suites: columns and types, value sets, ranges, null rates, dates against the
export they came in, row volume against the trailing loads, and freshness of a source.

Raw tables hold what ingestion loaded after its row checks (`ingestion/mappings/canonical.yaml`); these suites
watch the tables as a whole, so a changed export, a broken loader or a thin drop is seen before dbt reads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import great_expectations.expectations as gxe

from expectations.core import WARN, Batch, TableSuite, expect, table_batch

VOLUME_DROP = 0.9  # a drop with this share fewer rows than the median of the trailing loads is flagged
TRAILING_LOADS = 8  # the loads the median is taken over
MIN_HISTORY = 4  # a table needs this many earlier loads before its volume is judged
FRESHNESS_DAYS = 1  # a source whose newest export is older than the newest export of any source by more is stale
DAY_SECONDS = 24 * 3600  # the longest a call or a meeting may last

_TYPE_NAMES = {
    "varchar": "VARCHAR",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamptz": "TIMESTAMP WITH TIME ZONE",
    "double": "DOUBLE",
}


def duckdb_type_name(sql_type: str) -> str:
    """The name DuckDB's information_schema gives a type written in DDL (`decimal(18, 2)` -> `DECIMAL(18,2)`)."""
    decimal = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", sql_type.strip().lower())
    if decimal:
        return f"DECIMAL({decimal.group(1)},{decimal.group(2)})"
    return _TYPE_NAMES.get(sql_type.strip().lower(), sql_type.strip().upper())


@dataclass(frozen=True)
class RawTable:
    """What a raw table should look like; the suite is built from it by `raw_suite`."""

    table: str
    id_columns: tuple[str, ...]
    columns: Mapping[str, str] = field(default_factory=dict)  # column -> DDL type, as ingestion creates it
    required: Mapping[str, float] = field(default_factory=dict)  # column -> least share of rows with a value
    value_sets: Mapping[str, Sequence[str]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    not_after_export: Sequence[str] = ()  # timestamps that cannot be later than the export their file came in
    volume: bool = True  # judge each drop's rows against the trailing loads (tables exported as daily changes)
    freshness_of: str | None = None  # the source whose freshness this table's checks report


def raw_suites(tables: Sequence[RawTable], schemas: Mapping[str, Mapping[str, str]]) -> tuple[TableSuite, ...]:
    """A suite per table; a table that states no columns takes them from `schemas` (the source mapping's)."""
    return tuple(
        raw_suite(spec if spec.columns else replace(spec, columns=dict(schemas.get(spec.table, {})))) for spec in tables
    )


def raw_suite(spec: RawTable) -> TableSuite:
    table = f"raw.{spec.table}"
    batches: list[Batch] = []
    if spec.columns:
        expected = sorted(f"{name} {duckdb_type_name(kind)}" for name, kind in spec.columns.items())
        batches.append(
            Batch(
                "columns",
                "select column_name || ' ' || data_type as column_and_type from information_schema.columns "
                f"where table_schema = 'raw' and table_name = '{spec.table}'",
                ("column_and_type",),
                (
                    expect(
                        "columns_and_types",
                        gxe.ExpectColumnDistinctValuesToContainSet,
                        "The table has every column the source mapping declares, with its type.",
                        column="column_and_type",
                        value_set=expected,
                    ),
                ),
            )
        )
    row_checks = []
    for column, share in spec.required.items():
        row_checks.append(
            expect(
                f"{column}_null_rate",
                gxe.ExpectColumnValuesToNotBeNull,
                f"{column} is filled in {share:.0%} of rows or more.",
                severity="error" if share == 1 else WARN,
                column=column,
                mostly=share,
            )
        )
    for column, values in spec.value_sets.items():
        row_checks.append(
            expect(
                f"{column}_in_value_set",
                gxe.ExpectColumnValuesToBeInSet,
                f"{column} is one of {', '.join(values)}.",
                column=column,
                value_set=list(values),
            )
        )
    for column, (low, high) in spec.ranges.items():
        bounds = {"min_value": low, "max_value": high}
        row_checks.append(
            expect(
                f"{column}_in_range",
                gxe.ExpectColumnValuesToBeBetween,
                f"{column} lies in [{low if low is not None else '-inf'}, {high if high is not None else 'inf'}].",
                column=column,
                **{k: v for k, v in bounds.items() if v is not None},
            )
        )
    if row_checks:
        batches.append(table_batch(table, spec.id_columns, row_checks))
    if spec.not_after_export:
        batches.append(_not_after_export(spec))
    if spec.volume:
        batches.append(_volume(spec.table))
    if spec.freshness_of:
        batches.append(_freshness(spec.freshness_of))
    return TableSuite(
        asset=("raw", spec.table),
        batches=tuple(batches),
        requires=("raw.load_ledger",),
        description=f"What raw.{spec.table} should look like after ingestion.",
    )


def _not_after_export(spec: RawTable) -> Batch:
    # Timestamps are UTC and an export date is the exporter's local day: a day of grace.
    derived = ", ".join(
        f'epoch(rows."{c}") - epoch(ledger.export_date + interval 1 day) as "{c}_seconds_after_export"'
        for c in spec.not_after_export
    )
    sql = (
        f"select rows.rowid as _row, {derived} from raw.{spec.table} as rows "
        "join raw.load_ledger as ledger on rows._load_id = ledger.load_id"
    )
    checks = tuple(
        expect(
            f"{c}_not_after_export",
            gxe.ExpectColumnValuesToBeBetween,
            f"{c} is not later than the export date of its file (a day of grace for time zones).",
            column=f"{c}_seconds_after_export",
            max_value=0,
        )
        for c in spec.not_after_export
    )
    # the failing rows' ids and file are looked up by rowid, as for a table batch
    return Batch("dates_against_export", sql, (*spec.id_columns, "_source_file"), checks, ids_from=f"raw.{spec.table}")


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
