"""Declarative column mappings: which landing files feed which canonical raw table, and how their columns map.

`ingestion/mappings/canonical.yaml` defines the raw tables (columns, types, checks). Each other YAML file there
is a vendor mapping: file globs per table, CSV dialect (header or not), and per canonical column where its value
comes from (a source column, a constant), with its date format, time zone and value renames. The README has a
walk-through for adding one. Mistakes in a mapping raise `MappingError` naming the file and the entry, at load time,
before any data is touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
TYPES = ("id", "string", "integer", "decimal", "boolean", "date", "timestamp", "phone")
CHECKS = ("required", "min", "allowed", "references", "not_after_export", "region", "region_column", "scale")
SOURCE_OPTIONS = ("from", "value", "format", "timezone", "values", "region")


class MappingError(ValueError):
    """A mapping file that cannot be used, with the file and entry named."""


@dataclass(frozen=True)
class CanonicalColumn:
    name: str
    type: str
    required: bool = False
    min: float | None = None
    allowed: tuple[str, ...] | None = None
    references: dict[str, str] | None = None  # id prefix ("" for any) -> table
    not_after_export: bool = False
    region: str | None = None  # phone: default region
    region_column: str | None = None  # phone: canonical column holding the region
    scale: int = 2  # decimal places kept for decimals


@dataclass(frozen=True)
class CanonicalTable:
    name: str
    source: str
    columns: tuple[CanonicalColumn, ...]
    key: str | None = None
    load_after: tuple[str, ...] = ()  # tables to load first for a reason other than a reference (see canonical.yaml)

    def column(self, name: str) -> CanonicalColumn:
        return next(column for column in self.columns if column.name == name)


@dataclass(frozen=True)
class ColumnSource:
    """Where one canonical column's value comes from in a vendor's file."""

    canonical: str
    source: str | None = None  # a column of the file
    value: str | None = None  # or a constant
    format: str | None = None  # strptime format for dates and timestamps
    timezone: str | None = None  # zone of timestamps written without one
    values: dict[str, str] | None = None  # renames of values (vendor -> canonical)
    region: str | None = None  # phone: default region for this vendor


@dataclass(frozen=True)
class FileMapping:
    """How one vendor's file family loads into one canonical table."""

    vendor: str
    table: CanonicalTable
    files: tuple[str, ...]  # globs relative to the landing folder
    columns: tuple[ColumnSource, ...]
    header: bool = True
    header_columns: tuple[str, ...] = ()  # the file's columns, in order, when it has no header row
    delimiter: str = ","
    quote: str = '"'
    definition: Path = field(default=Path("."))

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The file columns this mapping reads."""
        return tuple(column.source for column in self.columns if column.source)

    def required_source_columns(self) -> tuple[str, ...]:
        """File columns whose absence makes the file unusable: they feed a required canonical column."""
        return tuple(
            column.source for column in self.columns if column.source and self.table.column(column.canonical).required
        )


@dataclass(frozen=True)
class Mappings:
    tables: dict[str, CanonicalTable]
    files: tuple[FileMapping, ...]

    def for_table(self, table: str) -> list[FileMapping]:
        return [mapping for mapping in self.files if mapping.table.name == table]


def load_mappings(directory: Path | None = None) -> Mappings:
    """The canonical tables and every vendor mapping in `directory` (default: `SOURCE_MAPPINGS_DIR` or the shipped
    `ingestion/mappings`)."""
    directory = Path(directory or os.environ.get("SOURCE_MAPPINGS_DIR") or MAPPINGS_DIR)
    canonical_path = directory / "canonical.yaml"
    if not canonical_path.exists():
        canonical_path = MAPPINGS_DIR / "canonical.yaml"
    tables = _canonical_tables(canonical_path)
    files = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "canonical.yaml":
            continue
        files.extend(_vendor_mappings(path, tables))
    return Mappings(tables, tuple(files))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise MappingError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("tables"), dict):
        raise MappingError(f"{path}: expected a mapping with a `tables:` section")
    return document


def _canonical_tables(path: Path) -> dict[str, CanonicalTable]:
    tables = {}
    for name, spec in _read_yaml(path)["tables"].items():
        where = f"{path.name}: table {name}"
        columns = []
        for column_name, column_spec in (spec.get("columns") or {}).items():
            unknown = set(column_spec) - set(CHECKS) - {"type"}
            if unknown:
                raise MappingError(f"{where}, column {column_name}: unknown option(s) {sorted(unknown)}")
            if column_spec.get("type") not in TYPES:
                raise MappingError(f"{where}, column {column_name}: type must be one of {TYPES}")
            references = column_spec.get("references")
            if isinstance(references, str):
                references = {"": references}
            allowed = column_spec.get("allowed")
            columns.append(
                CanonicalColumn(
                    name=column_name,
                    type=column_spec["type"],
                    required=bool(column_spec.get("required", False)),
                    min=column_spec.get("min"),
                    allowed=tuple(str(value) for value in allowed) if allowed else None,
                    references=references,
                    not_after_export=bool(column_spec.get("not_after_export", False)),
                    region=column_spec.get("region"),
                    region_column=column_spec.get("region_column"),
                    scale=int(column_spec.get("scale", 2)),
                )
            )
        if spec.get("source") not in ("crm", "phone", "reference", "calendar"):
            raise MappingError(f"{where}: source must be crm, phone, reference or calendar")
        tables[name] = CanonicalTable(
            name, spec["source"], tuple(columns), spec.get("key"), tuple(spec.get("load_after") or ())
        )
    for table in tables.values():
        for target in table.load_after:
            if target not in tables:
                raise MappingError(f"{path.name}: {table.name} loads after unknown table {target}")
        for column in table.columns:
            for target in (column.references or {}).values():
                if target not in tables:
                    raise MappingError(f"{path.name}: {table.name}.{column.name} references unknown table {target}")
    return tables


def _vendor_mappings(path: Path, tables: dict[str, CanonicalTable]) -> list[FileMapping]:
    document = _read_yaml(path)
    vendor = str(document.get("vendor") or path.stem)
    out = []
    for name, spec in document["tables"].items():
        where = f"{path.name}: table {name}"
        if name not in tables:
            raise MappingError(f"{where}: no such canonical table (see canonical.yaml: {sorted(tables)})")
        table = tables[name]
        files = spec.get("files")
        if isinstance(files, str):
            files = [files]
        if not files:
            raise MappingError(f"{where}: `files:` (one or more globs under the landing folder) is required")
        csv_options = spec.get("csv") or {}
        header = bool(csv_options.get("header", True))
        header_columns = tuple(csv_options.get("columns") or ())
        if not header and not header_columns:
            raise MappingError(f"{where}: a file without a header row needs `csv: columns:` listing its columns")
        columns = _column_sources(where, table, spec.get("columns"))
        if not header:
            missing = [column.source for column in columns if column.source and column.source not in header_columns]
            if missing:
                raise MappingError(f"{where}: columns {missing} are not among `csv: columns:`")
        out.append(
            FileMapping(
                vendor=vendor,
                table=table,
                files=tuple(files),
                columns=columns,
                header=header,
                header_columns=header_columns,
                delimiter=str(csv_options.get("delimiter", ",")),
                quote=str(csv_options.get("quote", '"')),
                definition=path,
            )
        )
    return out


def _column_sources(where: str, table: CanonicalTable, spec: dict[str, Any] | None) -> tuple[ColumnSource, ...]:
    """Every canonical column's source; without a `columns:` section each comes from the file column of its name."""
    if spec is None:
        return tuple(ColumnSource(column.name, source=column.name) for column in table.columns)
    known = {column.name for column in table.columns}
    unknown = set(spec) - known
    if unknown:
        raise MappingError(f"{where}: {sorted(unknown)} are not columns of canonical table {table.name}")
    sources = []
    for column in table.columns:
        entry = spec.get(column.name)
        if entry is None:
            if column.required:
                raise MappingError(f"{where}: required column {column.name} has no source")
            sources.append(ColumnSource(column.name))
            continue
        if isinstance(entry, str):
            entry = {"from": entry}
        bad = set(entry) - set(SOURCE_OPTIONS)
        if bad:
            raise MappingError(f"{where}, column {column.name}: unknown option(s) {sorted(bad)}")
        if ("from" in entry) == ("value" in entry):
            raise MappingError(f"{where}, column {column.name}: give exactly one of `from:` or `value:`")
        sources.append(
            ColumnSource(
                canonical=column.name,
                source=entry.get("from"),
                value=None if entry.get("value") is None else str(entry["value"]),
                format=entry.get("format"),
                timezone=entry.get("timezone"),
                values={str(k): str(v) for k, v in entry["values"].items()} if entry.get("values") else None,
                region=entry.get("region"),
            )
        )
    return tuple(sources)
