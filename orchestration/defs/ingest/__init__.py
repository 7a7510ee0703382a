"""Ingest: landing files to `raw.*`, with the load ledger and quarantine."""
