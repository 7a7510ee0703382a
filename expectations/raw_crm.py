"""Suites on the CRM's raw tables (Salesforce objects as loaded: one row per exported record version)."""

from __future__ import annotations

from expectations.raw_common import DAY_SECONDS, RawTable

# Stage names are not here: they are the CRM's own, defined by its OpportunityStage export (or the shipped
# dbt_project/seeds/stage_definitions.csv), and dbt's undefined_stages test names any stage they do not define.
# The CRM's pick-lists (forecast categories, lead and task statuses, task subtypes) are configured once, in
# dbt_project/seeds/crm_picklists.csv, and checked by dbt's in_crm_picklist tests (docs/crm_values.md).
CURRENCIES = ("USD", "EUR", "GBP")


TABLES = (
    RawTable("user_role", ("Id",), required={"Id": 1.0}, volume=False),
    RawTable(
        "user",
        ("Id",),
        required={"Id": 1.0, "Email": 0.99, "UserRoleId": 0.9},
        not_after_export=("CreatedDate",),
        volume=False,
    ),
    RawTable(
        "account",
        ("Id",),
        required={"Id": 1.0, "Name": 0.99, "OwnerId": 0.99},
        ranges={"NumberOfEmployees": (0, None)},
        not_after_export=("CreatedDate",),
    ),
    RawTable("contact", ("Id",), required={"Id": 1.0, "AccountId": 0.95}, not_after_export=("CreatedDate",)),
    RawTable(
        "lead",
        ("Id",),
        required={"Id": 1.0, "Status": 0.99},
        not_after_export=("CreatedDate",),
    ),
    # the CRM's stage definitions: exported once and when the sales process changes, so no volume to judge
    RawTable(
        "opportunity_stage",
        ("Id",),
        required={"Id": 1.0, "MasterLabel": 1.0, "SortOrder": 0.99},
        ranges={"DefaultProbability": (0, 100)},
        volume=False,
    ),
    RawTable(
        "opportunity",
        ("Id",),
        required={
            "Id": 1.0,
            "StageName": 1.0,
            # an empty Amount is allowed (Salesforce has early-stage deals without one); most deals have one
            "Amount": 0.5,
            "CloseDate": 1.0,
            "OwnerId": 0.99,
            "AccountId": 0.99,
            "CurrencyIsoCode": 0.99,
        },
        value_sets={
            "CurrencyIsoCode": CURRENCIES,
        },
        ranges={"Amount": (0, None), "Probability": (0, 100)},
        not_after_export=("CreatedDate",),
        freshness_of="crm",
    ),
    RawTable(
        "opportunity_history",
        ("Id",),
        required={"Id": 1.0, "OpportunityId": 1.0, "StageName": 1.0},
        ranges={"Amount": (0, None), "Probability": (0, 100)},
        not_after_export=("CreatedDate",),
    ),
    RawTable(
        "task",
        ("Id",),
        required={"Id": 1.0, "OwnerId": 0.99},
        ranges={"CallDurationInSeconds": (0, DAY_SECONDS)},
        not_after_export=("CreatedDate",),
    ),
    RawTable(
        "event",
        ("Id",),
        required={"Id": 1.0, "OwnerId": 0.99, "StartDateTime": 0.99},
        ranges={"DurationInMinutes": (0, 24 * 60)},
        not_after_export=("CreatedDate",),
    ),
)
