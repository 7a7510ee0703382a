"""The folders keep to their jobs: each imports only what sits below it (DESIGN.md, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "simulator": {"orchestration", "ml", "expectations", "bench", "dagster", "dbt"},
    "ml": {"orchestration", "dagster", "simulator"},
    "expectations": {"orchestration", "dagster", "simulator"},
    "ingestion": {"orchestration", "ml", "expectations", "dagster", "dagster_duckdb", "dagster_dbt", "simulator"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_that_sits_above_it(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    for path in files:
        crossing = imported_modules(path) & FORBIDDEN[package]
        assert not crossing, f"{path.relative_to(ROOT)} imports {sorted(crossing)}"


@pytest.mark.parametrize("engine", ["publish.py", "publish_postgres.py"])
def test_the_publishing_engines_import_no_dagster(engine: str) -> None:
    # the publish asset is a thin wrapper around them, tested without Dagster (tests/test_publish.py)
    assert not imported_modules(ROOT / "orchestration" / "lib" / engine) & {"dagster", "dagster_duckdb", "dagster_dbt"}


def test_the_layout_of_the_design_exists() -> None:
    for folder in ("orchestration", "ingestion", "dbt_project", "ml", "expectations", "simulator", "bench", "tests"):
        assert (ROOT / folder).is_dir(), folder
    assert (ROOT / "pyproject.toml").is_file() and (ROOT / "README.md").is_file()


def test_the_pins_name_no_registry_host() -> None:
    text = (ROOT / "requirements.txt").read_text()
    assert "://" not in text and "--index-url" not in text and "--extra-index-url" not in text
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert "==" in line, f"not an exact pin: {line}"
