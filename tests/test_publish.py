"""The published copy, built from a small working warehouse: what it holds, how it is documented and protected, and
how it is swapped in while readers read."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import duckdb
import pytest

from orchestration.lib.publish import PublishedTable, protect, publish, safe_identifier, tables_to_publish

CONTACTS = PublishedTable(
    schema="marts",
    name="dim_contact",
    description="One row per contact.",
    columns={"contact_id": "The contact's CRM Id.", "email": "The contact's e-mail.", "phone_e164": "Phone, E.164."},
    pii={"email": "email", "phone_e164": "phone"},
)
DEALS = PublishedTable(schema="marts", name="fct_opportunity", description="One row per deal.",
                       columns={"opportunity_id": "The deal's Id.", "amount": "Amount in its currency."})  # fmt: skip


def working_warehouse(path: Path, deals: int = 3) -> Path:
    """A working warehouse with raw, staging and mart tables, as the pipeline leaves it."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create schema if not exists raw; create schema if not exists staging; create schema if not exists marts"
        )
        con.execute("create or replace table raw.contact as select 'c1' as id, 'Ann@Acme.com' as email")
        con.execute("create or replace table staging.stg_crm__contacts as select 'c1' as contact_id")
        con.execute(
            "create or replace table marts.dim_contact as select * from (values "
            "('c1', 'Ann@Acme.com', '+442079460018'), ('c2', null, null)) as t(contact_id, email, phone_e164)"
        )
        con.execute(
            f"create or replace table marts.fct_opportunity as select 'o' || i as opportunity_id, "
            f"(i * 100)::decimal(18, 2) as amount from range({deals}) as r(i)"
        )
        con.execute("create or replace table marts.stale_model as select 1 as x")  # a model no longer in dbt
    return path


def test_the_published_copy_holds_only_the_dbt_models_of_marts_and_ml_with_their_docs(tmp_path: Path) -> None:
    working = working_warehouse(tmp_path / "warehouse.duckdb")
    publication = publish(working, tmp_path / "published", [CONTACTS, DEALS], run_id="run-1", checks_passed=7,
                          log=lambda _: None)  # fmt: skip
    with duckdb.connect(str(publication.path), read_only=True) as con:
        tables = set(con.execute("select schema_name || '.' || table_name from duckdb_tables()").fetchall())
        table_comment = con.execute(
            "select comment from duckdb_tables() where table_name = 'fct_opportunity'"
        ).fetchall()[0][0]
        column_comment = con.execute(
            "select comment from duckdb_columns() where table_name = 'fct_opportunity' and column_name = 'amount'"
        ).fetchall()[0][0]
        row = con.execute("select run_id, row_counts, checks_passed, pii_protection from marts.publication").fetchall()
    assert tables == {("marts.dim_contact",), ("marts.fct_opportunity",), ("marts.publication",)}
    assert (table_comment, column_comment) == ("One row per deal.", "Amount in its currency.")
    assert row == [("run-1", json.dumps({"marts.dim_contact": 2, "marts.fct_opportunity": 3}), 7, "masked")]
    assert publication.row_counts == {"marts.dim_contact": 2, "marts.fct_opportunity": 3}


def test_every_published_table_is_also_a_parquet_file_per_schema_and_table(tmp_path: Path) -> None:
    working = working_warehouse(tmp_path / "warehouse.duckdb")
    publish(working, tmp_path / "published", [CONTACTS, DEALS], run_id="run-1", log=lambda _: None)
    parquet = tmp_path / "published" / "parquet"
    files = sorted(str(path.relative_to(parquet)) for path in parquet.rglob("*.parquet"))
    assert files == ["marts/dim_contact.parquet", "marts/fct_opportunity.parquet", "marts/publication.parquet"]
    amounts = duckdb.sql(f"select sum(amount) from '{parquet}/marts/fct_opportunity.parquet'").fetchall()[0][0]
    assert amounts == 300


def test_contact_emails_and_phones_leave_as_a_keyed_hash_with_a_key_and_masked_without(tmp_path: Path) -> None:
    working = working_warehouse(tmp_path / "warehouse.duckdb")
    masked = publish(working, tmp_path / "masked", [CONTACTS], run_id="r", log=lambda _: None)
    hashed = publish(working, tmp_path / "hashed", [CONTACTS], run_id="r", pii_key="s3cret", log=lambda _: None)
    query = "select email, phone_e164 from marts.dim_contact order by contact_id"
    with duckdb.connect(str(masked.path), read_only=True) as con:
        assert con.execute(query).fetchall() == [("***@acme.com", "+**********18"), (None, None)]
    with duckdb.connect(str(hashed.path), read_only=True) as con:
        email, phone = con.execute(query).fetchall()[0]
        comment = con.execute(
            "select comment from duckdb_columns() where table_name = 'dim_contact' and column_name = 'email'"
        ).fetchall()[0][0]
    assert email == hmac.new(b"s3cret", b"ann@acme.com", hashlib.sha256).hexdigest()
    assert phone == hmac.new(b"s3cret", b"+442079460018", hashlib.sha256).hexdigest()
    assert comment == "The contact's e-mail. Published as a keyed hash (HMAC-SHA256)."
    for folder in ("masked", "hashed"):
        text = b"".join(path.read_bytes() for path in (tmp_path / folder).rglob("*") if path.is_file())
        assert b"Ann@Acme.com" not in text and b"ann@acme.com" not in text and b"2079460018" not in text


