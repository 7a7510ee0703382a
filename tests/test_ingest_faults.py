"""Every defect `simulator generate --faults` plants is quarantined or rejected with the right reason, and nothing
else is; the counts reconcile file by file."""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ingestion.phones import normalize_phone
from orchestration.defs.ingest.checks import reconcile

# fault type planted -> the problem code the loader must give it
EXPECTED_PROBLEM = {
    "duplicate_row": "duplicate_record",
    "bad_number": "not_a_number",
    "negative_amount": "below_minimum",
    "invalid_phone": "invalid_phone",
    "timestamp_without_zone": "no_time_zone",
    "future_dated": "after_export",
}
# Defects that are facts of the CRM, not bad rows: Salesforce allows a deal without an amount, a stage the org
# defined after the export of its stages, and a record whose parent comes in a later drop. They load, and dbt names
# them (the undefined_stages, open_pipeline_without_amount and relationship warnings).
LOADED_AS_THE_CRM_WROTE_THEM = {"unknown_stage": "StageName", "orphan_foreign_key": None, "missing_amount": "Amount"}
# file-level defects -> words the ledger's reason must contain
EXPECTED_REJECTION = {
    "truncated_file": "cut short",
    "non_utf8": "not valid UTF-8",
    "broken_vevent": "never closed by END:VEVENT",
}


def manifest(world: Path) -> pd.DataFrame:
    return pd.read_csv(world / "truth/faults.csv", dtype=str, keep_default_na=False)


def quarantined(database: Path) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as con:
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'quarantine'"
            ).fetchall()
        ]
        return pd.concat(
            [
                con.execute(
                    f"select '{name}' as table_name, _source_file as file, _record_number::varchar as record_number, "
                    f"_line as line, record_id, reason, problems, raw_text from quarantine.{name}"
                ).df()
                for name in tables
            ],
            ignore_index=True,
        )


def rejected(database: Path) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute("select path as file, reason from raw.load_ledger where status = 'rejected'").df()


def test_every_planted_row_defect_is_quarantined_with_its_reason(
    tiny_faulty_world: Path, tiny_faulty_warehouse: Path
) -> None:
    planted = manifest(tiny_faulty_world)
    rows = planted[(planted.record_number != "") & ~planted.fault_type.isin(LOADED_AS_THE_CRM_WROTE_THEM)]
    found = quarantined(tiny_faulty_warehouse).set_index(["file", "record_number"])
    assert len(rows) > 100
    for fault in rows.itertuples():
        assert (fault.file, fault.record_number) in found.index, fault
        problems = list(found.loc[(fault.file, fault.record_number), "problems"])
        if fault.fault_type == "malformed_date":
            expected = "not_a_timestamp" if fault.column == "started_at" else "not_a_date"
        else:
            expected = EXPECTED_PROBLEM[fault.fault_type]
        assert expected in problems, (fault, problems)


def test_each_kind_of_row_defect_gets_a_sentence_naming_the_column_and_value(
    tiny_faulty_world: Path, tiny_faulty_warehouse: Path
) -> None:
    planted = manifest(tiny_faulty_world)
    rows = planted[
        (planted.record_number != "") & (planted.column != "") & ~planted.fault_type.isin(LOADED_AS_THE_CRM_WROTE_THEM)
    ]
    found = quarantined(tiny_faulty_warehouse).set_index(["file", "record_number"])
    for fault in rows.itertuples():
        reason = found.loc[(fault.file, fault.record_number), "reason"]
        assert reason.startswith(fault.column), (fault, reason)
        value = fault.detail.split("=", 1)[1].strip("'")
        if value:
            assert f"'{value}'" in reason, (fault, reason)
    reasons = quarantined(tiny_faulty_warehouse).reason
    assert reasons.str.contains(r"^CloseDate '\d{4}-(?:13-\d\d|02-30)' is not a date$").any()
    assert reasons.str.contains(r"^Amount '.*' is not a number$").any()
    assert reasons.str.contains(r"^repeats record \d+ of this file exactly$").any()


def test_quarantined_rows_keep_their_line_number_and_the_text_of_the_file(
    tiny_faulty_world: Path, tiny_faulty_warehouse: Path
) -> None:
    planted = manifest(tiny_faulty_world)
    rows = planted[
        (planted.record_number != "")
        & (planted.source != "calendar")
        & ~planted.fault_type.isin(LOADED_AS_THE_CRM_WROTE_THEM)
    ]
    found = quarantined(tiny_faulty_warehouse).set_index(["file", "record_number"])
    for fault in rows.itertuples():
        entry = found.loc[(fault.file, fault.record_number)]
        assert str(entry["line"]) == fault.line, fault
        lines = (tiny_faulty_world / "landing" / fault.file).read_text(encoding="utf-8").split("\n")
        assert entry["raw_text"].split("\n")[0] == lines[int(fault.line) - 1].rstrip("\r"), fault


