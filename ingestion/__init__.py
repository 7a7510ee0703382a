"""The ingestion engine: readers, loaders, the ledger and the source mappings; no Dagster imports (DESIGN.md)."""
