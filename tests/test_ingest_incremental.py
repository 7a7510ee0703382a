"""Loads are incremental and idempotent: the ledger decides per file, by content, what is new."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from ingestion.run import ingest_everything
from simulator.world import WorldState


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """Per table of raw and quarantine: row count and an order-independent hash of every row."""
    tables = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_schema in ('raw', 'quarantine') order by 1"
    ).fetchall()
    return {
        name: tuple(con.execute(f"select count(*), coalesce(sum(hash(t)), 0) from {name} t").fetchall()[0])
        for (name,) in tables
    }


def test_loading_the_same_drops_twice_changes_no_table(tiny_faulty_warehouse: Path, tiny_faulty_world: Path,
                                                       tmp_path: Path) -> None:  # fmt: skip
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(tiny_faulty_warehouse, database)
    with duckdb.connect(str(database)) as con:
        before = snapshot(con)
        loads = ingest_everything(con, tiny_faulty_world / "landing")
        after = snapshot(con)
    assert sum(len(load.files) for load in loads.values()) == 0
    assert "raw.load_ledger" in before and before["raw.opportunity"][0] > 0
    assert after == before


def test_after_advance_the_next_run_loads_only_the_new_drop(
    tiny_world_next_day: Path, tiny_warehouse: Path, tmp_path: Path
) -> None:
    world = tiny_world_next_day  # the world `tiny_warehouse` was loaded from, one day later
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(tiny_warehouse, database)
    new_day = WorldState.read(world).current_end.isoformat()
    with duckdb.connect(str(database)) as con:
        before = con.execute("select count(*) from raw.load_ledger").fetchall()[0][0]
        loads = ingest_everything(con, world / "landing")
        new_paths = [path for (path,) in con.execute(f"select path from raw.load_ledger offset {before}").fetchall()]
        opportunities = con.execute(
            "select count(*) from raw.opportunity where _source_file like ?", [f"crm/{new_day}/%"]
        ).fetchall()[0][0]
    loaded_files = [report.path for load in loads.values() for report in load.files]
    assert loaded_files and sorted(loaded_files) == sorted(new_paths)
    assert all(path.split("/")[1] == new_day for path in new_paths)
    assert {path.split("/")[0] for path in new_paths} >= {"crm", "phone"}
    assert opportunities > 0


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


FX_HEADER = "rate_date,from_currency,to_currency,rate\n"


def test_a_corrected_file_with_the_same_name_loads_as_a_new_version(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    path = write(landing / "reference/2024-01-03/fx_rates.csv", FX_HEADER + "2024-01-02,EUR,USD,1.1\n")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ingest_everything(con, landing, sources=("reference",))
        write(path, FX_HEADER + "2024-01-02,EUR,USD,1.095\n")
        ingest_everything(con, landing, sources=("reference",))
        ledger = con.execute(
            "select version, status, rows_loaded from raw.load_ledger where path = ? order by version",
            ["reference/2024-01-03/fx_rates.csv"],
        ).fetchall()
        rates = con.execute("select rate::double from raw.fx_rates order by _loaded_at").fetchall()
    assert ledger == [(1, "loaded", 1), (2, "loaded", 1)]
    assert rates == [(1.1,), (1.095,)]


def test_a_copy_of_a_loaded_file_under_another_name_is_skipped(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    content = FX_HEADER + "2024-01-02,EUR,USD,1.1\n"
    write(landing / "reference/2024-01-03/fx_rates.csv", content)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ingest_everything(con, landing, sources=("reference",))
        write(landing / "reference/2024-01-04/fx_rates.csv", content)
        ingest_everything(con, landing, sources=("reference",))
        ledger = con.execute("select path, status, reason from raw.load_ledger order by path").fetchall()
        rows = con.execute("select count(*) from raw.fx_rates").fetchall()[0][0]
    assert ledger[1][:2] == ("reference/2024-01-04/fx_rates.csv", "skipped")
    assert "same content as reference/2024-01-03/fx_rates.csv" in ledger[1][2]
    assert rows == 1
