"""Suites on the CRM's raw tables (Salesforce objects as loaded: one row per exported record version)."""

from __future__ import annotations

from expectations.raw_common import DAY_SECONDS, RawTable

STAGES = ("Prospecting", "Qualification", "Proposal", "Closing", "Closed Won", "Closed Lost")
FORECAST_CATEGORIES = ("Pipeline", "Best Case", "Commit", "Closed", "Omitted")
CURRENCIES = ("USD", "EUR", "GBP")
# Salesforce's default picklists
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")


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
        value_sets={"Status": LEAD_STATUSES},
        not_after_export=("CreatedDate",),
    ),
    RawTable(
        "opportunity",
        ("Id",),
        required={
            "Id": 1.0,
            "StageName": 1.0,
            "Amount": 1.0,
            "CloseDate": 1.0,
            "OwnerId": 0.99,
            "AccountId": 0.99,
            "CurrencyIsoCode": 0.99,
        },
        value_sets={
            "StageName": STAGES,
            "ForecastCategoryName": FORECAST_CATEGORIES,
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
        value_sets={"StageName": STAGES},
        ranges={"Amount": (0, None), "Probability": (0, 100)},
        not_after_export=("CreatedDate",),
    ),
    RawTable(
        "task",
        ("Id",),
        required={"Id": 1.0, "OwnerId": 0.99},
        value_sets={"Status": TASK_STATUSES, "TaskSubtype": ("Call", "Email", "Task", "ListEmail", "Cadence")},
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
