"""Suites on the CRM's raw tables (Salesforce objects as loaded: one row per exported record version)."""

from __future__ import annotations

from expectations.raw_common import RawTable

TABLES = (
    RawTable("user_role", ("Id",), volume=False),
    RawTable("user", ("Id",), null_rates={"Email": 0.99, "UserRoleId": 0.9}, volume=False),
    RawTable("account", ("Id",), null_rates={"Name": 0.99, "OwnerId": 0.99}),
    RawTable("contact", ("Id",), null_rates={"AccountId": 0.95}),
    RawTable("lead", ("Id",), null_rates={"Status": 0.99}),
    # the CRM's stage definitions: exported once and when the sales process changes, so no volume to judge
    RawTable("opportunity_stage", ("Id",), null_rates={"SortOrder": 0.99}, volume=False),
    RawTable(
        "opportunity",
        ("Id",),
        null_rates={
            # an empty Amount is allowed (Salesforce has early-stage deals without one); most deals have one
            "Amount": 0.5,
            "OwnerId": 0.99,
            "AccountId": 0.99,
            "CurrencyIsoCode": 0.99,
        },
        freshness_of="crm",
    ),
    RawTable("opportunity_history", ("Id",)),
    RawTable("task", ("Id",), null_rates={"OwnerId": 0.99}),
    RawTable("event", ("Id",), null_rates={"OwnerId": 0.99, "StartDateTime": 0.99}),
)
