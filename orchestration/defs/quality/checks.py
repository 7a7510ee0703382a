"""Great Expectations suites as asset checks: one multi-check per table, one check per expectation.

Checks of severity ERROR are blocking: when one fails, the assets downstream of its table do not materialize in
that run, and `publish` (downstream of every mart) withholds the publication. WARN checks annotate. The suites
open the working warehouse read-only.
Each result carries the expectation, the observed value, the counts, example failing rows by id, and a link to
the HTML Data Docs that GX builds under `data/quality/` on every run.
"""

import json

import dagster as dg

from expectations.core import ERROR, CheckOutcome, SuiteResult, TableSuite
from orchestration.defs.resources import WAREHOUSE_POOL, Quality, Warehouse
from orchestration.lib.quality import all_suites, validator

SEVERITY = {ERROR: dg.AssetCheckSeverity.ERROR}


def check_result(key: dg.AssetKey, outcome: CheckOutcome, result: SuiteResult) -> dg.AssetCheckResult:
    metadata: dict[str, object] = {
        key_: dg.MetadataValue.json(value) if isinstance(value, dict | list) else value
        for key_, value in outcome.metadata().items()
    }
    metadata["suite"] = result.suite
    if result.docs_url:
        metadata["data_docs"] = dg.MetadataValue.url(result.docs_url)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=outcome.check,
        passed=outcome.passed,
        severity=SEVERITY.get(outcome.severity, dg.AssetCheckSeverity.WARN),
        metadata=metadata,
        description=outcome.description,
    )


def quality_check(suite: TableSuite) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(list(suite.asset))
    # a cross-table rule waits for the other tables of this run, e.g. the latest pipeline day for fct_opportunity
    others = [dg.AssetKey(table.split(".")) for table in suite.requires]
    specs = [
        dg.AssetCheckSpec(
            spec.name, asset=key, description=spec.description, blocking=spec.severity == ERROR, additional_deps=others
        )
        for spec in suite.checks()
    ]

    @dg.multi_asset_check(
        specs=specs,
        name=f"quality_{suite.asset[0]}_{suite.asset[1]}",
        description=suite.description,
        pool=WAREHOUSE_POOL,
    )
    def run_suite(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, quality: Quality):
        with warehouse.get_connection(read_only=True) as con:
            result = validator(quality.path).run(con, suite)
        failed = result.failed
        context.log.info(
            f"{suite.name}: {len(result.outcomes) - len(failed)} of {len(result.outcomes)} expectations met "
            f"on {result.rows} rows" + (f"; data docs: {result.docs_url}" if result.docs_url else "")
        )
        for outcome in result.outcomes:
            if not outcome.passed and outcome.severity == ERROR:
                context.log.error(
                    f"{suite.name}: {outcome.check} failed ({outcome.description}); "
                    f"{json.dumps(outcome.metadata(), default=str)[:600]}. Publishing is withheld: BI keeps reading "
                    "the last good publication."
                )
            yield check_result(key, outcome, result)

    return run_suite


quality_checks = [quality_check(suite) for suite in all_suites()]