def test_a_crms_own_facts_load_as_written_and_are_not_quarantined(
    tiny_faulty_world: Path, tiny_faulty_warehouse: Path
) -> None:
    # Regression: unknown stages, empty amounts and not-yet-loaded parents were quarantined, so a real org's first
    # export (its own stage names, early deals without an amount, a lone Opportunity.csv) was mostly held back.
    planted = manifest(tiny_faulty_world)
    facts = planted[planted.fault_type.isin(LOADED_AS_THE_CRM_WROTE_THEM) & (planted.source == "crm")]
    assert set(facts.fault_type) == set(LOADED_AS_THE_CRM_WROTE_THEM)
    found = quarantined(tiny_faulty_warehouse).set_index(["file", "record_number"])
    with duckdb.connect(str(tiny_faulty_warehouse), read_only=True) as con:
        for fault in facts.itertuples():
            assert (fault.file, fault.record_number) not in found.index, fault
            table = con.execute(
                "select table_name from raw.load_ledger where path = ? and status = 'loaded'", [fault.file]
            ).fetchone()[0]
            value = con.execute(
                f"select {fault.column} from raw.{table} where _source_file = ? and _record_number = ?",
                [fault.file, int(fault.record_number)],
            ).fetchone()
            assert value is not None, fault
            column = LOADED_AS_THE_CRM_WROTE_THEM[fault.fault_type]
            if column == "Amount":
                assert value[0] is None, fault
            elif column == "StageName":
                assert value[0] == fault.detail.split("=", 1)[1].strip("'"), fault


def test_every_planted_file_defect_rejects_its_file_with_the_reason(
    tiny_faulty_world: Path, tiny_faulty_warehouse: Path
) -> None:
    planted = manifest(tiny_faulty_world)
    files = planted[planted.fault_type.isin(["truncated_file", "non_utf8"])]
    assert len(files) == 2
    reasons = rejected(tiny_faulty_warehouse).set_index("file").reason
    for fault in files.itertuples():
        assert EXPECTED_REJECTION[fault.fault_type] in reasons[fault.file], reasons[fault.file]


def test_calendar_defects_reject_the_file_or_quarantine_the_event(
    tiny_faulty_world: Path, tiny_faulty_warehouse: Path
) -> None:
    planted = manifest(tiny_faulty_world)
    calendar = planted[planted.source == "calendar"]
    assert len(calendar) >= 3
    events = quarantined(tiny_faulty_warehouse)
    events = events[events.table_name == "calendar_events"].set_index(["file", "record_id"])
    reasons = rejected(tiny_faulty_warehouse).set_index("file").reason
    for fault in calendar.itertuples():
        if fault.file in reasons.index:
            assert fault.fault_type == "broken_vevent"
            assert EXPECTED_REJECTION["broken_vevent"] in reasons[fault.file]
        else:
            reason = events.loc[(fault.file, fault.record_id), "reason"]
            if fault.fault_type == "timestamp_without_zone":
                assert "no time zone" in reason
            else:
                assert "DTSTART" in reason and "not a valid" in reason


def test_nothing_but_the_planted_defects_is_quarantined_or_rejected(
    tiny_faulty_world: Path, tiny_faulty_warehouse: Path
) -> None:
    planted = manifest(tiny_faulty_world)
    row_keys = set(zip(planted.file, planted.record_number, strict=True))
    calendar_keys = set(zip(planted.file, planted.record_id, strict=True))
    for entry in quarantined(tiny_faulty_warehouse).itertuples():
        if entry.table_name == "calendar_events":
            assert (entry.file, entry.record_id) in calendar_keys, entry
        else:
            assert (entry.file, entry.record_number) in row_keys, entry
    assert set(rejected(tiny_faulty_warehouse).file) <= set(planted.file)


def test_a_clean_world_loads_with_nothing_quarantined_or_rejected(tiny_warehouse: Path) -> None:
    assert quarantined(tiny_warehouse).empty
    assert rejected(tiny_warehouse).empty
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        statuses = dict(con.execute("select status, count(*) from raw.load_ledger group by all").fetchall())
        assert statuses.get("loaded", 0) > 500


@pytest.mark.parametrize("table", ["opportunity", "task", "phone_calls", "contact"])
def test_rows_read_equal_rows_loaded_plus_quarantined_in_every_file(tiny_faulty_warehouse: Path, table: str) -> None:
    with duckdb.connect(str(tiny_faulty_warehouse), read_only=True) as con:
        result = reconcile(con, table, table, table)
        loaded, quarantined_rows = con.execute(
            f"select (select count(*) from raw.{table}), (select count(*) from quarantine.{table})"
        ).fetchall()[0]
    assert result.passed, result.metadata
    assert loaded > 0 and quarantined_rows > 0


def test_the_reconciliation_check_fails_when_a_loaded_row_goes_missing(
    tiny_faulty_warehouse: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(tiny_faulty_warehouse.read_bytes())
    with duckdb.connect(str(copy)) as con:
        con.execute("delete from raw.opportunity where _record_number = 1")
        result = reconcile(con, "opportunity", "opportunity", "opportunity")
    assert not result.passed
    assert result.metadata["files_not_reconciled"].value > 0


def test_every_phone_number_remembered_has_the_answer_phonenumbers_gives(tiny_faulty_warehouse: Path) -> None:
    # Most numbers of a load are answered by the vectorized path (phones.e164_sql); each must be what
    # `phonenumbers` says, planted invalid numbers included, and be remembered once.
    with duckdb.connect(str(tiny_faulty_warehouse), read_only=True) as con:
        numbers = con.execute("select text, region, e164, problem from raw.phone_numbers").fetchall()
    assert len(numbers) > 1000
    assert len({(text, region) for text, region, _, _ in numbers}) == len(numbers)
    wrong = [
        (text, region, e164, problem)
        for text, region, e164, problem in numbers
        if (e164, problem) != astuple(normalize_phone(text, region or None))
    ]
    assert wrong == []
    assert any(problem for *_, problem in numbers)  # the planted invalid numbers are among them
