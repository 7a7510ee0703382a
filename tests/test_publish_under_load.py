"""Write, audit, publish under load: BI clients read the published copy while refreshes change the data, and the
same publications reach PostgreSQL with personal data protected."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psycopg
import pytest

from tests.conftest import run_refresh

READER = Path(__file__).with_name("published_reader.py")


def drop_dates(landing: Path) -> list[str]:
    return sorted({folder.name for folder in landing.glob("*/*") if folder.is_dir()})


def land(world: Path, folder: Path, dates: list[str]) -> None:
    """Copy the drops of `dates` from the world's landing folder into `folder/landing`, as exports arrive."""
    for source in (world / "landing").iterdir():
        for drop in source.iterdir():
            if drop.name in dates:
                shutil.copytree(drop, folder / "landing" / source.name / drop.name, dirs_exist_ok=True)


def published_run(published: Path) -> str:
    with duckdb.connect(str(published), read_only=True) as con:
        return con.execute("select run_id from marts.publication").fetchall()[0][0]


def postgres_run(dsn: str) -> str:
    with psycopg.connect(dsn) as con:
        return con.execute("select run_id from marts.publication").fetchone()[0]


@pytest.mark.slow
def test_readers_of_the_published_copy_never_fail_and_never_see_a_mix_across_refreshes(
    tiny_world: Path, tmp_path: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISH_POSTGRES_DSN", postgres_dsn)
    monkeypatch.setenv("PUBLISH_PII_KEY", "a-test-key")
    dates = drop_dates(tiny_world / "landing")
    batches = [dates[: len(dates) // 2], *(list(part) for part in _split(dates[len(dates) // 2 :], 2))]
    published = tmp_path / "published" / "sales.duckdb"
    readers = {
        mode: (
            subprocess.Popen([sys.executable, str(READER), str(published), mode, str(tmp_path / f"{mode}.json")]),
            tmp_path / f"{mode}.json",
        )
        for mode in ("hold", "loop")
    }
    publications: list[str] = []
    refresh_seconds = []
    try:
        for batch in batches:
            land(tiny_world, tmp_path, batch)
            started = time.perf_counter()
            result = run_refresh(tmp_path)
            refresh_seconds.append(time.perf_counter() - started)
            assert result.success, f"refresh {len(publications) + 1} failed while BI read the published copy"
            # a new connection sees the publication the refresh just made, in DuckDB and in PostgreSQL
            assert published_run(published) == postgres_run(postgres_dsn) == result.run_id
            publications.append(result.run_id)
            time.sleep(1)
    finally:
        for _, out in readers.values():
            Path(f"{out}.stop").touch()
        for process, _ in readers.values():
            process.wait(timeout=60)
    seen = {mode: json.loads(out.read_text()) for mode, (_, out) in readers.items()}
    reads = sum(figures["reads"] for figures in seen.values())
    longest = max(figures["longest_read_s"] for figures in seen.values())
    errors = sum(len(figures["errors"]) for figures in seen.values())
    inconsistent = sum(figures["inconsistent"] for figures in seen.values())
    walls = ", ".join(f"{seconds:.0f} s" for seconds in refresh_seconds)
    print(
        f"\nload test: {len(publications)} refreshes while reading ({walls}); {reads} reads "
        f"({seen['hold']['reads']} on one held connection, {seen['loop']['reads']} on fresh ones), {errors} errors, "
        f"{inconsistent} inconsistent snapshots, longest read {longest * 1000:.0f} ms; publications seen by the "
        f"looping reader: {len(seen['loop']['runs_seen'])} of {len(publications)}"
    )
    for figures in seen.values():
        assert figures["errors"] == [] and figures["inconsistent"] == 0 and figures["reads"] > 10
    # the held connection keeps the snapshot it opened; a fresh connection follows every publication
    assert seen["hold"]["runs_seen"] == [publications[0]]
    assert seen["loop"]["runs_seen"][0] == publications[0] and seen["loop"]["runs_seen"][-1] == publications[-1]
    assert set(seen["loop"]["runs_seen"]) <= set(publications)
    assert_no_contact_email_or_phone_is_published(tmp_path, postgres_dsn)


def assert_no_contact_email_or_phone_is_published(folder: Path, dsn: str) -> None:
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
        raw = {value for (value,) in con.execute(
            "select Email from raw.contact where Email is not null union select Phone_e164 from raw.contact "
            "where Phone_e164 is not null").fetchall()}  # fmt: skip
    query = "select email, phone_e164, mobile_phone_e164 from marts.dim_contact"
    with duckdb.connect(str(folder / "published" / "sales.duckdb"), read_only=True) as con:
        published = {value for row in con.execute(query).fetchall() for value in row if value}
    parquet = folder / "published" / "parquet" / "marts" / "dim_contact.parquet"
    published |= {value for row in duckdb.sql(f"select email, phone_e164 from '{parquet}'").fetchall()
                  for value in row if value}  # fmt: skip
    with psycopg.connect(dsn) as con:
        published |= {value for row in con.execute(query).fetchall() for value in row if value}
    assert len(raw) > 100 and len(published) > 100
    assert raw & published == set()


def _split(items: list[str], parts: int) -> list[list[str]]:
    size = -(-len(items) // parts)
    return [items[start : start + size] for start in range(0, len(items), size)]
