"""Declarative column mappings: which landing files feed which canonical raw table, and how their columns map.

`ingestion/mappings/canonical.yaml` defines the raw tables (columns, types, checks). Each other YAML file there
is a vendor mapping: file globs per table, CSV dialect (header or not, and for files without one the layouts of
their columns), and per canonical column where its value comes from (a source column, a constant, a sum of
columns), with its date format, time zone (fixed or per row), unit scale, epoch unit, phone region and value
renames. A user's own folder (`SOURCE_MAPPINGS_DIR`) is read beside the shipped one and takes precedence (see
`load_mappings`). docs/source_mappings.md has a walk-through for adding one. Mistakes in a mapping raise
`MappingError` naming the file and the entry, at load time, before any data is touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
TYPES = ("id", "string", "integer", "decimal", "boolean", "date", "timestamp", "phone")
CHECKS = ("required", "min", "allowed", "not_after_export", "region", "region_column", "scale", "internal_when")
SOURCE_OPTIONS = (
    "from", "value", "sum", "format", "timezone", "timezone_column", "values", "region", "region_from", "scale",
    "epoch",
)  # fmt: skip
TABLE_OPTIONS = ("files", "csv", "columns", "internal_extensions")
CSV_OPTIONS = ("header", "columns", "layouts", "delimiter", "quote")
EPOCH_UNITS = ("seconds", "milliseconds")
# `timezone: unset` in a shipped mapping: its source writes local times in a zone only the user knows (a PBX's
# clock). Its files are rejected, saying so, until a mapping that names the zone replaces it.
UNSET_ZONE = "unset"
# Canonical table and column names become SQL identifiers (`raw.<table>`, its columns) and Dagster asset keys:
# letters, digits and underscores, not starting with a digit, at most 63 characters (PostgreSQL's limit, for the
# published copy). They are quoted in SQL too; a name that would need quoting is refused at load as a mistake.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class MappingError(ValueError):
    """A mapping file that cannot be used, with the file and entry named."""


@dataclass(frozen=True)
class CanonicalColumn:
    name: str
    type: str
    required: bool = False
    min: float | None = None
    allowed: tuple[str, ...] | None = None
    not_after_export: bool = False
    region: str | None = None  # phone: default region
    region_column: str | None = None  # phone: canonical column holding the region
    scale: int = 2  # decimal places kept for decimals
    # boolean: true when every one of these phone columns holds an internal extension of the mapping
    internal_when: tuple[str, ...] = ()


@dataclass(frozen=True)
class CanonicalTable:
    name: str
    source: str
    columns: tuple[CanonicalColumn, ...]
    key: str | None = None
    load_after: tuple[str, ...] = ()  # tables to load first (see canonical.yaml)

    def column(self, name: str) -> CanonicalColumn:
        return next(column for column in self.columns if column.name == name)


@dataclass(frozen=True)
class ColumnSource:
    """Where one canonical column's value comes from in a vendor's file."""

    canonical: str
    source: str | None = None  # a column of the file
    value: str | None = None  # or a constant
    sum: tuple[str, ...] = ()  # or the sum of several numeric columns
    format: str | None = None  # strptime format for dates and timestamps
    timezone: str | None = None  # zone of timestamps written without one (the fallback of `timezone_column`)
    timezone_column: str | None = None  # a file column holding each row's zone
    values: dict[str, str] | None = None  # renames of values (vendor -> canonical)
    region: str | None = None  # phone: default region for this vendor
    region_from: str | None = None  # phone: a file column holding each row's region (ISO country code)
    scale: Decimal | None = None  # numbers: multiply by this (0.001: milliseconds to seconds)
    epoch: str | None = None  # timestamps: the value counts seconds or milliseconds since 1970-01-01 UTC

    @property
    def inputs(self) -> tuple[str, ...]:
        """The file columns without which the column has no value."""
        columns = (self.source,) if self.source else self.sum
        if self.timezone_column and self.timezone is None:
            columns += (self.timezone_column,)
        return columns

    @property
    def reads(self) -> tuple[str, ...]:
        """Every file column the column reads, hints included (a per-row region or zone with a fallback)."""
        optional = tuple(name for name in (self.timezone_column, self.region_from) if name)
        return tuple(dict.fromkeys(self.inputs + optional))


@dataclass(frozen=True)
class FileMapping:
    """How one vendor's file family loads into one canonical table."""

    vendor: str
    table: CanonicalTable
    files: tuple[str, ...]  # globs relative to the landing folder
    columns: tuple[ColumnSource, ...]
    header: bool = True
    # files without a header row: layout name -> the file's columns in order; a file's layout is the one with as
    # many columns as its first record has fields
    layouts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    delimiter: str = ","
    quote: str = '"'
    internal_extensions: str | None = None  # regex on a phone number as written: an internal extension
    definition: Path = field(default=Path("."))
    definition_hash: str = ""  # SHA-256 of the mapping file's text
    from_user: bool = False  # read from the user's own folder, not the shipped one

    @property
    def key(self) -> str:
        return f"{self.definition}:{self.table.name}"

    @property
    def label(self) -> str:
        """The mapping as a person names it: vendor, table and file."""
        return f"{self.vendor} ({self.table.name}, {self.definition})"

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The file columns this mapping reads."""
        return tuple(dict.fromkeys(name for column in self.columns for name in column.reads))

    def required_source_columns(self) -> tuple[str, ...]:
        """File columns whose absence makes the file unusable: they feed a required canonical column."""
        return tuple(
            dict.fromkeys(
                name
                for column in self.columns
                if self.table.column(column.canonical).required
                for name in column.inputs
            )
        )

    def layout_for(self, field_count: int) -> tuple[str, ...] | None:
        """The header-less layout whose column count is `field_count`."""
        return next((columns for columns in self.layouts.values() if len(columns) == field_count), None)

    @property
    def unset_timezones(self) -> tuple[str, ...]:
        """Canonical columns whose zone the user still has to name (`timezone: unset`)."""
        return tuple(column.canonical for column in self.columns if column.timezone == UNSET_ZONE)

    @property
    def timezone(self) -> str | None:
        """The zone(s) this mapping reads local times in, for the ledger and the log; None when every time read
        carries its own zone (or is an epoch)."""
        zones = []
        for column in self.columns:
            if self.table.column(column.canonical).type != "timestamp" or column.epoch or column.value is not None:
                continue
            if column.format and ("%z" in column.format or "%Z" in column.format):
                continue
            if column.timezone_column:
                fallback = f", else {column.timezone}" if column.timezone else ""
                zones.append(f"per row from column {column.timezone_column}{fallback}")
            elif column.timezone:
                zones.append(column.timezone)
        return "; ".join(dict.fromkeys(zones)) or None


@dataclass(frozen=True)
class Mappings:
    tables: dict[str, CanonicalTable]
    files: tuple[FileMapping, ...]

    def for_table(self, table: str) -> list[FileMapping]:
        return [mapping for mapping in self.files if mapping.table.name == table]


def load_mappings(directory: Path | None = None) -> Mappings:
    """The canonical tables and the vendor mappings: the shipped ones, and those of the user's folder.

    The user's folder is `directory`, else the `SOURCE_MAPPINGS_DIR` environment variable; without either (or
    when it is the shipped folder) only the shipped mappings are read. A user's folder must exist and hold YAML:
    an empty or missing one is a mistake, not a reason to fall back silently. It takes precedence in three ways:
    its `canonical.yaml`, when it has one, replaces the shipped one; a mapping file of its with the `vendor:` of a
    shipped one replaces that shipped file (`tables: {}` switches a shipped vendor off); and when a user mapping and
    a shipped mapping claim the same landing file, the user's reads it (see `ingestion.ingest.claim_files`).
    """
    user_dir = _user_directory(directory)
    canonical_path = MAPPINGS_DIR / "canonical.yaml"
    if user_dir is not None and (user_dir / "canonical.yaml").exists():
        canonical_path = user_dir / "canonical.yaml"
    tables = _canonical_tables(canonical_path)
    shipped = [_vendor_file(path, tables, from_user=False) for path in _vendor_paths(MAPPINGS_DIR)]
    if user_dir is None:
        return Mappings(tables, tuple(mapping for _, _, mappings in shipped for mapping in mappings))
    user = [_vendor_file(path, tables, from_user=True) for path in _vendor_paths(user_dir)]
    vendors: dict[str, Path] = {}
    for vendor, path, _ in user:
        if vendor in vendors:
            raise MappingError(f"{vendors[vendor]} and {path} both declare vendor {vendor}: give each its own name")
        vendors[vendor] = path
    files = [mapping for vendor, _, mappings in shipped if vendor not in vendors for mapping in mappings]
    files += [mapping for _, _, mappings in user for mapping in mappings]
    return Mappings(tables, tuple(files))


def _user_directory(directory: Path | None) -> Path | None:
    """The user's mappings folder, checked; None for the shipped mappings only."""
    if directory is None:
        setting = os.environ.get("SOURCE_MAPPINGS_DIR", "").strip()
        if not setting:
            return None
        directory, what = Path(setting), f"SOURCE_MAPPINGS_DIR={setting}"
    else:
        what = str(directory)
    directory = Path(directory)
    if directory.resolve() == MAPPINGS_DIR.resolve():
        return None
    if not directory.is_dir():
        raise MappingError(f"{what}: no such folder, so none of its mappings can be read")
    if not any(directory.glob("*.yaml")):
        raise MappingError(
            f"{what}: the folder holds no mapping (*.yaml); put your vendor mappings there, or unset it to use "
            "only the shipped ones"
        )
    return directory


