"""What configuration and landing folders cannot do: read a file outside the landing folder (by a glob or a link),
or put SQL where a table or column name belongs."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from ingestion.calendar_ingest import ingest_calendars
from ingestion.ingest import ingest_csv_table
from ingestion.mapping import MAPPINGS_DIR, MappingError, load_mappings

USER_ROLE = '"Id","Name","ParentRoleId","DeveloperName","LastModifiedDate","SystemModstamp"\n'
ROLE = '"00E000000000001AAA","CEO","","CEO","2024-01-02T10:00:00.000Z","2024-01-02T10:00:00.000Z"\n'
CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:secret-1\r\n"
    "DTSTAMP:20240102T100000Z\r\nDTSTART:20240102T100000Z\r\nDTEND:20240102T110000Z\r\nSUMMARY:secret\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def user_folder(tmp_path: Path, vendor_yaml: str, canonical: str | None = None) -> Path:
    folder = tmp_path / "mappings"
    folder.mkdir()
    if canonical is None:
        shutil.copy(MAPPINGS_DIR / "canonical.yaml", folder / "canonical.yaml")
    else:
        (folder / "canonical.yaml").write_text(canonical, encoding="utf-8")
    (folder / "mine.yaml").write_text(f"vendor: mine\ntables:\n{vendor_yaml}", encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("../../etc/*.csv", "mine.yaml: table user_role: files '../../etc/*.csv' climbs out of the landing folder"),
        ("crm/../../*.csv", "mine.yaml: table user_role: files 'crm/../../*.csv' climbs out of the landing folder"),
        ("/etc/*.csv", "mine.yaml: table user_role: files '/etc/*.csv' is an absolute path"),
        ("~/exports/*.csv", "mine.yaml: table user_role: files '~/exports/*.csv' is an absolute path"),
    ],
)
def test_a_glob_that_leaves_the_landing_folder_is_refused_when_the_mapping_loads(tmp_path, pattern, message):
    folder = user_folder(tmp_path, f"  user_role: {{files: '{pattern}'}}\n")
    with pytest.raises(MappingError) as error:
        load_mappings(folder)
    assert str(error.value).startswith(message)


def test_a_link_in_the_landing_folder_to_a_file_outside_it_is_rejected_unread(tmp_path):
    secret = tmp_path / "elsewhere" / "UserRole.csv"
    secret.parent.mkdir()
    secret.write_text(USER_ROLE + ROLE, encoding="utf-8")
    landing = tmp_path / "landing"
    (landing / "crm" / "2024-01-03").mkdir(parents=True)
    (landing / "crm" / "2024-01-03" / "UserRole.csv").symlink_to(secret)
    (landing / "crm" / "2024-01-04").symlink_to(secret.parent, target_is_directory=True)
    con = duckdb.connect()
    result = ingest_csv_table(con, load_mappings(), "user_role", landing)
    assert [(report.path, report.outcome.status) for report in result.files] == [
        ("crm/2024-01-03/UserRole.csv", "rejected"),
        ("crm/2024-01-04/UserRole.csv", "rejected"),
    ]
    assert result.files[0].outcome.reason == (
        f"crm/2024-01-03/UserRole.csv leads to {secret.resolve()}, outside the landing folder {landing.resolve()}: "
        "refused and not read; copy the file into the landing folder instead of linking to it"
    )
    assert con.execute("select count(*) from raw.user_role").fetchone()[0] == 0
    # ledgered by where the link leads, not by the content of a file it never opened
    assert all(
        digest.startswith("outside:") and size == 0
        for digest, size in con.execute("select content_hash, size_bytes from raw.load_ledger").fetchall()
    )
    again = ingest_csv_table(con, load_mappings(), "user_role", landing)
    assert again.files == []  # refused once, not again on every run


def test_a_link_inside_the_landing_folder_to_another_landing_file_loads(tmp_path):
    landing = tmp_path / "landing"
    original = landing / "crm" / "2024-01-03" / "UserRole.csv"
    original.parent.mkdir(parents=True)
    original.write_text(USER_ROLE + ROLE, encoding="utf-8")
    (landing / "crm" / "2024-01-04").mkdir()
    (landing / "crm" / "2024-01-04" / "UserRole.csv").symlink_to(original)
    result = ingest_csv_table(duckdb.connect(), load_mappings(), "user_role", landing)
    assert sorted((report.path, report.outcome.status) for report in result.files) == [
        ("crm/2024-01-03/UserRole.csv", "loaded"),
        ("crm/2024-01-04/UserRole.csv", "skipped"),
    ]


def test_a_calendar_export_linked_from_outside_the_landing_folder_is_rejected_unread(tmp_path):
    secret = tmp_path / "elsewhere" / "ceo.ics"
    secret.parent.mkdir()
    secret.write_text(CALENDAR, encoding="utf-8")
    landing = tmp_path / "landing"
    (landing / "calendar" / "2024-01-03").mkdir(parents=True)
    (landing / "calendar" / "2024-01-03" / "ceo.ics").symlink_to(secret)
    con = duckdb.connect()
    result = ingest_calendars(con, landing)
    assert [(report.path, report.outcome.status) for report in result.files] == [
        ("calendar/2024-01-03/ceo.ics", "rejected")
    ]
    assert "outside the landing folder" in result.files[0].outcome.reason
    assert con.execute("select count(*) from raw.calendar_events").fetchone()[0] == 0


INJECTION = "opportunity; drop table raw.load_ledger"


def test_a_canonical_table_named_with_sql_is_refused_when_the_mapping_loads_and_nothing_runs(tmp_path):
    canonical = (MAPPINGS_DIR / "canonical.yaml").read_text(encoding="utf-8")
    canonical = canonical.replace("\n  opportunity:\n", f"\n  '{INJECTION}':\n", 1)
    folder = user_folder(tmp_path, "  user_role: {files: 'crm/*/UserRole.csv'}\n", canonical)
    with pytest.raises(MappingError) as error:
        load_mappings(folder)
    assert str(error.value) == (
        f"canonical.yaml: table name '{INJECTION}' is not a valid name: use letters, digits and underscores, "
        "starting with a letter or an underscore, at most 63 characters"
    )


@pytest.mark.parametrize(
    ("vendor_yaml", "message"),
    [
        (
            f"  '{INJECTION}': {{files: 'crm/*/Opportunity.csv'}}\n",
            f"mine.yaml: table name '{INJECTION}' is not a valid name",
        ),
        (
            f"  user_role:\n    files: 'crm/*/UserRole.csv'\n    columns:\n      Id: Id\n      '{INJECTION}': Name\n",
            f"mine.yaml: table user_role: column name '{INJECTION}' is not a valid name",
        ),
    ],
    ids=["table", "column"],
)
def test_a_vendor_mapping_naming_a_table_or_column_with_sql_is_refused(tmp_path, vendor_yaml, message):
    with pytest.raises(MappingError) as error:
        load_mappings(user_folder(tmp_path, vendor_yaml))
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("      Name: {type: string}\n", f"      '{INJECTION}': {{type: string}}\n", "column name"),
        ("    key: Id\n", f"    key: '{INJECTION}'\n", "key"),
        ("      Name: {type: string}\n", "      Name: {type: string, min: '0; drop table x'}\n", "min"),
    ],
    ids=["column", "key", "min"],
)
def test_a_canonical_column_key_or_bound_that_is_not_a_name_or_number_is_refused(tmp_path, old, new, message):
    canonical = (MAPPINGS_DIR / "canonical.yaml").read_text(encoding="utf-8").replace(old, new, 1)
    with pytest.raises(MappingError) as error:
        load_mappings(user_folder(tmp_path, "  user_role: {files: 'crm/*/UserRole.csv'}\n", canonical))
    assert str(error.value).startswith("canonical.yaml: table user_role") and message in str(error.value)


def test_a_file_column_with_spaces_and_quotes_is_read_as_a_name_not_as_sql(tmp_path):
    tricky = 'Role "Name"; drop table raw.load_ledger --'
    folder = user_folder(
        tmp_path,
        f"  user_role:\n    files: 'crm/*/UserRole.csv'\n    columns:\n      Id: Id\n      Name: '{tricky}'\n",
    )
    landing = tmp_path / "landing"
    (landing / "crm" / "2024-01-03").mkdir(parents=True)
    header = '"Id","' + tricky.replace('"', '""') + '"\n'
    (landing / "crm" / "2024-01-03" / "UserRole.csv").write_text(header + '"00E1","CEO"\n', encoding="utf-8")
    con = duckdb.connect()
    result = ingest_csv_table(con, load_mappings(folder), "user_role", landing)
    assert [report.outcome.status for report in result.files] == ["loaded"]
    assert con.execute('select "Id", "Name" from raw.user_role').fetchall() == [("00E1", "CEO")]
    assert con.execute("select count(*) from raw.load_ledger").fetchone()[0] == 1
