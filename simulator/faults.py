"""Realistic defects planted at known rates (`--faults`), each one written to `truth/faults.csv`.

Row-level defects change one field of a row (or repeat a row at the end of its file, as a re-sent export page
does); file-level defects cut a file short or put Latin-1 bytes in a UTF-8 file. A row gets at most one defect, so
every planted defect has exactly one expected answer from the loader.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from simulator.config import FaultRates
from simulator.ids import salesforce_ids
from simulator.phones import make_invalid

MANIFEST_COLUMNS = ["source", "file", "record_number", "line", "record_id", "fault_type", "column", "detail"]
UNKNOWN_STAGES = ("Negotiation/Review", "Verbal Commit", "Perception Analysis", "Id. Decision Makers")
ORPHAN_BASE = 50_000_000_000  # record numbers no simulated record ever gets

# table -> [(fault type, column)]; rates come from FaultRates by fault type
ROW_FAULTS: dict[str, list[tuple[str, str]]] = {
    "Opportunity": [
        ("duplicate_row", ""), ("malformed_date", "CloseDate"), ("bad_number", "Amount"),
        ("unknown_stage", "StageName"), ("orphan_foreign_key", "AccountId"), ("negative_amount", "Amount"),
        ("missing_amount", "Amount"), ("timestamp_without_zone", "LastModifiedDate"), ("future_dated", "CreatedDate"),
    ],
    "OpportunityHistory": [("duplicate_row", ""), ("unknown_stage", "StageName"), ("malformed_date", "CloseDate")],
    "Account": [("duplicate_row", "")],
    "Contact": [("duplicate_row", ""), ("invalid_phone", "Phone"), ("orphan_foreign_key", "AccountId")],
    "Lead": [("duplicate_row", ""), ("invalid_phone", "Phone")],
    "Task": [
        ("duplicate_row", ""), ("malformed_date", "ActivityDate"), ("orphan_foreign_key", "WhatId"),
        ("future_dated", "CreatedDate"),
    ],
    "calls": [
        ("duplicate_row", ""), ("invalid_phone", "to_number"), ("bad_number", "duration_seconds"),
        ("timestamp_without_zone", "started_at"), ("future_dated", "started_at"), ("malformed_date", "started_at"),
    ],
}  # fmt: skip
_ID_COLUMN = {"calls": "call_id"}


def plant_row_faults(con: duckdb.DuckDBPyConnection, seed: int, rates: FaultRates, salt: int) -> list[dict]:
    """Mutate the `out_<table>` tables in place; return manifest rows (file and line filled in later).

    Only the keys of each table come into Python, and the values of the rows chosen for a defect: a `bench`
    world's tables are far larger than memory allows to copy.
    """
    planted = []
    for table_index, (table, specs) in enumerate(ROW_FAULTS.items()):
        rng = np.random.default_rng([seed, 91, salt, table_index])
        out = f"out_{table}"
        id_column = _ID_COLUMN.get(table, "Id")
        keys = con.execute(
            f'select drop_date, _ord, "{id_column}" as record_id from {out} order by drop_date, _ord'
        ).fetchdf()
        if keys.empty:
            continue
        shares = np.array([getattr(rates, fault) for fault, _ in specs])
        choice = np.searchsorted(np.cumsum(shares), rng.random(len(keys)), side="right")  # len(specs): no fault
        last_ord = keys.groupby("drop_date")._ord.max()
        for k, (fault, column) in enumerate(specs):
            chosen = keys[choice == k].copy()
            if chosen.empty:
                continue
            if fault == "duplicate_row":
                chosen["new_ord"] = (
                    last_ord.loc[chosen.drop_date].to_numpy() + 1 + (chosen.groupby("drop_date").cumcount().to_numpy())
                )
                last_ord = last_ord.add(chosen.groupby("drop_date").size(), fill_value=0).astype(int)
                con.register("dup", chosen)
                con.execute(
                    f"insert into {out} by name select o.* replace (d.new_ord as _ord) from {out} o "
                    "join dup d on o.drop_date = d.drop_date and o._ord = d._ord"
                )
                con.unregister("dup")
                for drop_date, ordinal, record_id, original in zip(
                    chosen.drop_date, chosen.new_ord, chosen.record_id, chosen._ord, strict=True
                ):
                    planted.append(_entry(table, drop_date, ordinal, record_id, fault, column,
                                          f"repeats record {original}"))  # fmt: skip
                continue
            con.register("chosen", chosen[["drop_date", "_ord"]])
            current = con.execute(
                f'select c.drop_date, c._ord, o."{column}" as value from chosen c '
                f"join {out} o on o.drop_date = c.drop_date and o._ord = c._ord order by c.drop_date, c._ord"
            ).fetchdf()
            con.unregister("chosen")
            chosen = chosen.merge(current, on=["drop_date", "_ord"])
            if fault in ("negative_amount", "bad_number") and column == "Amount":
                chosen = chosen[chosen.value != ""]  # an empty amount is a different defect
            if chosen.empty:
                continue
            values = _faulty_values(fault, column, chosen.value.astype(str).to_numpy(), rng)
            update = pd.DataFrame({"drop_date": chosen.drop_date, "_ord": chosen._ord, "value": values})
            con.register("fault_update", update)
            con.execute(
                f'update {out} set "{column}" = u.value from fault_update u '
                f"where {out}.drop_date = u.drop_date and {out}._ord = u._ord"
            )
            con.unregister("fault_update")
            for drop_date, ordinal, record_id, value in zip(
                chosen.drop_date, chosen._ord, chosen.record_id, values, strict=True
            ):
                planted.append(_entry(table, drop_date, ordinal, record_id, fault, column, f"{column}={value!r}"))
    return planted


def _entry(table, drop_date, ordinal, record_id, fault, column, detail) -> dict:
    # records are numbered 1..n in file order (`_ord`), and repeated rows go after them, so `_ord` is the record number
    return {"table": table, "drop_date": pd.Timestamp(drop_date).date(), "record_number": int(ordinal),
            "record_id": record_id, "fault_type": fault, "column": column, "detail": detail}  # fmt: skip


def _faulty_values(fault: str, column: str, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(values)
    if fault == "malformed_date":
        if column == "started_at":  # a day-first local timestamp, with an impossible day
            return np.array([f"31/02/{v[:4]} {v[11:19]}" for v in values], dtype=object)
        return np.array([f"{v[:4]}-13-{v[8:10] or '01'}" if k % 2 else f"{v[:4]}-02-30"
                         for k, v in enumerate(values)], dtype=object)  # fmt: skip
    if fault == "bad_number":
        return np.array(["N/A", "1O500.00", "12,5OO", "#VALUE!"], dtype=object)[rng.integers(0, 4, n)]
    if fault == "unknown_stage":
        return np.array(UNKNOWN_STAGES, dtype=object)[rng.integers(0, len(UNKNOWN_STAGES), n)]
    if fault == "orphan_foreign_key":
        sobject = "Opportunity" if column == "WhatId" else "Account"
        return salesforce_ids(sobject, ORPHAN_BASE + rng.integers(0, 10**9, n)).astype(object)
    if fault == "negative_amount":
        return np.array([f"-{v}" for v in values], dtype=object)
    if fault == "missing_amount":
        return np.array([""] * n, dtype=object)
    if fault == "timestamp_without_zone":
        return np.array([v[:19].replace("T", " ") for v in values], dtype=object)
    if fault == "future_dated":
        return np.array([f"{int(v[:4]) + 3}{v[4:]}" for v in values], dtype=object)
    if fault == "invalid_phone":
        return make_invalid(values, rng).astype(object)
    raise ValueError(fault)


def plant_file_faults(
    files: dict[str, list[Path]], landing: Path, rng: np.random.Generator, rates: FaultRates, avoid: set[Path]
) -> list[dict]:
    """Cut files short and put Latin-1 bytes in others; files already holding row faults are left alone."""
    planted = []
    truncatable = sorted(p for p in files["phone"] + files["crm"] if p not in avoid and _has_records(p, 5))
    for index in rng.permutation(len(truncatable))[: rates.truncated_files]:
        path = truncatable[index]
        data = path.read_bytes()
        cut = int(len(data) * rng.uniform(0.4, 0.8))
        while data[cut : cut + 1] in (b"\n", b'"', b","):
            cut += 1
        path.write_bytes(data[:cut])
        line = data[:cut].count(b"\n") + 1
        planted.append(_file_entry(path, landing, line, "truncated_file", f"cut at byte {cut} of {len(data)}"))
        avoid = avoid | {path}
    # people's names are where a Latin-1 terminal leaves its mark
    named = sorted(
        p for p in files["crm"] if p.stem in ("Contact", "Lead", "User") and p not in avoid and _has_records(p, 3)
    )
    for index in rng.permutation(len(named))[: rates.non_utf8_files]:
        path = named[index]
        lines = path.read_bytes().split(b"\n")
        target = 1 + int(rng.integers(0, _records(path)))
        fields = lines[target].split(b'","')
        name_field = {"Contact": 4, "Lead": 3, "User": 3}[path.stem]  # FirstName / LastName
        fields[name_field] = fields[name_field] + "\u00e9".encode("latin-1")
        lines[target] = b'","'.join(fields)
        path.write_bytes(b"\n".join(lines))
        planted.append(
            _file_entry(path, landing, target + 1, "non_utf8", "byte 0xE9 (Latin-1 e-acute) in a UTF-8 file")
        )
    return planted


def _has_records(path: Path, wanted: int) -> bool:
    """Whether the CSV holds at least `wanted` records, reading no further than that (drops can be gigabytes)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        return sum(1 for _, _ in zip(range(wanted + 1), reader, strict=False)) > wanted


