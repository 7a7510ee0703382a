"""Dagster definitions, one folder per area: ingest, transform (dbt), quality (audits), publish."""
