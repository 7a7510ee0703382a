"""The Dagster code location: ingest, dbt, quality checks, ML and publish assets, wired together.

`definitions.py` loads everything under `defs/` (the `dg` layout); `lib/` holds the Dagster glue. The engines it
wires live beside it: `ingestion/`, `expectations/`, `ml/` and `dbt_project/` (README, "Architecture").
"""
