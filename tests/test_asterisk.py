"""The shipped Asterisk mapping on Master.csv files as PBXs write them: cdr_csv with and without the userfield,
cdr_custom's sample layout, calls between extensions, and a PBX clock the user has to name."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path

import duckdb
import pytest

from ingestion.ingest import TableLoad, ingest_csv_table
from ingestion.mapping import MAPPINGS_DIR, Mappings, load_mappings

UTC = dt.UTC
SHIPPED = MAPPINGS_DIR / "asterisk.yaml"

# cdr_custom with the Master.csv mapping of Asterisk's cdr_custom.conf.sample: every field quoted, clid first,
# accountcode 16th, the CDR's sequence number last (19 fields).
CDR_CUSTOM = (
    '"""Dana Reyes"" <1001>","1001","6175550188","from-internal","PJSIP/1001-00000012","PJSIP/carrier-00000013",'
    '"Dial","PJSIP/6175550188@carrier,60","2024-03-04 09:15:01","2024-03-04 09:15:07","2024-03-04 09:17:30",'
    '"149","143","ANSWERED","DOCUMENTATION","sales","1709561701.18","","42"\n'
    '"""BRITISH TELECOM"" <+442079460018>","+442079460018","2125550143","from-trunk","PJSIP/carrier-00000014",'
    '"PJSIP/1001-00000015","Dial","PJSIP/1001,30","2024-07-02 16:40:00","","2024-07-02 16:40:25","25","0",'
    '"NO ANSWER","DOCUMENTATION","sales","1719952800.7","","43"\n'
)
# cdr_csv (Asterisk's default CDR backend): numbers bare, an unset answer time empty, 18 fields with the userfield.
CDR_CSV_BETWEEN_EXTENSIONS = (
    '"","1001","1002","from-internal","""Dana Reyes"" <1001>","PJSIP/1001-0000002a","PJSIP/1002-0000002b","Dial",'
    '"PJSIP/1002,30","2024-03-04 10:00:00","2024-03-04 10:00:03","2024-03-04 10:05:03",303,300,"ANSWERED",'
    '"DOCUMENTATION","1709564400.20",""\n'
)
CDR_CSV_TO_A_CUSTOMER = (
    '"","1001","6175550188","from-internal","""Dana Reyes"" <1001>","PJSIP/1001-0000002c","PJSIP/carrier-0000002d",'
    '"Dial","PJSIP/6175550188@carrier,60","2024-03-04 10:10:00","","2024-03-04 10:10:20",20,0,"NO ANSWER",'
    '"DOCUMENTATION","1709565000.21",""\n'
)


def without_userfield(record: str) -> str:
    """The record as cdr_csv writes it with loguserfield=no: one field less at the end."""
    return record.rstrip("\n").removesuffix(',""') + "\n"


def pbx_mappings(tmp_path: Path, zone: str) -> Path:
    """A user's mappings folder holding a copy of the shipped asterisk.yaml with the PBX's zone set."""
    folder = tmp_path / "my_mappings"
    folder.mkdir(exist_ok=True)
    text = SHIPPED.read_text(encoding="utf-8").replace("timezone: unset", f"timezone: {zone}")
    (folder / "asterisk.yaml").write_text(text, encoding="utf-8")
    return folder


def drop(tmp_path: Path, relative: str, text: str) -> None:
    path = tmp_path / "landing" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")


def load(
    tmp_path: Path, mappings: Mappings, log: list[str] | None = None
) -> tuple[duckdb.DuckDBPyConnection, TableLoad]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load = ingest_csv_table(
        con, mappings, "phone_calls", tmp_path / "landing", log=log.append if log is not None else None
    )
    return con, load


