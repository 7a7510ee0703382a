"""The Dagster code location: ingest, dbt, quality checks, ML and publish assets, wired together.

Filled by the ingestion issue onwards (see ../shared/DESIGN.md and the `dg` layout in STYLE.md).
"""
