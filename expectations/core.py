"""What a suite is and how it runs: Great Expectations on data frames that the warehouse computes.

A `TableSuite` belongs to one table (one Dagster asset). It holds one or more `Batch`es: SQL that DuckDB runs to
select the columns a rule needs, or to derive them (a join, a per-deal sequence, a reconciliation), and the GX
expectations on the result. GX 1.x has no DuckDB dialect (see docs/benchmarks.md "Data quality" for the
measurements that chose data frames), so the warehouse does the relational work and GX evaluates the rows.

Each expectation carries its check name in `meta["check"]` and its severity (GX's CRITICAL or WARNING); the
orchestration layer turns every one into an asset check. Nothing here imports Dagster.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage statistics leave the machine

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.expectations.metadata_types import FailureSeverity  # noqa: E402

ERROR = "error"
WARN = "warn"
_SEVERITY = {ERROR: FailureSeverity.CRITICAL, WARN: FailureSeverity.WARNING}
EXAMPLE_ROWS = 10  # failing rows named in each result


def expect(check: str, expectation: type[gxe.Expectation], description: str, severity: str = ERROR, **kwargs):
    """A GX expectation that is also a named asset check of `severity` ("error" blocks, "warn" annotates)."""
    return expectation(meta={"check": check}, description=description, severity=_SEVERITY[severity], **kwargs)


def severity_of(expectation: gxe.Expectation) -> str:
    return ERROR if expectation.severity == FailureSeverity.CRITICAL else WARN


@dataclass(frozen=True)
class Batch:
    """Rows to validate: `sql` run in the warehouse, `id_columns` naming a failing row, and the expectations.

    With `ids_from` (a table), the SQL selects the table's `rowid as _row` instead of the id columns, and the ids of
    the failing rows are looked up afterwards: string ids are most of the cost of a large frame (measured in
    docs/benchmarks.md, "Data quality").
    """

    name: str
    sql: str
    id_columns: tuple[str, ...]
    expectations: tuple[gxe.Expectation, ...]
    ids_from: str | None = None


def quoted(column: str) -> str:
    return f'"{column}"'


def table_batch(
    table: str,
    id_columns: Sequence[str],
    expectations: Sequence[gxe.Expectation],
    name: str = "rows",
    where: str | None = None,
    derived: Mapping[str, str] | None = None,
) -> Batch:
    """A batch of `table` (optionally filtered) holding the columns its expectations read, each selected as is or
    computed by its SQL expression in `derived`; failing rows are named by `id_columns`."""
    derived = derived or {}
    columns = dict.fromkeys(
        e.configuration.kwargs[key] for e in expectations for key in ("column", "column_A", "column_B")
        if e.configuration.kwargs.get(key)
    )  # fmt: skip
    selected = ", ".join(
        f"{derived[column]} as {quoted(column)}" if column in derived else quoted(column) for column in columns
    )
    sql = f"select rowid as _row, {selected} from {table}" + (f" where {where}" if where else "")
    return Batch(name, sql, tuple(id_columns), tuple(expectations), ids_from=table)


@dataclass(frozen=True)
class TableSuite:
    """The expectations on one table, in one or more batches; `asset` is the table's (schema, name)."""

    asset: tuple[str, str]
    batches: tuple[Batch, ...]
    description: str = ""
    requires: tuple[str, ...] = ()  # tables ("schema.name") the SQL reads besides the asset itself

    @property
    def name(self) -> str:
        return ".".join(self.asset)

    def checks(self) -> list[CheckSpec]:
        specs = [
            CheckSpec(
                name=e.meta["check"],
                severity=severity_of(e),
                description=e.description or "",
            )
            for batch in self.batches
            for e in batch.expectations
        ]
        names = [spec.name for spec in specs]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"suite {self.name}: check names used twice: {duplicated}")
        return specs


@dataclass(frozen=True)
class CheckSpec:
    name: str
    severity: str
    description: str


