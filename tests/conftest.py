"""Shared pytest fixtures.

`demo_warehouse` builds the demo business once per test session: `dbt seed` then
`dbt build` (models, data tests, unit tests) into a temporary DuckDB file. Tests that
use it are marked `@pytest.mark.dbt`. `wheel` and `installed_wheel` build the package's
wheel and install it in a fresh virtual environment, once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.project import Project, release_duckdb
from tests.support import wheel as wheels

REPO_ROOT = Path(__file__).resolve().parents[1]


def dbt_target_dir(warehouse: Path) -> Path:
    """Where the session's dbt run wrote its artifacts (manifest, run_results.json)."""
    return warehouse.parent / "target"


@pytest.fixture(scope="session")
def demo_project() -> Project:
    """The repository's dbt project."""
    return Project(REPO_ROOT)


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file holding the seeded raw data and every model of the dbt project.

    Built once per session; the artifacts of the build stay in `dbt_target_dir(path)`
    and dbt's log next to it, so the repository's own target/ is not touched.
    """
    if not any((REPO_ROOT / "seeds").rglob("*.csv")):
        pytest.skip("no seed CSVs in seeds/ (run `kpi generate` first)")
    folder = tmp_path_factory.mktemp("demo_warehouse")
    warehouse = folder / "happy_home_goods.duckdb"
    project = Project(
        REPO_ROOT,
        env={
            "KPI_WAREHOUSE": str(warehouse),
            "KPI_TARGET": "duckdb",
            "DBT_TARGET_PATH": str(dbt_target_dir(warehouse)),
            "DBT_LOG_PATH": str(folder / "logs"),
        },
    )
    try:
        project.dbt(["seed"])
        project.dbt(["build", "--exclude", "resource_type:seed"])
    finally:
        release_duckdb_handles()
    return warehouse


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's wheel file."""
    return wheels.build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def installed_wheel(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a virtual environment outside the repository holding the wheel."""
    return wheels.install(wheel, tmp_path_factory.mktemp("installed_wheel"))


# tests import it by this name; Project.dbt already releases after every run
release_duckdb_handles = release_duckdb
