"""Publish: the read-only copy BI tools, finance and the report read, swapped in after the audits pass."""