@dataclass
class CheckOutcome:
    """The result of one expectation, with what a person needs to act on it."""

    check: str
    severity: str
    passed: bool
    expectation: str
    description: str
    observed_value: Any = None
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def metadata(self) -> dict[str, Any]:
        """JSON-ready facts about the outcome (what the check expected, what it saw, which rows failed)."""
        values = {
            "expectation": self.expectation,
            "observed_value": self.observed_value,
            "rows_checked": self.element_count,
            "rows_failing": self.unexpected_count,
            "percent_failing": None if self.unexpected_percent is None else round(self.unexpected_percent, 4),
            "example_failing_rows": self.examples,
            "error": self.error,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass
class SuiteResult:
    suite: str
    outcomes: list[CheckOutcome]
    rows: dict[str, int]  # batch name -> rows validated
    docs_url: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # "<batch>.query" and "<batch>.validate" -> wall time

    @property
    def failed(self) -> list[CheckOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.passed]


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a GX result value (numpy scalars, decimals, dates, NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is pd.NaT or value is pd.NA or (isinstance(value, np.datetime64) and np.isnat(value)):
        return None  # an empty table's min or max, an all-NULL column
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value).to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime) and value.tzinfo is None and value.time() == datetime.min.time():
        return value.date().isoformat()  # a DATE column, which pandas holds as a naive midnight timestamp
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def describe(expectation: gxe.Expectation) -> str:
    """`expect_column_values_to_be_between(column=amount, min_value=0)`: the rule as GX names it."""
    config = expectation.configuration
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format") and v is not None}
    arguments = ", ".join(f"{k}={_plain(v)}" for k, v in kwargs.items())
    return f"{config.type}({arguments})"


def _example_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = result.get("partial_unexpected_index_list") or []
    if rows:
        return [_plain(row) for row in rows[:EXAMPLE_ROWS]]
    values = result.get("partial_unexpected_list") or []
    return [{"value": _plain(value)} for value in values[:EXAMPLE_ROWS]]


