"""Where the tool finds the warehouse: the project's own profile, never a demo name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.project import Project


def _project(root: Path, profiles: str | None) -> Project:
    (root / "dbt_project.yml").write_text("name: subscriptions\nprofile: saas\nconfig-version: 2\n")
    if profiles is not None:
        (root / "profiles.yml").write_text(profiles)
    return Project(root)


PROFILES = """
saas:
  target: "{{ env_var('SAAS_TARGET', 'pg') }}"
  outputs:
    pg: {type: postgres, host: localhost}
    local:
      type: duckdb
      path: "{{ env_var('SAAS_DUCKDB', 'data/saas.duckdb') }}"
"""


def test_the_warehouse_is_the_profile_s_duckdb_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPI_WAREHOUSE", raising=False)
    monkeypatch.delenv("SAAS_DUCKDB", raising=False)
    project = _project(tmp_path, PROFILES)
    assert project.warehouse == tmp_path / "data/saas.duckdb"  # not the current target's
    monkeypatch.setenv("SAAS_DUCKDB", "/srv/kpis.duckdb")
    assert project.warehouse == Path("/srv/kpis.duckdb")
    monkeypatch.setenv("KPI_WAREHOUSE", "elsewhere.duckdb")
    assert project.warehouse == tmp_path / "elsewhere.duckdb"


def test_without_a_duckdb_profile_the_file_is_named_after_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KPI_WAREHOUSE", raising=False)
    assert _project(tmp_path, None).warehouse == tmp_path / "warehouse/subscriptions.duckdb"


def test_dbt_reads_the_profile_where_dbt_would_find_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.profile import profiles_dir

    home = tmp_path / "profiles"
    home.mkdir()
    (home / "profiles.yml").write_text(PROFILES)
    (tmp_path / "project").mkdir()
    project = _project(tmp_path / "project", None)
    monkeypatch.setenv("DBT_PROFILES_DIR", str(home))
    assert profiles_dir(project.root) == home
    monkeypatch.delenv("KPI_WAREHOUSE", raising=False)
    monkeypatch.delenv("SAAS_DUCKDB", raising=False)
    assert project.warehouse == project.root / "data/saas.duckdb"
    (project.root / "profiles.yml").write_text(PROFILES)  # the project's own comes first
    assert profiles_dir(project.root) == project.root