def _vendor_paths(directory: Path) -> list[Path]:
    return [path for path in sorted(directory.glob("*.yaml")) if path.name != "canonical.yaml"]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise MappingError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("tables"), dict):
        raise MappingError(f"{path}: expected a mapping with a `tables:` section")
    return document


def identifier(where: str, key: str, value: object) -> str:
    """`value` when it is a valid canonical name (`IDENTIFIER`); else `MappingError` naming the file and entry
    (`where`), the key and the value."""
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise MappingError(
            f"{where}: {key} {value!r} is not a valid name: use letters, digits and underscores, starting with a "
            "letter or an underscore, at most 63 characters"
        )
    return value


def _file_column(where: str, key: str, value: object) -> str:
    """A column of a vendor's file, as its header writes it (spaces and all: it is always quoted in SQL)."""
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip() or "\x00" in str(value):
        raise MappingError(f"{where}: {key} {value!r} is not a column name of the file")
    return str(value)


def landing_glob(where: str, pattern: object) -> str:
    """A `files:` glob, checked to stay inside the landing folder: relative, without `..`, `~` or a drive."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise MappingError(f"{where}: files {pattern!r} is not a glob under the landing folder")
    posix, windows = PurePosixPath(pattern), PureWindowsPath(pattern)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or pattern.startswith("~"):
        raise MappingError(
            f"{where}: files {pattern!r} is an absolute path; globs are relative to the landing folder, which is "
            "the only place files are read from"
        )
    if ".." in posix.parts or ".." in windows.parts:
        raise MappingError(
            f"{where}: files {pattern!r} climbs out of the landing folder with '..'; globs are relative to the "
            "landing folder, which is the only place files are read from"
        )
    return pattern


def _canonical_tables(path: Path) -> dict[str, CanonicalTable]:
    tables = {}
    for name, spec in _read_yaml(path)["tables"].items():
        identifier(path.name, "table name", name)
        where = f"{path.name}: table {name}"
        if not isinstance(spec, dict):
            raise MappingError(f"{where}: expected `source:`, `columns:` and the other options of a table")
        columns = []
        for column_name, column_spec in (spec.get("columns") or {}).items():
            identifier(where, "column name", column_name)
            if not isinstance(column_spec, dict):
                raise MappingError(f"{where}, column {column_name}: expected `type:` and its checks")
            unknown = set(column_spec) - set(CHECKS) - {"type"}
            if unknown:
                raise MappingError(f"{where}, column {column_name}: unknown option(s) {sorted(unknown)}")
            if column_spec.get("type") not in TYPES:
                raise MappingError(f"{where}, column {column_name}: type must be one of {TYPES}")
            allowed = column_spec.get("allowed")
            minimum = column_spec.get("min")
            if minimum is not None and (isinstance(minimum, bool) or not isinstance(minimum, int | float)):
                raise MappingError(f"{where}, column {column_name}: min {minimum!r} is not a number")
            scale = column_spec.get("scale", 2)
            if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= 18:
                raise MappingError(f"{where}, column {column_name}: scale {scale!r} is not a whole number of 0 to 18")
            columns.append(
                CanonicalColumn(
                    name=column_name,
                    type=column_spec["type"],
                    required=bool(column_spec.get("required", False)),
                    min=column_spec.get("min"),
                    allowed=tuple(str(value) for value in allowed) if allowed else None,
                    not_after_export=bool(column_spec.get("not_after_export", False)),
                    region=column_spec.get("region"),
                    region_column=column_spec.get("region_column"),
                    scale=scale,
                    internal_when=tuple(column_spec.get("internal_when") or ()),
                )
            )
        phones = {column.name for column in columns if column.type == "phone"}
        for column in columns:
            if column.internal_when and (column.type != "boolean" or not set(column.internal_when) <= phones):
                raise MappingError(f"{where}, column {column.name}: `internal_when` makes a boolean from phone columns")
        names = {column.name for column in columns}
        for column in columns:
            if column.region_column is not None and column.region_column not in names:
                raise MappingError(
                    f"{where}, column {column.name}: region_column {column.region_column!r} is not a column of {name}"
                )
        if spec.get("source") not in ("crm", "phone", "reference", "calendar"):
            raise MappingError(f"{where}: source must be crm, phone, reference or calendar")
        if spec.get("key") is not None and identifier(where, "key", spec["key"]) not in names:
            raise MappingError(f"{where}: key {spec['key']!r} is not a column of {name}")
        for target in spec.get("load_after") or ():
            identifier(where, "load_after", target)
        tables[name] = CanonicalTable(
            name, spec["source"], tuple(columns), spec.get("key"), tuple(spec.get("load_after") or ())
        )
    for table in tables.values():
        for target in table.load_after:
            if target not in tables:
                raise MappingError(f"{path.name}: {table.name} loads after unknown table {target}")
    return tables


def _vendor_file(
    path: Path, tables: dict[str, CanonicalTable], *, from_user: bool
) -> tuple[str, Path, list[FileMapping]]:
    """A vendor mapping file: its vendor name, its path and one mapping per table it feeds."""
    document = _read_yaml(path)
    vendor = str(document.get("vendor") or path.stem)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    out = []
    for name, spec in document["tables"].items():
        identifier(path.name, "table name", name)
        where = f"{path.name}: table {name}"
        if name not in tables:
            raise MappingError(f"{where}: no such canonical table (see canonical.yaml: {sorted(tables)})")
        if not isinstance(spec, dict):
            raise MappingError(f"{where}: expected `files:` and the other options of a table")
        unknown = set(spec) - set(TABLE_OPTIONS)
        if unknown:
            raise MappingError(f"{where}: unknown option(s) {sorted(unknown)}")
        table = tables[name]
        files = spec.get("files")
        if isinstance(files, str):
            files = [files]
        if not files:
            raise MappingError(f"{where}: `files:` (one or more globs under the landing folder) is required")
        files = [landing_glob(where, pattern) for pattern in files]
        csv_options = spec.get("csv") or {}
        bad = set(csv_options) - set(CSV_OPTIONS)
        if bad:
            raise MappingError(f"{where}, csv: unknown option(s) {sorted(bad)}")
        header = bool(csv_options.get("header", True))
        layouts = _layouts(where, header, csv_options)
        columns = _column_sources(where, table, spec.get("columns"))
        if not header:
            every = {name for columns_of_layout in layouts.values() for name in columns_of_layout}
            missing = [name for column in columns for name in column.reads if name not in every]
            if missing:
                listed = "`csv: columns:`" if "columns" in csv_options else "any of `csv: layouts:`"
                raise MappingError(f"{where}: columns {missing} are not among {listed}")
        internal = spec.get("internal_extensions")
        if internal is not None:
            try:
                re.compile(str(internal))
            except re.error as error:
                raise MappingError(
                    f"{where}: internal_extensions {internal!r} is not a regular expression: {error}"
                ) from None
            if not any(column.type == "phone" for column in table.columns):
                raise MappingError(f"{where}: internal_extensions applies to phone columns; {name} has none")
        out.append(
            FileMapping(
                vendor=vendor,
                table=table,
                files=tuple(files),
                columns=columns,
                header=header,
                layouts=layouts,
                delimiter=str(csv_options.get("delimiter", ",")),
                quote=str(csv_options.get("quote", '"')),
                internal_extensions=None if internal is None else str(internal),
                definition=path,
                definition_hash=digest,
                from_user=from_user,
            )
        )
    return vendor, path, out


def _layouts(where: str, header: bool, csv_options: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """The header-less layouts: `csv: columns:` is one layout, `csv: layouts:` names several."""
    if header:
        if "layouts" in csv_options:
            raise MappingError(f"{where}: `csv: layouts:` is for files without a header row (`header: false`)")
        return {}
    if ("columns" in csv_options) == ("layouts" in csv_options):
        raise MappingError(
            f"{where}: a file without a header row needs `csv: columns:` listing its columns, or `csv: layouts:` "
            "naming several lists"
        )
    if "columns" in csv_options:
        layouts = {"columns": csv_options["columns"]}
    elif isinstance(csv_options["layouts"], dict) and csv_options["layouts"]:
        layouts = csv_options["layouts"]
    else:
        raise MappingError(f"{where}: `csv: layouts:` maps a name to each list of columns")
    out: dict[str, tuple[str, ...]] = {}
    counts: dict[int, str] = {}
    for name, columns in layouts.items():
        if not isinstance(columns, list) or not columns:
            raise MappingError(f"{where}, csv layout {name}: expected a list of column names")
        columns = tuple(str(column) for column in columns)
        if len(set(columns)) != len(columns):
            raise MappingError(f"{where}, csv layout {name}: a column is listed twice")
        if len(columns) in counts:
            raise MappingError(
                f"{where}: csv layouts {counts[len(columns)]} and {name} both have {len(columns)} columns, so a "
                "file's field count cannot tell them apart"
            )
        counts[len(columns)] = str(name)
        out[str(name)] = columns
    return out


def _column_sources(where: str, table: CanonicalTable, spec: dict[str, Any] | None) -> tuple[ColumnSource, ...]:
    """Every canonical column's source; without a `columns:` section each comes from the file column of its name."""
    if spec is None:
        return tuple(ColumnSource(column.name, source=column.name) for column in table.columns)
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: `columns:` maps canonical columns to where their values come from")
    for name in spec:
        identifier(where, "column name", name)
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
        sources.append(_column_source(f"{where}, column {column.name}", column, entry))
    return tuple(sources)