def _numpy_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable integer columns (pandas' `Int64`, what DuckDB gives an integer column holding NULLs) as float64 with
    NaN: GX validates them about four times faster (11.6 s against 2.9 s for one range rule on 16 million rows)."""
    for column, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_integer_dtype(dtype):
            frame[column] = frame[column].astype("float64")
    return frame


def _name_rows(con, batch: Batch, examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace the `_row` of each failing example by the row's id columns (its failing value is kept)."""
    rows = [example["_row"] for example in examples if example.get("_row") is not None]
    if not rows:
        return examples
    ids = ", ".join(batch.id_columns)
    found = con.execute(
        f"select _row, {ids} from (select rowid as _row, {ids} from {batch.ids_from}) where list_contains(?, _row)",
        [rows],
    ).fetchall()
    by_row = {row[0]: dict(zip(batch.id_columns, (_plain(v) for v in row[1:]), strict=True)) for row in found}
    named = []
    for example in examples:
        values = {key: value for key, value in example.items() if key != "_row"}
        named.append({**by_row.get(example.get("_row"), {}), **values})
    return named


class Validator:
    """Runs suites against a DuckDB connection, keeping GX's results and HTML Data Docs under `docs_dir`.

    The GX project (`<docs_dir>/gx`) is a file context: suites and results are stored as JSON beside the Data Docs
    (`<docs_dir>/gx/uncommitted/data_docs/local_site/index.html`), so the docs list every validation run.
    """

    def __init__(self, docs_dir: Path | None = None) -> None:
        if docs_dir is None:
            self.context = gx.get_context(mode="ephemeral")
        else:
            docs_dir.mkdir(parents=True, exist_ok=True)
            self.context = gx.get_context(mode="file", project_root_dir=str(docs_dir))
        self.context.variables.progress_bars = {"globally": False}
        self.datasource = self.context.data_sources.add_or_update_pandas("warehouse")
        self.docs_dir = docs_dir

    def docs_index(self) -> Path | None:
        if self.docs_dir is None:
            return None
        return self.docs_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"

    def run(self, con, suite: TableSuite, build_docs: bool = True) -> SuiteResult:
        outcomes: list[CheckOutcome] = []
        rows: dict[str, int] = {}
        seconds: dict[str, float] = {}
        for batch in suite.batches:
            name = f"{suite.name}.{batch.name}"
            try:
                started = time.perf_counter()
                frame = _numpy_numbers(con.execute(batch.sql).df())
                seconds[f"{batch.name}.query"] = time.perf_counter() - started
            except Exception as error:  # a missing table or column fails every check of the batch, by name
                outcomes += [_unanswered(e, f"{type(error).__name__}: {error}") for e in batch.expectations]
                continue
            rows[batch.name] = len(frame)
            started = time.perf_counter()
            outcomes += self._validate(con, name, batch, frame, build_docs)
            seconds[f"{batch.name}.validate"] = time.perf_counter() - started
            del frame
        docs = self.docs_index()
        return SuiteResult(suite.name, outcomes, rows, docs.as_uri() if docs and docs.exists() else None, seconds)

    def _validate(self, con, name: str, batch: Batch, frame, build_docs: bool) -> list[CheckOutcome]:
        asset = self._asset(name)
        definition = self._get_or_add(asset.batch_definitions, asset.add_batch_definition_whole_dataframe, "rows")
        suite = self.context.suites.add_or_update(
            gx.ExpectationSuite(name=name, expectations=[e.copy(deep=True) for e in batch.expectations])
        )
        validation = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=definition, suite=suite)
        )
        actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if build_docs and self.docs_dir else []
        checkpoint = self.context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=name,
                validation_definitions=[validation],
                actions=actions,
                result_format={
                    "result_format": "SUMMARY",
                    "unexpected_index_column_names": ["_row"] if batch.ids_from else list(batch.id_columns),
                    "partial_unexpected_count": EXAMPLE_ROWS,
                },
            )
        )
        try:
            result = checkpoint.run(batch_parameters={"dataframe": frame})
        finally:
            self._forget_batches()
        by_check = {}
        for validation_result in result.run_results.values():
            for expectation_result in validation_result.results:
                by_check[expectation_result.expectation_config.meta["check"]] = expectation_result
        outcomes = [self._outcome(e, by_check.get(e.meta["check"])) for e in batch.expectations]
        if batch.ids_from:
            for outcome in outcomes:
                outcome.examples = _name_rows(con, batch, outcome.examples)
        return outcomes

    def _forget_batches(self) -> None:
        """Drop GX's cache of validated batches: its execution engine keeps every data frame it was given (a
        bench-scale run grew by about 2 GB per large table), and a validator lives as long as its process."""
        manager = self.datasource.get_execution_engine().batch_manager
        manager.reset_batch_cache()
        manager.batch_data_cache.clear()

    def _asset(self, name: str):
        return self._get_or_add(self.datasource.assets, self.datasource.add_dataframe_asset, name)

    @staticmethod
    def _get_or_add(existing: Iterable, add, name: str):
        for item in existing:
            if item.name == name:
                return item
        return add(name)

    @staticmethod
    def _outcome(expectation: gxe.Expectation, result) -> CheckOutcome:
        if result is None:
            return _unanswered(expectation, "Great Expectations returned no result for this expectation")
        details = result.result or {}
        passed = bool(result.success)
        return CheckOutcome(
            check=expectation.meta["check"],
            severity=severity_of(expectation),
            passed=passed,
            expectation=describe(expectation),
            description=expectation.description or "",
            observed_value=_plain(details.get("observed_value")),
            element_count=details.get("element_count"),
            unexpected_count=details.get("unexpected_count"),
            unexpected_percent=_plain(details.get("unexpected_percent")),
            examples=[] if passed else _example_rows(details),
            error=(result.exception_info or {}).get("exception_message") or None,
        )


def _unanswered(expectation: gxe.Expectation, reason: str) -> CheckOutcome:
    """A failed outcome for an expectation that could not be evaluated, with the reason."""
    return CheckOutcome(
        check=expectation.meta["check"],
        severity=severity_of(expectation),
        passed=False,
        expectation=describe(expectation),
        description=expectation.description or "",
        error=reason,
    )