def test_a_phone_number_is_masked_to_its_last_two_digits_and_a_malformed_email_entirely() -> None:
    assert protect("phone", "+14155550123", key=None) == "+*********23"
    # Regression: a value without "@" was published whole as its own "domain"
    assert protect("email", "ann.acme.com", key=None) == "***"


def test_a_reader_holding_the_old_copy_keeps_reading_it_and_a_new_connection_sees_the_new_one(tmp_path: Path) -> None:
    out = tmp_path / "published"
    publish(working_warehouse(tmp_path / "w.duckdb", deals=3), out, [DEALS], run_id="first", log=lambda _: None)
    holder = duckdb.connect(str(out / "sales.duckdb"), read_only=True)
    publish(working_warehouse(tmp_path / "w.duckdb", deals=5), out, [DEALS], run_id="second", log=lambda _: None)
    query = "select (select run_id from marts.publication), (select count(*) from marts.fct_opportunity)"
    assert holder.execute(query).fetchall() == [("first", 3)]
    holder.close()
    with duckdb.connect(str(out / "sales.duckdb"), read_only=True) as con:
        assert con.execute(query).fetchall() == [("second", 5)]
    assert os.readlink(out / "parquet") == "parquet-second"


def test_when_the_postgresql_copy_fails_nothing_of_the_new_publication_is_visible(tmp_path: Path) -> None:
    out = tmp_path / "published"
    publish(working_warehouse(tmp_path / "w.duckdb", deals=3), out, [DEALS], run_id="first", log=lambda _: None)

    def unreachable(path: Path) -> None:
        raise ConnectionError("postgres is down")

    working = working_warehouse(tmp_path / "w.duckdb", deals=5)
    with pytest.raises(ConnectionError):
        publish(working, out, [DEALS], run_id="second", also=unreachable, log=lambda _: None)
    with duckdb.connect(str(out / "sales.duckdb"), read_only=True) as con:
        assert con.execute("select run_id from marts.publication").fetchall() == [("first",)]
    assert os.readlink(out / "parquet") == "parquet-first"
    publish(working, out, [DEALS], run_id="third", log=lambda _: None)
    assert not list(out.glob(".*building*")), "a later publication clears what the failed one left"


def test_old_parquet_folders_are_pruned_keeping_the_current_and_the_previous(tmp_path: Path) -> None:
    out = tmp_path / "published"
    working = working_warehouse(tmp_path / "w.duckdb")
    for run in ("a", "b", "c", "d"):
        publish(working, out, [DEALS], run_id=run, log=lambda _: None)
    assert sorted(path.name for path in out.glob("parquet-*")) == ["parquet-c", "parquet-d"]


def test_the_tables_to_publish_come_from_the_manifest_with_their_pii_tags() -> None:
    manifest = {
        "nodes": {
            "model.p.dim_contact": {
                "resource_type": "model", "name": "dim_contact", "schema": "marts", "description": "Contacts.",
                "columns": {"email": {"description": "E-mail.", "config": {"meta": {"pii": "email"}}},
                            "title": {"description": "Job title."}},
            },
            "model.p.stg_x": {"resource_type": "model", "name": "stg_x", "schema": "staging", "columns": {}},
            "test.p.unique_x": {"resource_type": "test", "name": "unique_x", "schema": "marts", "columns": {}},
        }
    }  # fmt: skip
    (table,) = tables_to_publish(manifest)
    assert (table.relation, dict(table.pii), table.columns["title"]) == ("marts.dim_contact", {"email": "email"},
                                                                          "Job title.")  # fmt: skip


def test_a_pii_tag_of_an_unknown_kind_is_an_error_not_published_in_clear() -> None:
    column = {"description": "", "config": {"meta": {"pii": "ssn"}}}
    manifest = {"nodes": {"model.p.t": {"resource_type": "model", "name": "t", "schema": "marts",
                                        "columns": {"x": column}}}}  # fmt: skip
    with pytest.raises(ValueError, match="pii must be one of"):
        tables_to_publish(manifest)


@pytest.mark.parametrize("name", ["marts; drop table x", "1abc", "", 'a"b'])
def test_a_name_that_is_not_a_plain_identifier_never_reaches_sql(name: str) -> None:
    with pytest.raises(ValueError, match="is not a plain identifier"):
        safe_identifier(name, "schema")


def test_a_folder_where_the_parquet_link_goes_is_never_moved_or_deleted(tmp_path: Path) -> None:
    out = tmp_path / "published"
    (out / "parquet").mkdir(parents=True)
    (out / "parquet" / "notes.txt").write_text("mine")
    working = working_warehouse(tmp_path / "w.duckdb")
    with pytest.raises(RuntimeError, match="is a folder, not the link"):
        publish(working, out, [DEALS], run_id="first", log=lambda _: None)
    assert (out / "parquet" / "notes.txt").read_text() == "mine" and not (out / "sales.duckdb").exists()