def _column_source(where: str, column: CanonicalColumn, entry: dict[str, Any]) -> ColumnSource:
    bad = set(entry) - set(SOURCE_OPTIONS)
    if bad:
        raise MappingError(f"{where}: unknown option(s) {sorted(bad)}")
    if sum(option in entry for option in ("from", "value", "sum")) != 1:
        raise MappingError(f"{where}: give exactly one of `from:`, `value:` or `sum:`")
    for key in ("from", "timezone_column", "region_from"):
        if entry.get(key) is not None:
            entry = {**entry, key: _file_column(where, key, entry[key])}
    numeric = column.type in ("integer", "decimal")
    summed = entry.get("sum")
    if summed is not None:
        if not numeric:
            raise MappingError(f"{where}: `sum:` adds numbers; the column is of type {column.type}")
        if not isinstance(summed, list) or len(summed) < 2:
            raise MappingError(f"{where}: `sum:` lists two or more file columns")
        summed = [_file_column(where, "sum", name) for name in summed]
    scale = None
    if "scale" in entry:
        if not numeric:
            raise MappingError(f"{where}: `scale:` multiplies numbers; the column is of type {column.type}")
        try:
            scale = Decimal(str(entry["scale"]))
            if not scale.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise MappingError(f"{where}: `scale:` must be a number, e.g. 0.001 for milliseconds to seconds") from None
    epoch = entry.get("epoch")
    if epoch is not None:
        if column.type != "timestamp":
            raise MappingError(f"{where}: `epoch:` reads date-times; the column is of type {column.type}")
        if epoch not in EPOCH_UNITS:
            raise MappingError(f"{where}: `epoch:` must be one of {EPOCH_UNITS}")
        if {"format", "timezone", "timezone_column"} & set(entry):
            raise MappingError(f"{where}: an epoch is in UTC: it takes no `format:`, `timezone:` or `timezone_column:`")
    zone = entry.get("timezone")
    if ("timezone" in entry or "timezone_column" in entry) and column.type != "timestamp":
        raise MappingError(
            f"{where}: `timezone:` and `timezone_column:` are for date-times; the column is of type {column.type}"
        )
    if zone is not None and zone != UNSET_ZONE:
        try:
            zoneinfo.ZoneInfo(str(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise MappingError(
                f"{where}: timezone {zone!r} is not an IANA time zone name (e.g. Europe/Berlin, UTC)"
            ) from None
    fmt = entry.get("format")
    local = fmt is not None and "%z" not in fmt and "%Z" not in fmt
    if (
        column.type == "timestamp"
        and local
        and zone is None
        and "timezone_column" not in entry
        and "value" not in entry
    ):
        raise MappingError(
            f"{where}: the format {fmt!r} has no %z, so the values are local times: name their zone with "
            "`timezone:` (or a per-row `timezone_column:`)"
        )
    if ("region" in entry or "region_from" in entry) and column.type != "phone":
        raise MappingError(
            f"{where}: `region:` and `region_from:` are for phone numbers; the column is of type {column.type}"
        )
    return ColumnSource(
        canonical=column.name,
        source=entry.get("from"),
        value=None if entry.get("value") is None else str(entry["value"]),
        sum=tuple(str(name) for name in summed or ()),
        format=fmt,
        timezone=None if zone is None else str(zone),
        timezone_column=entry.get("timezone_column"),
        values={str(k): str(v) for k, v in entry["values"].items()} if entry.get("values") else None,
        region=entry.get("region"),
        region_from=entry.get("region_from"),
        scale=scale,
        epoch=epoch,
    )
