"""Great Expectations suites as code, one module per table family, and their bridge to asset checks.

No Dagster imports here: orchestration turns suite results into asset checks.
"""
