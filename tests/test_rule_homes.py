"""Each rule has one home: row validity in the loader, row rules on models and sources as dbt tests, distributions,
volumes and freshness in Great Expectations. The rules of each home are collected as comparable identities, and a
rule found in two homes is named; so is a business rule (pipeline eligibility, role credit, call dispositions)
written in a second place."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import pytest

from expectations.core import TableSuite
from ingestion.ics import ATTENDEE_SCHEMA, MISSING_DTSTART, MISSING_UID, OCCURRENCE_SCHEMA
from ingestion.mapping import load_mappings
from orchestration.lib.dbt_project import PROJECT_DIR, run_dbt
from orchestration.lib.quality import all_suites

REPOSITORY = PROJECT_DIR.parent


class Rule(NamedTuple):
    """One rule as each home can state it: a column's `kind` (not_null, unique, accepted_values, relationship, type,
    not_after_export, null_rate, mean, or min / max with the bound in `detail`), or a rule of whole rows (`column`
    None, kind `rule`, its name in `detail`), on `table` as `schema.name`. A rule with a row filter keeps it in
    `detail`, since it judges other rows."""

    table: str
    column: str | None
    kind: str
    detail: str | None = None


# What the calendar reader quarantines (ingestion/ics.py), by the column the problem leaves empty.
CALENDAR_REQUIRED = {MISSING_UID: ("calendar_events", "uid"), MISSING_DTSTART: ("calendar_events", "start_at")}


def loader_rules() -> set[Rule]:
    """The checks `ingestion/mappings/canonical.yaml` declares per column, and the calendar reader's own."""
    rules = set()
    for table in load_mappings().tables.values():
        for column in table.columns:
            name = f"raw.{table.name}"
            rules.add(Rule(name, column.name, "type", column.type))
            if column.required:
                rules.add(Rule(name, column.name, "not_null"))
            if column.min is not None:
                rules.add(Rule(name, column.name, "min", _number(column.min)))
            if column.allowed:
                rules.add(Rule(name, column.name, "accepted_values"))
            if column.not_after_export:
                rules.add(Rule(name, column.name, "not_after_export"))
    for table, schema in (("calendar_events", OCCURRENCE_SCHEMA), ("calendar_attendees", ATTENDEE_SCHEMA)):
        rules |= {Rule(f"raw.{table}", field.name, "type", str(field.type)) for field in schema}
    rules |= {Rule(f"raw.{table}", column, "not_null") for table, column in CALENDAR_REQUIRED.values()}
    return rules


def _number(value: Any) -> str:
    return f"{float(value):g}"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    target = tmp_path_factory.mktemp("dbt_parse")
    result = run_dbt(["parse", "--quiet"], target / "unused.duckdb", target_path=target)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((target / "manifest.json").read_text())


