"""The shipped vendor mappings (HubSpot, Asterisk) and mapping errors, on small exports written the way those systems
write them, loaded through `ingest_csv_table` into a DuckDB file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
from decimal import Decimal
from pathlib import Path, PurePosixPath

import duckdb
import pytest

from ingestion.ingest import TableLoad, ingest_csv_table
from ingestion.mapping import MAPPINGS_DIR, MappingError, load_mappings

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.UTC

DEALS_HEADER = [
    "Record ID", "Deal Name", "Deal Stage", "Close Date", "Deal owner", "Amount", "Create Date", "Last Modified Date",
    "Pipeline", "Deal Type", "Currency", "Associated Company IDs (Primary)", "Associated Company IDs",
]  # fmt: skip
DEALS = [
    # labels, as HubSpot's export writes them by default
    ["18802350101", "Acme Corp, Inc. - Platform", "Appointment Scheduled", "2024-04-30", "52550153", "12500",
     "2024-03-01 09:30", "2024-03-15 10:00", "Sales Pipeline", "New Business", "USD", "9876543210",
     "9876543210"],
    # internal values, as an export with internal values writes them
    ["18802350102", "Globex renewal", "contractsent", "2024-03-29 00:00", "52550153", "48000.50",
     "2024-02-10 16:45", "2024-03-04 08:12", "default", "existingbusiness", "EUR", "9876543211",
     "9876543211;9876543212"],
    ["18802350103", "Initech pilot", "Closed Won", "2024-02-28", "61230077", "7200",
     "2024-01-15 11:00", "2024-02-28 17:59", "Sales Pipeline", "New Business", "USD", "9876543213", "9876543213"],
    ["18802350104", "Umbrella expansion", "Qualified To Buy", "2024-05-15", "61230077", "N/A",
     "2024-03-02 13:20", "2024-03-02 13:20", "Sales Pipeline", "Existing Business", "USD", "9876543214",
     "9876543214"],
]  # fmt: skip
ENGAGEMENTS_HEADER = [
    "Activity ID", "Activity type", "Activity date", "Activity assigned to", "Associated Contact IDs",
    "Associated Deal IDs", "Subject", "Body", "Call direction", "Call outcome", "Call duration (ms)", "Create date",
    "Last modified date",
]  # fmt: skip
ENGAGEMENTS = [
    ["70000000001", "CALL", "2024-03-04 10:15", "52550153", "301", "18802350101", "Discovery call",
     "Budget approved for Q2", "OUTBOUND", "Connected", "312000", "2024-03-04 10:21", "2024-03-04 10:21"],
    ["70000000002", "EMAIL", "2024-03-04 11:00", "52550153", "302", "18802350102", "Pricing for Globex",
     "Hi Sam,\nattached is our pricing.", "", "", "", "2024-03-04 11:00", "2024-03-04 11:00"],
    ["70000000003", "MEETING", "2024-03-05 15:00", "61230077", "303", "18802350103", "Demo with Initech",
     "", "", "", "", "2024-03-01 09:00", "2024-03-05 16:02"],
    ["70000000004", "CALL", "2024-03-05 17:40", "61230077", "301;304", "", "Inbound call",
     "", "INBOUND", "b2cf5968-551e-4856-9783-52b3da59a7d0", "41000", "2024-03-05 17:41", "2024-03-05 17:41"],
    # logged three days after the file was exported: impossible
    ["70000000005", "CALL", "2024-03-09 10:00", "61230077", "301", "", "Follow-up",
     "", "OUTBOUND", "No answer", "0", "2024-03-09 10:00", "2024-03-09 10:00"],
]  # fmt: skip


def hubspot_csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    return out.getvalue()


def cdr(
    src: str, dst: str, dcontext: str, start: str, answer: str, end: str, duration: int, billsec: int,
    disposition: str, uniqueid: str,
) -> str:  # fmt: skip
    """One Master.csv record as cdr_csv writes it: strings quoted ('"' doubled), numbers bare, an unset time empty."""

    def text(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    fields = [
        text(""), text(src), text(dst), text(dcontext), text(f'"Dana Reyes" <{src}>'),
        text("PJSIP/1001-0000002a"), text("PJSIP/carrier-0000002b"), text("Dial"), text(f"PJSIP/{dst}@carrier,60"),
        text(start), text(answer) if answer else "", text(end), str(duration), str(billsec), text(disposition),
        text("DOCUMENTATION"), text(uniqueid), text(""),
    ]  # fmt: skip
    return ",".join(fields)


CDRS = [
    # src, dst, dcontext, start, answer, end, duration, billsec, disposition, uniqueid
    ("2125550143", "6175550188", "from-internal", "2024-01-02 09:15:01", "2024-01-02 09:15:07", "2024-01-02 09:17:30",
     149, 143, "ANSWERED", "1704204901.1"),
    ("+442079460018", "2125550143", "from-trunk", "2024-07-02 16:40:00", "", "2024-07-02 16:40:25",
     25, 0, "NO ANSWER", "1719952800.7"),
    ("2125550143", "6175550188", "from-internal", "2024-01-02 9h15", "", "2024-01-02 09:20:11",
     4, 0, "BUSY", "1704205207.3"),
    ("2125550143", "3125550190", "from-internal", "2024-07-02 17:05:12", "", "2024-07-02 17:05:14",
     2, 0, "BUSY", "1719954312.9"),
]  # fmt: skip
MASTER_CSV = "".join(cdr(*record) + "\n" for record in CDRS)


def drop(tmp_path: Path, relative: str, text: str) -> None:
    path = tmp_path / "landing" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")


def ingest(tmp_path: Path, table: str) -> tuple[duckdb.DuckDBPyConnection, TableLoad]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    return con, ingest_csv_table(con, load_mappings(), table, tmp_path / "landing")


def test_a_hubspot_deals_export_loads_into_opportunity_with_canonical_stages(tmp_path: Path) -> None:
    drop(tmp_path, "crm/2024-03-20/hubspot-deals-2024-03-20.csv", hubspot_csv(DEALS_HEADER, DEALS))
    con, load = ingest(tmp_path, "opportunity")
    assert [(file.vendor, file.outcome.rows_loaded, file.outcome.rows_quarantined) for file in load.files] == [
        ("hubspot", 3, 1)
    ]
    loaded = con.execute(
        """
        select "Id", "Name", "StageName", "Amount", "CloseDate", "Type", "CurrencyIsoCode", "OwnerId", "AccountId",
            "CreatedDate", "LastModifiedDate", _extra_columns['Associated Company IDs (Primary)']
        from raw.opportunity order by "Id"
        """
    ).fetchall()
    assert loaded == [
        ("18802350101", "Acme Corp, Inc. - Platform", "Prospecting", Decimal("12500.00"), dt.date(2024, 4, 30),
         "New Business", "USD", "52550153", None,
         dt.datetime(2024, 3, 1, 14, 30, tzinfo=UTC),  # 09:30 New York, standard time
         dt.datetime(2024, 3, 15, 14, 0, tzinfo=UTC),  # 10:00 New York, daylight time since March 10
         "9876543210"),
        ("18802350102", "Globex renewal", "Closing", Decimal("48000.50"), dt.date(2024, 3, 29),
         "Existing Business", "EUR", "52550153", None,
         dt.datetime(2024, 2, 10, 21, 45, tzinfo=UTC), dt.datetime(2024, 3, 4, 13, 12, tzinfo=UTC), "9876543211"),
        ("18802350103", "Initech pilot", "Closed Won", Decimal("7200.00"), dt.date(2024, 2, 28),
         "New Business", "USD", "61230077", None,
         dt.datetime(2024, 1, 15, 16, 0, tzinfo=UTC), dt.datetime(2024, 2, 28, 22, 59, tzinfo=UTC), "9876543213"),
    ]  # fmt: skip


def test_hubspot_engagements_load_as_tasks(tmp_path: Path) -> None:
    drop(tmp_path, "crm/2024-03-06/hubspot-engagements-2024-03-06.csv", hubspot_csv(ENGAGEMENTS_HEADER, ENGAGEMENTS))
    con, load = ingest(tmp_path, "task")
    assert (load.rows_loaded, load.rows_quarantined) == (4, 1)
    loaded = con.execute(
        """
        select "Id", "Type", "TaskSubtype", "Status", "Subject", "ActivityDate", "OwnerId", "WhatId", "WhoId",
            "CallType", "CallDisposition", "CallDurationInSeconds", _extra_columns['Call duration (ms)'],
            "CreatedDate"
        from raw.task order by "Id"
        """
    ).fetchall()
    assert loaded == [
        ("70000000001", "Call", "Call", "Completed", "Discovery call", dt.date(2024, 3, 4), "52550153",
         "18802350101", "301", "Outbound", "Connected", None, "312000",
         dt.datetime(2024, 3, 4, 15, 21, tzinfo=UTC)),
        ("70000000002", "Email", "Email", "Completed", "Pricing for Globex", dt.date(2024, 3, 4), "52550153",
         "18802350102", "302", None, None, None, None, dt.datetime(2024, 3, 4, 16, 0, tzinfo=UTC)),
        ("70000000003", "Meeting", "Task", "Completed", "Demo with Initech", dt.date(2024, 3, 5), "61230077",
         "18802350103", "303", None, None, None, None, dt.datetime(2024, 3, 1, 14, 0, tzinfo=UTC)),
        ("70000000004", "Call", "Call", "Completed", "Inbound call", dt.date(2024, 3, 5), "61230077",
         None, "301;304", "Inbound", "Left Voicemail", None, "41000", dt.datetime(2024, 3, 5, 22, 41, tzinfo=UTC)),
    ]  # fmt: skip
    assert con.execute('select "Description" from raw.task where "Id" = \'70000000002\'').fetchall() == [
        ("Hi Sam,\nattached is our pricing.",)
    ]
    assert con.execute("select record_id, reason from quarantine.task").fetchall() == [
        ("70000000005", "CreatedDate '2024-03-09 10:00' is later than the file's export date 2024-03-06")
    ]


def test_a_headerless_asterisk_master_csv_loads_into_phone_calls_in_utc(tmp_path: Path) -> None:
    drop(tmp_path, "phone/2024-07-03/Master.csv", MASTER_CSV)
    con, load = ingest(tmp_path, "phone_calls")
    assert [(file.vendor, file.outcome.rows_loaded, file.outcome.rows_quarantined) for file in load.files] == [
        ("asterisk", 3, 1)
    ]
    loaded = con.execute(
        """
        select call_id, direction, from_number, from_number_e164, to_number_e164, started_at, answered_at, ended_at,
            duration_seconds, talk_seconds, disposition
        from raw.phone_calls order by started_at
        """
    ).fetchall()
    assert loaded == [
        ("1704204901.1", "outbound", "2125550143", "+12125550143", "+16175550188",
         dt.datetime(2024, 1, 2, 14, 15, 1, tzinfo=UTC),  # 09:15:01 New York, standard time (UTC-5)
         dt.datetime(2024, 1, 2, 14, 15, 7, tzinfo=UTC), dt.datetime(2024, 1, 2, 14, 17, 30, tzinfo=UTC),
         149, 143, "answered"),
        ("1719952800.7", "inbound", "+442079460018", "+442079460018", "+12125550143",
         dt.datetime(2024, 7, 2, 20, 40, tzinfo=UTC),  # 16:40 New York, daylight time (UTC-4)
         None, dt.datetime(2024, 7, 2, 20, 40, 25, tzinfo=UTC), 25, 0, "no_answer"),
        ("1719954312.9", "outbound", "2125550143", "+12125550143", "+13125550190",
         dt.datetime(2024, 7, 2, 21, 5, 12, tzinfo=UTC), None, dt.datetime(2024, 7, 2, 21, 5, 14, tzinfo=UTC),
         2, 0, "busy"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("relative", "text", "table", "record_id", "line", "reason"),
    [
        pytest.param(
            "crm/2024-03-20/hubspot-deals-2024-03-20.csv", hubspot_csv(DEALS_HEADER, DEALS), "opportunity",
            "18802350104", 5, "Amount 'N/A' is not a number", id="hubspot-deal",
        ),
        pytest.param(
            "phone/2024-07-03/Master.csv", MASTER_CSV, "phone_calls", "1704205207.3", 3,
            "started_at '2024-01-02 9h15' is not a date-time in the format %Y-%m-%d %H:%M:%S", id="asterisk-cdr",
        ),
    ],
)  # fmt: skip
def test_a_bad_value_in_a_vendor_file_is_quarantined_with_a_readable_reason(
    tmp_path: Path, relative: str, text: str, table: str, record_id: str, line: int, reason: str
) -> None:
    drop(tmp_path, relative, text)
    con, _ = ingest(tmp_path, table)
    quarantined = con.execute(f"select _source_file, _line, record_id, reason, raw_text from quarantine.{table}")
    assert quarantined.fetchall() == [(relative, line, record_id, reason, text.splitlines()[line - 1])]
    ledger = con.execute("select status, rows_read, rows_loaded, rows_quarantined from raw.load_ledger").fetchall()
    assert ledger == [("loaded", 4, 3, 1)]  # the rest of the file loads


def test_an_asterisk_call_in_a_dialplan_context_not_listed_is_quarantined_not_guessed(tmp_path: Path) -> None:
    record = cdr("2125550143", "6175550188", "ivr-main", "2024-01-02 09:15:01", "2024-01-02 09:15:02",
                 "2024-01-02 09:16:00", 59, 58, "ANSWERED", "1704204901.4")  # fmt: skip
    drop(tmp_path, "phone/2024-01-03/Master.csv", record + "\n")
    con, _ = ingest(tmp_path, "phone_calls")
    assert con.execute("select count(*) from raw.phone_calls").fetchall() == [(0,)]
    assert con.execute("select reason from quarantine.phone_calls").fetchall() == [
        ("direction 'ivr-main' is not one of the configured values (inbound, outbound)",)
    ]


EXAMPLE_FILES = {
    "crm/2024-03-06/hubspot-deals-2024-03-06.csv": ("hubspot", "opportunity"),
    "crm/2024-03-06/hubspot-engagements-2024-03-06.csv": ("hubspot", "task"),
    "crm/2024-03-06/Opportunity.csv": ("salesforce", "opportunity"),
    "crm/2024-03-06/Task.csv": ("salesforce", "task"),
    "phone/2024-07-03/Master.csv": ("asterisk", "phone_calls"),
    "phone/2024-07-03/Master-20240702.csv": ("asterisk", "phone_calls"),
    "phone/2024-07-03/calls_2024-07-02.csv": ("cloud_telephony", "phone_calls"),
}


def test_every_shipped_mapping_is_valid() -> None:
    mappings = load_mappings(MAPPINGS_DIR)
    assert {"salesforce", "cloud_telephony", "reference", "hubspot", "asterisk"} <= {m.vendor for m in mappings.files}
    globs = [pattern for mapping in mappings.files for pattern in mapping.files]
    assert len(globs) == len(set(globs)), "two mappings read the same files"
    for path, expected in EXAMPLE_FILES.items():
        readers = [(m.vendor, m.table.name) for m in mappings.files if any(map(PurePosixPath(path).match, m.files))]
        assert readers == [expected], path


@pytest.mark.parametrize(
    ("table_yaml", "message"),
    [
        pytest.param(
            "opportunity:\n    files: crm/*/deals.csv\n    columns:\n      Id: id\n"
            "      StageName: {from: stage, fromat: '%Y'}\n",
            "broken.yaml: table opportunity, column StageName: unknown option(s) ['fromat']",
            id="misspelt-option",
        ),
        pytest.param(
            "opportunity:\n    files: crm/*/deals.csv\n    columns:\n      Id: id\n      StageName: stage\n",
            "broken.yaml: table opportunity: required column Amount has no source",
            id="required-column-unmapped",
        ),
        pytest.param(
            "phone_calls:\n    files: phone/*/cdr.csv\n    csv: {header: false, columns: [id, src]}\n    columns:\n"
            "      call_id: id\n      direction: {value: outbound}\n      from_number: src\n      to_number: dst\n"
            "      started_at: start\n      duration_seconds: duration\n",
            "broken.yaml: table phone_calls: columns ['dst', 'start', 'duration'] are not among `csv: columns:`",
            id="headerless-column-not-listed",
        ),
    ],
)
def test_a_mapping_error_names_the_file_and_the_entry(tmp_path: Path, table_yaml: str, message: str) -> None:
    shutil.copy(MAPPINGS_DIR / "canonical.yaml", tmp_path / "canonical.yaml")
    (tmp_path / "broken.yaml").write_text(f"vendor: broken\ntables:\n  {table_yaml}", encoding="utf-8")
    with pytest.raises(MappingError) as error:
        load_mappings(tmp_path)
    assert str(error.value) == message


def test_a_mappings_folder_of_your_own_replaces_the_shipped_one_and_borrows_its_canonical_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(MAPPINGS_DIR / "asterisk.yaml", tmp_path / "asterisk.yaml")
    monkeypatch.setenv("SOURCE_MAPPINGS_DIR", str(tmp_path))
    mappings = load_mappings()
    assert mappings.tables.keys() == load_mappings(MAPPINGS_DIR).tables.keys()
    assert [(m.vendor, m.table.name) for m in mappings.files] == [("asterisk", "phone_calls")]


def test_the_example_mapping_in_the_docs_loads_its_sample_export(tmp_path: Path) -> None:
    guide = (ROOT / "docs" / "source_mappings.md").read_text(encoding="utf-8")
    sample = re.search(r"```csv\n(.*?)```", guide, re.S).group(1)
    mapping = re.search(r"```yaml\n(# Parrotline.*?)```", guide, re.S).group(1)
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "parrotline.yaml").write_text(mapping, encoding="utf-8")
    drop(tmp_path, "phone/2024-05-02/parrotline_2024-05-01.csv", sample)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load = ingest_csv_table(con, load_mappings(folder), "phone_calls", tmp_path / "landing")
    assert (load.rows_loaded, load.rows_quarantined) == (2, 0)
    first = con.execute(
        "select call_id, direction, from_number, from_number_e164, started_at, disposition from raw.phone_calls "
        "order by started_at limit 1"
    ).fetchall()
    started_at = dt.datetime(2024, 5, 1, 7, 12, 4, tzinfo=UTC)  # 09:12:04 Berlin summer time
    assert first == [("PL-000181", "outbound", "030 901820", "+4930901820", started_at, "answered")]
    assert con.execute("select answered_at from raw.phone_calls where call_id = 'PL-000182'").fetchall() == [(None,)]