def _records(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def _file_entry(path: Path, landing: Path, line: int, fault: str, detail: str) -> dict:
    source = path.relative_to(landing).parts[0]
    return {"source": source, "file": str(path.relative_to(landing)), "record_number": "", "line": line,
            "record_id": "", "fault_type": fault, "column": "", "detail": detail}  # fmt: skip


def locate_row_faults(planted: list[dict], landing: Path) -> list[dict]:
    """Turn (table, drop, ordinal) into file, record number and physical line, reading the written files."""
    out = []
    by_file: dict[Path, list[dict]] = {}
    for entry in planted:
        day = entry["drop_date"].isoformat()
        if entry["table"] == "calls":
            path = landing / "phone" / day / f"calls_{day}.csv"
        else:
            path = landing / "crm" / day / f"{entry['table']}.csv"
        by_file.setdefault(path, []).append(entry)
    for path, entries in sorted(by_file.items()):
        starts = _record_start_lines(path)
        for entry in entries:
            out.append(
                {
                    "source": "phone" if entry["table"] == "calls" else "crm",
                    "file": str(path.relative_to(landing)),
                    "record_number": entry["record_number"],
                    "line": starts[entry["record_number"] - 1],
                    "record_id": entry["record_id"],
                    "fault_type": entry["fault_type"],
                    "column": entry["column"],
                    "detail": entry["detail"],
                }
            )
    return out


def _record_start_lines(path: Path) -> list[int]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        starts = []
        line = reader.line_num + 1
        for _ in reader:
            starts.append(line)
            line = reader.line_num + 1
    return starts
