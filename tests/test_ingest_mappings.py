"""The shipped vendor mappings (HubSpot, Asterisk) and mapping errors, on small exports written the way those systems
write them, loaded through `ingest_csv_table` into a DuckDB file."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import shutil
from decimal import Decimal
from pathlib import Path, PurePosixPath

import duckdb
import pytest

from ingestion.ingest import TableLoad, ingest_csv_table
from ingestion.mapping import MAPPINGS_DIR, MappingError, load_mappings
from ingestion.run import ingest_everything

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


def pbx_in_new_york(tmp_path: Path) -> Path:
    """A user's mappings folder with the shipped asterisk.yaml, its PBX's zone set (the shipped one leaves it unset)."""
    folder = tmp_path / "my_mappings"
    folder.mkdir(exist_ok=True)
    text = (MAPPINGS_DIR / "asterisk.yaml").read_text(encoding="utf-8")
    (folder / "asterisk.yaml").write_text(text.replace("timezone: unset", "timezone: America/New_York"), "utf-8")
    return folder


def ingest(tmp_path: Path, table: str) -> tuple[duckdb.DuckDBPyConnection, TableLoad]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    return con, ingest_csv_table(con, load_mappings(pbx_in_new_york(tmp_path)), table, tmp_path / "landing")


def test_a_hubspot_deals_export_loads_into_opportunity_with_hubspots_stage_labels(tmp_path: Path) -> None:
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
        ("18802350101", "Acme Corp, Inc. - Platform", "Appointment Scheduled", Decimal("12500.00"),
         dt.date(2024, 4, 30), "New Business", "USD", "52550153", None,
         dt.datetime(2024, 3, 1, 14, 30, tzinfo=UTC),  # 09:30 New York, standard time
         dt.datetime(2024, 3, 15, 14, 0, tzinfo=UTC),  # 10:00 New York, daylight time since March 10
         "9876543210"),
        ("18802350102", "Globex renewal", "Contract Sent", Decimal("48000.50"), dt.date(2024, 3, 29),
         "Existing Business", "EUR", "52550153", None,
         dt.datetime(2024, 2, 10, 21, 45, tzinfo=UTC), dt.datetime(2024, 3, 4, 13, 12, tzinfo=UTC), "9876543211"),
        ("18802350103", "Initech pilot", "Closed Won", Decimal("7200.00"), dt.date(2024, 2, 28),
         "New Business", "USD", "61230077", None,
         dt.datetime(2024, 1, 15, 16, 0, tzinfo=UTC), dt.datetime(2024, 2, 28, 22, 59, tzinfo=UTC), "9876543213"),
    ]  # fmt: skip


def test_hubspot_engagements_load_as_tasks_with_call_durations_in_seconds(tmp_path: Path) -> None:
    # Regression: "Call duration (ms)" could not be scaled, so every HubSpot call had no duration.
    drop(tmp_path, "crm/2024-03-06/hubspot-engagements-2024-03-06.csv", hubspot_csv(ENGAGEMENTS_HEADER, ENGAGEMENTS))
    con, load = ingest(tmp_path, "task")
    assert (load.rows_loaded, load.rows_quarantined) == (4, 1)
    loaded = con.execute(
        """
        select "Id", "Type", "TaskSubtype", "Status", "Subject", "ActivityDate", "OwnerId", "WhatId", "WhoId",
            "CallType", "CallDisposition", "CallDurationInSeconds", "CreatedDate"
        from raw.task order by "Id"
        """
    ).fetchall()
    assert loaded == [
        ("70000000001", "Call", "Call", "Completed", "Discovery call", dt.date(2024, 3, 4), "52550153",
         "18802350101", "301", "Outbound", "Connected", 312,  # 312000 ms
         dt.datetime(2024, 3, 4, 15, 21, tzinfo=UTC)),
        ("70000000002", "Email", "Email", "Completed", "Pricing for Globex", dt.date(2024, 3, 4), "52550153",
         "18802350102", "302", None, None, None, dt.datetime(2024, 3, 4, 16, 0, tzinfo=UTC)),
        ("70000000003", "Meeting", "Task", "Completed", "Demo with Initech", dt.date(2024, 3, 5), "61230077",
         "18802350103", "303", None, None, None, dt.datetime(2024, 3, 1, 14, 0, tzinfo=UTC)),
        ("70000000004", "Call", "Call", "Completed", "Inbound call", dt.date(2024, 3, 5), "61230077",
         None, "301;304", "Inbound", "Left Voicemail", 41, dt.datetime(2024, 3, 5, 22, 41, tzinfo=UTC)),
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
    "phone/2024-07-03/hubspot-calls-2024-07-02.csv": ("hubspot", "phone_calls"),
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
            "phone_calls:\n    files: phone/*/cdr.csv\n    columns:\n      call_id: id\n",
            "broken.yaml: table phone_calls: required column direction has no source",
            id="required-column-unmapped",
        ),
        pytest.param(
            "phone_calls:\n    files: phone/*/cdr.csv\n    columns:\n      call_id: id\n"
            "      direction: {value: outbound}\n      from_number: src\n      to_number: dst\n"
            "      started_at: {from: start, format: '%d.%m.%Y %H:%M'}\n      duration_seconds: duration\n",
            "broken.yaml: table phone_calls, column started_at: the format '%d.%m.%Y %H:%M' has no %z, so the values "
            "are local times: name their zone with `timezone:` (or a per-row `timezone_column:`)",
            # Regression: such times were read as UTC without a word, hours off for every source outside UTC.
            id="local-times-without-a-zone",
        ),
        pytest.param(
            "phone_calls:\n    files: phone/*/cdr.csv\n    columns:\n      call_id: id\n"
            "      direction: {value: outbound}\n      from_number: src\n      to_number: dst\n"
            "      started_at: {from: start, timezone: Europe/Berlinn}\n      duration_seconds: duration\n",
            "broken.yaml: table phone_calls, column started_at: timezone 'Europe/Berlinn' is not an IANA time zone "
            "name (e.g. Europe/Berlin, UTC)",
            id="misspelt-zone",
        ),
        pytest.param(
            "phone_calls:\n    files: phone/*/cdr.csv\n    columns:\n      call_id: id\n"
            "      direction: {value: outbound}\n      from_number: src\n      to_number: dst\n"
            "      started_at: {from: start, epoch: seconds}\n"
            "      duration_seconds: {from: duration, epoch: seconds}\n",
            "broken.yaml: table phone_calls, column duration_seconds: `epoch:` reads date-times; the column is of type "
            "integer",
            id="epoch-on-a-number",
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


def test_a_mapping_of_your_own_replaces_the_shipped_one_of_its_vendor_and_the_others_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = pbx_in_new_york(tmp_path)
    monkeypatch.setenv("SOURCE_MAPPINGS_DIR", str(folder))
    mappings = load_mappings()
    shipped = load_mappings(MAPPINGS_DIR)
    assert mappings.tables.keys() == shipped.tables.keys()  # canonical.yaml from the shipped folder
    assert [(m.vendor, m.definition) for m in mappings.files if m.vendor == "asterisk"] == [
        ("asterisk", folder / "asterisk.yaml")
    ]
    assert [m.key for m in mappings.files if m.vendor != "asterisk"] == [
        m.key for m in shipped.files if m.vendor != "asterisk"
    ]


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


# A dialer's call export whose rows carry their own time zone and country, with ring and talk time apart; a user
# names it `calls_export.csv`, which the shipped cloud_telephony glob `phone/*/calls_*.csv` also matches.
RINGLY_EXPORT = (
    "Call ID,Direction,From,To,Country,Started,Time zone,Ring (s),Talk (s),Outcome\r\n"
    "RG-1,out,030 901820,0151 23456789,DE,2024-05-01 09:12:04,Europe/Berlin,11,506,connected\r\n"
    "RG-2,in,(415) 555-0100,(212) 555-0143,US,2024-03-04 09:30:00,America/New_York,31,,missed\r\n"
    "RG-3,out,022 2345 6789,+44 20 7946 0018,IN,2024-05-01 14:00:00,Asia/Kolkata,4,62,connected\r\n"
    "RG-4,out,030 901820,0151 23456789,DE,2024-05-01 10:00:00,Mars/Olympus,5,40,connected\r\n"
    "RG-5,out,030 901820,0151 23456789,DE,2024-05-01 11:00:00,,5,40,connected\r\n"
)
RINGLY_YAML = """\
# Ringly call exports: each row names its own zone and the country of its numbers.
vendor: ringly
tables:
  phone_calls:
    files: "phone/*/calls_export.csv"
    columns:
      call_id: Call ID
      direction: {from: Direction, values: {in: inbound, out: outbound}}
      from_number: {from: From, region_from: Country}
      to_number: {from: To, region_from: Country}
      started_at: {from: Started, format: "%Y-%m-%d %H:%M:%S", timezone_column: Time zone}
      duration_seconds: {sum: [Ring (s), Talk (s)]}
      talk_seconds: Talk (s)
      disposition: {from: Outcome, values: {connected: answered, missed: no_answer}}
