"""The order tables load in (ingestion/ingest.py: `load_order`, `parents_of`) and the names and globs a mapping may
use (ingestion/mapping.py: `identifier`, `landing_glob`), tested alone on small `Mappings` built here: no landing
folder, no warehouse. The fast tier (`make test-fast`)."""

from __future__ import annotations

import pytest

from ingestion.ingest import load_order, parents_of
from ingestion.mapping import CanonicalTable, MappingError, Mappings, identifier, landing_glob, load_mappings


def mappings(**load_after: tuple[str, ...]) -> Mappings:
    """Canonical tables named by the keywords, each loading after the tables its value names."""
    tables = {name: CanonicalTable(name, "crm", (), load_after=parents) for name, parents in load_after.items()}
    return Mappings(tables, ())


def test_every_table_loads_after_the_tables_it_names_and_each_once() -> None:
    order = load_order(mappings(calls=("user", "contact"), contact=("account",), account=(), user=()))
    assert sorted(order) == ["account", "calls", "contact", "user"]
    assert order.index("account") < order.index("contact") < order.index("calls")
    assert order.index("user") < order.index("calls")


def test_tables_without_parents_keep_the_order_they_are_declared_in() -> None:
    assert load_order(mappings(opportunity=(), account=(), user=())) == ["opportunity", "account", "user"]


def test_a_cycle_is_refused_naming_the_tables_in_it() -> None:
    with pytest.raises(ValueError, match="cycle: a -> b -> c -> a"):
        load_order(mappings(a=("b",), b=("c",), c=("a",)))


def test_the_parents_of_a_table_are_sorted_without_the_table_itself() -> None:
    assert parents_of(mappings(calls=("user", "account", "calls", "user"), user=(), account=()), "calls") == [
        "account", "user",
    ]  # fmt: skip


def test_the_shipped_call_records_load_after_the_crm_tables_whose_numbers_they_reuse() -> None:
    shipped = load_mappings()
    order = load_order(shipped)
    assert sorted(order) == sorted(shipped.tables)
    assert parents_of(shipped, "phone_calls") == ["account", "contact", "lead", "user"]
    assert all(order.index(parent) < order.index("phone_calls") for parent in parents_of(shipped, "phone_calls"))


@pytest.mark.parametrize("name", ["opportunity", "_extra", "Opportunity__c", "a" * 63])
def test_a_plain_name_is_a_valid_canonical_name(name: str) -> None:
    assert identifier("canonical.yaml", "table name", name) == name


@pytest.mark.parametrize("name", ["1table", "raw.opportunity", "drop table x;", "", "a" * 64, 7, None])
def test_a_name_that_would_need_quoting_in_sql_is_refused_naming_the_file_and_key(name: object) -> None:
    with pytest.raises(MappingError, match=r"^canonical\.yaml: table name .* is not a valid name"):
        identifier("canonical.yaml", "table name", name)


@pytest.mark.parametrize("pattern", ["crm/*/Account.csv", "phone/**/*.csv", "calendar/*/*.ics"])
def test_a_relative_glob_under_the_landing_folder_is_kept(pattern: str) -> None:
    assert landing_glob("vendor.yaml", pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("/etc/passwd", "absolute path"),
        ("C:\\exports\\*.csv", "absolute path"),
        ("~/exports/*.csv", "absolute path"),
        ("crm/../../secrets/*.csv", "climbs out of the landing folder"),
        ("", "not a glob under the landing folder"),
        (None, "not a glob under the landing folder"),
    ],
)
def test_a_glob_that_could_leave_the_landing_folder_is_refused(pattern: object, words: str) -> None:
    with pytest.raises(MappingError, match=words):
        landing_glob("vendor.yaml", pattern)