def staging_lineage(manifest: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    """(staging model, column) -> (raw table, column) for each staging column that renames a raw column unchanged:
    a test on it restates a rule on the raw column (it judges a subset of the same values)."""
    lineage = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["config"].get("schema") != "staging":
            continue
        # the ledger is read for the export dates, never renamed into a staging column
        sources = [name for source, name in node.get("sources", []) if source == "raw" and name != "load_ledger"]
        if len(sources) != 1:
            continue
        for line in node["raw_code"].splitlines():
            renamed = re.fullmatch(r'\s*"?(\w+)"?(?:\s+as\s+(\w+))?,?\s*', line)
            if renamed and renamed.group(1) not in ("select", "from", "with", "where"):
                lineage[(node["name"], renamed.group(2) or renamed.group(1))] = (f"raw.{sources[0]}", renamed.group(1))
    return lineage


DBT_KINDS = {
    "not_null": "not_null",
    "unique": "unique",
    "unique_combination": "unique",
    "accepted_values": "accepted_values",
    "in_crm_picklist": "accepted_values",
    "relationships": "relationship",
    "not_after_export": "not_after_export",
}


def dbt_rules(manifest: Mapping[str, Any]) -> set[Rule]:
    """The data tests of the dbt project: generic tests by their column and kind, the others (singular tests, row
    expressions) by their name."""
    nodes, sources = manifest["nodes"], manifest["sources"]
    lineage = staging_lineage(manifest)
    rules = set()
    for test in nodes.values():
        if test["resource_type"] != "test":
            continue
        parents = [*test["depends_on"]["nodes"]]
        attached = test.get("attached_node") or test["config"].get("meta", {}).get("dagster", {}).get("ref", {})
        if isinstance(attached, dict):  # a singular test names its model for Dagster
            attached = next((key for key in parents if key.endswith(f".{attached.get('name')}")), None)
        if not attached and len(parents) == 1 and not parents[0].startswith("source."):
            attached = parents[0]  # a singular test on one model, which Dagster attaches to it
        if attached:
            model = nodes[attached]
            table = f"{model['config'].get('schema')}.{model['name']}"
        else:
            source = sources[next(key for key in parents if key.startswith("source."))]
            table = f"raw.{source['name']}"
        metadata = test.get("test_metadata") or {}
        kind = metadata.get("name")
        arguments = metadata.get("kwargs", {})
        column = test.get("column_name") or ("+".join(arguments["columns"]) if kind == "unique_combination" else None)
        if column and table.startswith("staging.") and (table[len("staging.") :], column) in lineage:
            table, column = lineage[(table[len("staging.") :], column)]
        where = test["config"].get("where")
        detail = f"where {where}" if where else None
        if kind == "accepted_range":
            rules |= {
                Rule(table, column, side, _number(arguments[bound]))
                for side, bound in (("min", "min_value"), ("max", "max_value"))
                if arguments.get(bound) is not None
            }
        elif kind in DBT_KINDS and column:
            rules.add(Rule(table, column, DBT_KINDS[kind], detail))
        else:  # a singular test, or a rule between the columns of a row
            rules.add(Rule(table, None, "rule", test["name"]))
    return rules


GX_KINDS = {
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_in_set": "accepted_values",
    "expect_column_distinct_values_to_contain_set": "type",
    "expect_column_mean_to_be_between": "mean",
}


def gx_rules(suites: Iterable[TableSuite]) -> set[Rule]:
    """The expectations of the suites: on a table's own columns by column and kind, the others (derived columns, a
    batch of SQL of its own: a reconciliation, the volume, the freshness) by their check name."""
    rules = set()
    for suite in suites:
        for batch in suite.batches:
            where = batch.sql.split(" where ", 1)[1] if batch.ids_from and " where " in batch.sql else None
            own_columns = set(re.findall(r'(?<=, )"(\w+)"(?=,| from)', batch.sql)) if batch.ids_from else set()
            for expectation in batch.expectations:
                config = expectation.configuration
                column = config.kwargs.get("column")
                if column not in own_columns:
                    rules.add(Rule(suite.name, None, "rule", expectation.meta["check"]))
                    continue
                kind = GX_KINDS.get(config.type)
                if kind == "not_null" and (config.kwargs.get("mostly") or 1) < 1:
                    kind = "null_rate"
                if config.type == "expect_column_values_to_be_between":
                    for side in ("min", "max"):
                        bound = config.kwargs.get(f"{side}_value")
                        if bound is not None:
                            rules.add(Rule(suite.name, column, side, _number(bound)))
                    continue
                rules.add(Rule(suite.name, column, kind or config.type, f"where {where}" if where else None))
    return rules


def rules_in_two_homes(homes: Mapping[str, set[Rule]]) -> dict[Rule, list[str]]:
    """Each rule stated in more than one home, with the homes that state it."""
    found: dict[Rule, list[str]] = defaultdict(list)
    for home, rules in homes.items():
        for rule in rules:
            found[rule].append(home)
    return {rule: sorted(where) for rule, where in found.items() if len(where) > 1}


def test_a_rule_written_in_two_homes_is_named() -> None:
    twice = Rule("marts.fct_bookings", "amount", "min", "0")
    homes = {"dbt": {twice, Rule("marts.fct_bookings", "booking_id", "unique")}, "gx": {twice}, "loader": set()}
    assert rules_in_two_homes(homes) == {twice: ["dbt", "gx"]}


@pytest.mark.slow  # `dbt parse` of the project
def test_no_rule_is_written_in_two_homes(manifest: dict[str, Any]) -> None:
    homes = {"loader": loader_rules(), "dbt": dbt_rules(manifest), "great_expectations": gx_rules(all_suites())}
    assert all(homes.values()), "each home states some rules"
    twice = rules_in_two_homes(homes)
    assert twice == {}, "rules written twice:\n" + "\n".join(f"  {rule} in {homes}" for rule, homes in twice.items())


@pytest.mark.slow  # `dbt parse` of the project
def test_the_moved_mart_rules_are_dbt_tests(manifest: dict[str, Any]) -> None:
    rules = dbt_rules(manifest)
    assert Rule("marts.fct_bookings", "amount", "min", "0") in rules
    assert Rule("marts.fct_opportunity", "probability", "max", "100") in rules
    assert Rule("marts.fct_activity", "rep_id", "not_null", "where is_customer_facing") in rules
    reconciliations = {
        ("marts.fct_opportunity_stage_history", "stage_visits_do_not_overlap"),
        ("marts.fct_opportunity_stage_history", "stage_visits_cover_deal_life"),
        ("marts.fct_pipeline_daily", "latest_day_reconciles_with_open_deals"),
        ("marts.fct_bookings", "bookings_reconcile_with_won_deals"),
        ("marts.mart_commissions", "total_pay_adds_up"),
    }
    assert {Rule(table, None, "rule", name) for table, name in reconciliations} <= rules


def test_no_raw_suite_restates_a_loader_rule() -> None:
    # a null rate on a column the loader requires is 0 whatever comes in: the loader's `required`, restated
    loader = loader_rules()
    restated = sorted(
        rule
        for rule in gx_rules(suite for suite in all_suites() if suite.asset[0] == "raw")
        if rule in loader or (rule.kind == "null_rate" and rule._replace(kind="not_null", detail=None) in loader)
    )
    assert restated == []


def test_great_expectations_keeps_no_row_rule_on_a_mart() -> None:
    # ranges, keys, accepted values and reconciliations on marts are dbt tests, which skip what lies below a failure
    row_kinds = {"not_null", "unique", "accepted_values", "relationship", "min", "max"}
    mart_rules = gx_rules(suite for suite in all_suites() if suite.asset[0] == "marts")
    assert mart_rules and {rule for rule in mart_rules if rule.kind in row_kinds} == set()


# A business rule and the one file allowed to state it (dbt_project/...), by a phrase that only its statement uses.
BUSINESS_RULES = {
    "pipeline eligibility": (r"'Omitted'", "macros/pipeline.sql"),
    "call dispositions": (r"'(Connected|Left Voicemail|No Answer|voicemail|no_answer|busy)'", None),
    "role to credit": (r"sales_role\s*(=|in)\s*\(?\s*'", None),
}


@pytest.mark.parametrize("rule", sorted(BUSINESS_RULES))
def test_each_business_rule_is_written_once(rule: str) -> None:
    pattern, home = BUSINESS_RULES[rule]
    searched = [
        *(PROJECT_DIR / "models").rglob("*.sql"),
        *(PROJECT_DIR / "macros").rglob("*.sql"),
        *(REPOSITORY / "expectations").rglob("*.py"),
    ]
    if rule == "role to credit":  # the marts credit; int_reps_versioned's team membership is another rule
        searched = list((PROJECT_DIR / "models" / "marts").rglob("*.sql"))
    stated = sorted(
        str(path.relative_to(REPOSITORY)) for path in searched if re.search(pattern, path.read_text(encoding="utf-8"))
    )
    assert stated == ([f"dbt_project/{home}"] if home else [])


def test_the_business_rules_written_as_seeds_are_read_where_they_apply() -> None:
    seeds = {path.stem for path in (PROJECT_DIR / "seeds").glob("*.csv")}
    assert {"call_dispositions", "sales_role_credits"} <= seeds
    readers = {
        "call_dispositions": [
            "models/staging/phone/stg_phone__calls.sql",
            "models/intermediate/int_activities_unioned.sql",
        ],
        "sales_role_credits": ["models/marts/finance/mart_commissions.sql"],
        "is_pipeline_eligible": [
            "models/marts/pipeline/fct_opportunity.sql",
            "models/marts/pipeline/fct_pipeline_daily.sql",
            "models/marts/pipeline/mart_pipeline_summary.sql",
        ],
    }
    for name, paths in readers.items():
        for path in paths:
            assert name in (PROJECT_DIR / path).read_text(encoding="utf-8"), f"{path} does not read {name}"
