"""Volume audits of the marts BI reads: a mart built from a source that has rows is not empty.

An empty mart passes every row rule (no row breaks one), yet publishing it would replace a good copy with
nothing: a join that stopped matching, a filter on a value the CRM renamed. These are ERROR audits, so they block
`publish`; a source that is empty itself (a partial landing) leaves its marts empty without failing.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.core import ERROR, Batch, TableSuite, expect

# mart -> the raw table whose rows it is built from
MART_SOURCES = {
    "dim_account": "raw.account",
    "dim_contact": "raw.contact",
    "fct_opportunity": "raw.opportunity",
    "fct_opportunity_stage_history": "raw.opportunity",
}


def volume_suite(mart: str, source: str) -> TableSuite:
    sql = f"""
select mart_rows, source_rows, case when source_rows > 0 then mart_rows end as rows_when_source_has_rows
from (select (select count(*) from marts.{mart}) as mart_rows, (select count(*) from {source}) as source_rows)
"""
    return TableSuite(
        asset=("marts", mart),
        description=f"marts.{mart} is not empty when {source} has rows.",
        requires=(source,),
        batches=(
            Batch(
                "volume",
                sql,
                ("mart_rows", "source_rows"),
                (
                    expect(
                        "not_empty_when_its_source_has_rows",
                        gxe.ExpectColumnValuesToBeBetween,
                        f"marts.{mart} has rows whenever {source} has rows (an empty mart is never published over "
                        "a good one).",
                        severity=ERROR,
                        column="rows_when_source_has_rows",
                        min_value=1,
                    ),
                ),
            ),
        ),
    )


SUITES = tuple(volume_suite(mart, source) for mart, source in MART_SOURCES.items())