def ledger(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select path, status, rows_read, rows_loaded, rows_quarantined, mapping_file, mapping_hash, timezone "
        "from raw.load_ledger order by finished_at"
    ).fetchall()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_cdr_custom_master_csv_with_19_fields_loads_every_call_in_utc(tmp_path: Path) -> None:
    # Regression: a real cdr_custom Master.csv was rejected as "a record has the wrong number of fields at line 1".
    folder = pbx_mappings(tmp_path, "America/New_York")
    drop(tmp_path, "phone/2024-07-03/Master.csv", CDR_CUSTOM)
    con, _ = load(tmp_path, load_mappings(folder))
    calls = con.execute(
        "select call_id, direction, from_number, from_number_e164, to_number, to_number_e164, started_at, "
        "answered_at, duration_seconds, talk_seconds, disposition, is_internal, _extra_columns['sequence'] "
        "from raw.phone_calls order by started_at"
    ).fetchall()
    assert calls == [
        ("1709561701.18", "outbound", "1001", None, "6175550188", "+16175550188",
         dt.datetime(2024, 3, 4, 14, 15, 1, tzinfo=UTC),  # 09:15:01 in New York, standard time
         dt.datetime(2024, 3, 4, 14, 15, 7, tzinfo=UTC), 149, 143, "answered", False, "42"),
        ("1719952800.7", "inbound", "+442079460018", "+442079460018", "2125550143", "+12125550143",
         dt.datetime(2024, 7, 2, 20, 40, tzinfo=UTC),  # 16:40 in New York, daylight time
         None, 25, 0, "no_answer", False, "43"),
    ]  # fmt: skip
    assert ledger(con) == [
        ("phone/2024-07-03/Master.csv", "loaded", 2, 2, 0, str(folder / "asterisk.yaml"),
         sha256(folder / "asterisk.yaml"), "America/New_York"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("records", "fields"),
    [
        pytest.param(CDR_CSV_TO_A_CUSTOMER, 18, id="cdr_csv"),
        pytest.param(without_userfield(CDR_CSV_TO_A_CUSTOMER), 17, id="cdr_csv-without-userfield"),
    ],
)
def test_a_cdr_csv_master_csv_loads_with_or_without_the_userfield(tmp_path: Path, records: str, fields: int) -> None:
    assert len(next(csv.reader([records]))) == fields
    drop(tmp_path, "phone/2024-03-05/Master-20240304.csv", records)
    con, load_result = load(tmp_path, load_mappings(pbx_mappings(tmp_path, "UTC")))
    assert (load_result.rows_loaded, load_result.rows_quarantined) == (1, 0)
    assert con.execute("select call_id, started_at, to_number_e164 from raw.phone_calls").fetchall() == [
        ("1709565000.21", dt.datetime(2024, 3, 4, 10, 10, tzinfo=UTC), "+16175550188")
    ]


def test_a_call_between_two_extensions_loads_as_internal_with_the_numbers_as_written(tmp_path: Path) -> None:
    # Regression: extensions were quarantined as invalid phone numbers, so calls between colleagues could not load.
    drop(tmp_path, "phone/2024-03-05/Master.csv", CDR_CSV_BETWEEN_EXTENSIONS + CDR_CSV_TO_A_CUSTOMER)
    con, _ = load(tmp_path, load_mappings(pbx_mappings(tmp_path, "Europe/Berlin")))
    calls = con.execute(
        "select from_number, from_number_e164, to_number, to_number_e164, is_internal, started_at "
        "from raw.phone_calls order by started_at"
    ).fetchall()
    assert calls == [
        ("1001", None, "1002", None, True, dt.datetime(2024, 3, 4, 9, 0, tzinfo=UTC)),  # 10:00 in Berlin (UTC+1)
        ("1001", None, "6175550188", "+16175550188", False, dt.datetime(2024, 3, 4, 9, 10, tzinfo=UTC)),
    ]
    assert con.execute("select count(*) from quarantine.phone_calls").fetchall() == [(0,)]
    # an extension is not a phone number: it is not remembered as one either
    assert con.execute("select count(*) from raw.phone_numbers where text in ('1001', '1002')").fetchall() == [(0,)]


def test_a_master_csv_with_another_field_count_is_rejected_naming_the_counts(tmp_path: Path) -> None:
    # Regression: the reason was "a record has the wrong number of fields at line 1", with no counts.
    newcdrcolumns = CDR_CSV_TO_A_CUSTOMER.rstrip("\n") + ',"","1709565000.21","7"\n'  # peeraccount, linkedid, sequence
    drop(tmp_path, "phone/2024-03-05/Master.csv", newcdrcolumns)
    con, _ = load(tmp_path, load_mappings(pbx_mappings(tmp_path, "UTC")))
    assert con.execute("select status, reason from raw.load_ledger").fetchall() == [
        ("rejected", "the first record has 21 fields; the asterisk mapping expects 17, 18 or 19 "
         "(asterisk.yaml, `csv: layouts:`)"),
    ]  # fmt: skip


def test_a_later_record_with_another_field_count_is_rejected_with_both_counts(tmp_path: Path) -> None:
    drop(tmp_path, "phone/2024-03-05/Master.csv", CDR_CSV_TO_A_CUSTOMER + without_userfield(CDR_CSV_BETWEEN_EXTENSIONS))
    con, _ = load(tmp_path, load_mappings(pbx_mappings(tmp_path, "UTC")))
    [(status, reason)] = con.execute("select status, reason from raw.load_ledger").fetchall()
    assert status == "rejected"
    assert reason.startswith("a record has the wrong number of fields at line 2: 17, where 18 were expected")


def test_the_shipped_mapping_rejects_a_master_csv_until_the_pbx_zone_is_named_and_then_loads_it_once(
    tmp_path: Path,
) -> None:
    # Regression: the PBX's clock was assumed to be America/New_York without telling anyone.
    drop(tmp_path, "phone/2024-03-05/Master.csv", CDR_CSV_TO_A_CUSTOMER)
    con, _ = load(tmp_path, load_mappings(MAPPINGS_DIR))
    [(status, reason, mapping_file, mapping_hash, zone)] = con.execute(
        "select status, reason, mapping_file, mapping_hash, timezone from raw.load_ledger"
    ).fetchall()
    assert (status, mapping_file, mapping_hash, zone) == ("rejected", str(SHIPPED), sha256(SHIPPED), None)
    assert reason == (
        "asterisk.yaml does not name the time zone its asterisk times are written in (`timezone: unset` for "
        "started_at, answered_at, ended_at): set it in your copy of the mapping in SOURCE_MAPPINGS_DIR, and the file "
        "loads on the next run"
    )
    con.close()

    # the user's copy names the zone: the rejected file is read again, under it
    folder = pbx_mappings(tmp_path, "Europe/Berlin")
    log: list[str] = []
    con, _ = load(tmp_path, load_mappings(folder), log)
    rows = ledger(con)
    assert rows[1] == (
        "phone/2024-03-05/Master.csv", "loaded", 1, 1, 0, str(folder / "asterisk.yaml"),
        sha256(folder / "asterisk.yaml"), "Europe/Berlin",
    )  # fmt: skip
    assert con.execute("select version from raw.load_ledger").fetchall() == [(1,), (1,)]  # the same content
    assert con.execute("select started_at from raw.phone_calls").fetchall() == [
        (dt.datetime(2024, 3, 4, 9, 10, tzinfo=UTC),)  # 10:10 in Berlin
    ]
    assert any("Master.csv loaded by asterisk" in line and "local times read in Europe/Berlin" in line for line in log)
    con.close()

    # loaded files are never read again: not on the next run, nor when the mapping changes once more
    load(tmp_path, load_mappings(folder))[0].close()
    pbx_mappings(tmp_path, "Europe/Paris")
    con, again = load(tmp_path, load_mappings(folder))
    assert again.files == []
    assert len(ledger(con)) == 2
    assert con.execute("select count(*) from raw.phone_calls").fetchall() == [(1,)]
