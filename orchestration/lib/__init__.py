"""Helpers that define no Dagster objects: mappings, the CSV loader, the load ledger, phone and calendar parsing."""