"""


def ringly_folder(tmp_path: Path, text: str = RINGLY_YAML) -> Path:
    folder = tmp_path / "my_mappings"
    folder.mkdir(exist_ok=True)
    (folder / "ringly.yaml").write_text(text, encoding="utf-8")
    return folder


def test_a_user_mapping_reads_the_file_it_claims_and_a_file_rejected_by_a_shipped_mapping_is_tried_again(
    tmp_path: Path,
) -> None:
    # Regression: cloud_telephony's glob claimed calls_export.csv, rejected it, and the ledger never let the user's
    # mapping try it.
    drop(tmp_path, "phone/2024-05-02/calls_export.csv", RINGLY_EXPORT)
    landing = tmp_path / "landing"
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ingest_csv_table(con, load_mappings(MAPPINGS_DIR), "phone_calls", landing)
    shipped = MAPPINGS_DIR / "cloud_telephony.yaml"
    assert con.execute("select vendor, status, mapping_file from raw.load_ledger").fetchall() == [
        ("cloud_telephony", "rejected", str(shipped))
    ]

    folder = ringly_folder(tmp_path)
    ingest_csv_table(con, load_mappings(folder), "phone_calls", landing)
    ingest_csv_table(con, load_mappings(folder), "phone_calls", landing)  # a second run changes nothing
    rows = con.execute(
        "select vendor, status, version, rows_read, rows_loaded, rows_quarantined, mapping_file, mapping_hash "
        "from raw.load_ledger order by finished_at"
    ).fetchall()
    assert rows[1:] == [
        ("ringly", "loaded", 1, 5, 3, 2, str(folder / "ringly.yaml"),
         hashlib.sha256((folder / "ringly.yaml").read_bytes()).hexdigest()),
    ]  # fmt: skip
    assert rows[1][3] == rows[1][4] + rows[1][5]  # every row read is loaded or quarantined


def test_a_rejected_file_is_not_read_again_when_the_same_mapping_text_lies_in_another_folder(tmp_path: Path) -> None:
    drop(tmp_path, "phone/2024-05-02/calls_export.csv", RINGLY_EXPORT)
    landing = tmp_path / "landing"
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ingest_csv_table(con, load_mappings(MAPPINGS_DIR), "phone_calls", landing)
    moved = tmp_path / "checkout_moved"
    shutil.copytree(MAPPINGS_DIR, moved)  # the same shipped text, read from elsewhere (a new clone, a new venv)
    ingest_csv_table(con, load_mappings(moved), "phone_calls", landing)
    assert con.execute("select status, count(*) from raw.load_ledger group by all").fetchall() == [("rejected", 1)]


def test_a_call_export_with_a_time_zone_and_a_country_per_row_loads_in_utc_with_ring_plus_talk_as_duration(
    tmp_path: Path,
) -> None:
    # Regression: a mapping could not take a zone per row, so such exports loaded hours off without a warning.
    drop(tmp_path, "phone/2024-05-02/calls_export.csv", RINGLY_EXPORT)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ingest_csv_table(con, load_mappings(ringly_folder(tmp_path)), "phone_calls", tmp_path / "landing")
    calls = con.execute(
        "select call_id, from_number_e164, to_number_e164, started_at, duration_seconds, talk_seconds, disposition "
        "from raw.phone_calls order by call_id"
    ).fetchall()
    assert calls == [
        ("RG-1", "+4930901820", "+4915123456789", dt.datetime(2024, 5, 1, 7, 12, 4, tzinfo=UTC), 517, 506,
         "answered"),  # 09:12:04 in Berlin, summer time; 11 s ringing + 506 s talking
        ("RG-2", "+14155550100", "+12125550143", dt.datetime(2024, 3, 4, 14, 30, tzinfo=UTC), 31, None,
         "no_answer"),  # 09:30 in New York, standard time; no talk time: the ringing alone
        ("RG-3", "+912223456789", "+442079460018", dt.datetime(2024, 5, 1, 8, 30, tzinfo=UTC), 66, 62,
         "answered"),  # 14:00 in Kolkata (UTC+05:30)
    ]  # fmt: skip
    assert con.execute("select record_id, reason from quarantine.phone_calls order by record_id").fetchall() == [
        ("RG-4", "started_at '2024-05-01 10:00:00': time zone 'Mars/Olympus' (column Time zone) is not a known "
         "IANA time zone"),
        ("RG-5", "started_at '2024-05-01 11:00:00' has no time zone: column Time zone is empty, so it cannot be "
         "placed in UTC"),
    ]  # fmt: skip
    assert con.execute("select rows_read, rows_loaded, rows_quarantined, timezone from raw.load_ledger").fetchall() == [
        (5, 3, 2, "per row from column Time zone")
    ]


def test_two_mappings_claiming_one_file_stop_the_run_before_anything_loads_naming_both(tmp_path: Path) -> None:
    drop(tmp_path, "phone/2024-05-02/calls_export.csv", RINGLY_EXPORT)
    folder = ringly_folder(tmp_path)
    broader = RINGLY_YAML.replace("vendor: ringly", "vendor: ringly_eu").replace("calls_export.csv", "calls_*.csv")
    (folder / "ringly_eu.yaml").write_text(broader, encoding="utf-8")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    with pytest.raises(MappingError) as error:
        ingest_everything(con, tmp_path / "landing", mappings=load_mappings(folder))
    assert str(error.value) == (
        "two mappings claim the same landing file: phone/2024-05-02/calls_export.csv is matched by ringly "
        f"(phone_calls, {folder / 'ringly.yaml'}), glob phone/*/calls_export.csv, and by ringly_eu "
        f"(phone_calls, {folder / 'ringly_eu.yaml'}), glob phone/*/calls_*.csv. Narrow one of the globs, or give "
        "the mapping you keep the `vendor:` of the other to replace it; nothing was loaded"
    )
    assert con.execute("select count(*) from information_schema.tables where table_schema = 'raw'").fetchall() == [(0,)]


@pytest.mark.parametrize("state", ["empty", "missing"])
def test_a_source_mappings_dir_that_is_empty_or_missing_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    folder = tmp_path / "my_mappings"
    if state == "empty":
        folder.mkdir()
        (folder / "README.txt").write_text("mappings go here", encoding="utf-8")
    monkeypatch.setenv("SOURCE_MAPPINGS_DIR", str(folder))
    expected = {
        "empty": "the folder holds no mapping (*.yaml); put your vendor mappings there, or unset it to use only the "
        "shipped ones",
        "missing": "no such folder, so none of its mappings can be read",
    }[state]
    with pytest.raises(MappingError) as error:
        load_mappings()
    assert str(error.value) == f"SOURCE_MAPPINGS_DIR={folder}: {expected}"


HUBSPOT_CALLS = (
    "hs_object_id,hs_timestamp,hs_call_direction,hs_call_from_number,hs_call_to_number,hs_call_duration,"
    "hs_call_disposition,hubspot_owner_id\r\n"
    "51234567801,1709561700000,OUTBOUND,+1 212-555-0143,(617) 555-0188,312000,"
    "f240bbac-87c9-4f6e-bf70-924b57d47db7,52550153\r\n"
    "51234567802,1709566212345,INBOUND,+44 20 7946 0018,+1 212-555-0143,41400,"
    "b2cf5968-551e-4856-9783-52b3da59a7d0,61230077\r\n"
    "51234567803,17O9566212345,OUTBOUND,+1 212-555-0143,(617) 555-0188,0,"
    "73a0d17f-1163-4015-bdd5-ec830791da20,61230077\r\n"
)


def test_a_hubspot_calls_export_loads_epoch_millisecond_times_and_millisecond_durations(tmp_path: Path) -> None:
    drop(tmp_path, "phone/2024-03-05/hubspot-calls-2024-03-05.csv", HUBSPOT_CALLS)
    con, load = ingest(tmp_path, "phone_calls")
    assert [(file.vendor, file.outcome.rows_loaded, file.outcome.rows_quarantined) for file in load.files] == [
        ("hubspot", 2, 1)
    ]
    calls = con.execute(
        "select call_id, direction, from_number_e164, to_number_e164, started_at, duration_seconds, disposition, "
        "is_internal from raw.phone_calls order by call_id"
    ).fetchall()
    assert calls == [
        ("51234567801", "outbound", "+12125550143", "+16175550188", dt.datetime(2024, 3, 4, 14, 15, tzinfo=UTC), 312,
         "answered", False),
        ("51234567802", "inbound", "+442079460018", "+12125550143",
         dt.datetime(2024, 3, 4, 15, 30, 12, 345000, tzinfo=UTC), 41, "voicemail", False),
    ]  # fmt: skip
    assert con.execute("select reason from quarantine.phone_calls").fetchall() == [
        ("started_at '17O9566212345' is not a date-time as a count of milliseconds since 1970",)
    ]
