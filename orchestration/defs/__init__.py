"""Dagster definitions, one folder per area (ingest now; transform, quality, ml and publish to come)."""
