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
    home = tmp_path / "profiles"
    home.mkdir()
    (home / "profiles.yml").write_text(PROFILES.replace("local:", "other:"))
    (tmp_path / "project").mkdir()
    project = _project(tmp_path / "project", None)
    monkeypatch.setenv("DBT_PROFILES_DIR", str(home))
    monkeypatch.setenv("SAAS_TARGET", "other")
    assert _run_output(project)["path"] == str(project.warehouse)
    monkeypatch.delenv("KPI_WAREHOUSE", raising=False)
    monkeypatch.delenv("SAAS_DUCKDB", raising=False)
    assert project.warehouse == project.root / "data/saas.duckdb"
    (project.root / "profiles.yml").write_text(PROFILES)  # the project's own comes first
    monkeypatch.setenv("SAAS_TARGET", "local")
    assert _run_output(project)["path"] == str(project.warehouse)


def test_a_run_writes_where_the_tool_says_whatever_the_profile_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile of literals (no env_var): the run's profile still points at the tool's
    DuckDB file and run schema; the other outputs and settings stay as they are."""
    monkeypatch.delenv("KPI_SCHEMA", raising=False)
    project = _project(tmp_path, "saas:\n  target: dev\n  outputs:\n"
                       "    dev: {type: duckdb, path: dev.duckdb, schema: main, threads: 4}\n"
                       "    pg: {type: postgres, schema: public}\n")
    run = Project(project.root, {"KPI_WAREHOUSE": str(tmp_path / "w.duckdb"), "KPI_SCHEMA": "run_1"})
    assert _run_output(run) == {"type": "duckdb", "path": str(tmp_path / "w.duckdb"),
                                "schema": "run_1", "threads": 4}
    assert _run_output(project) == {"type": "duckdb", "path": str(tmp_path / "dev.duckdb"),
                                    "schema": "main", "threads": 4}


@pytest.mark.dbt
def test_dbt_builds_in_the_tool_s_warehouse_and_schema(tmp_path: Path) -> None:
    import duckdb

    _project(tmp_path, "saas:\n  target: dev\n  outputs:\n"
                       "    dev: {type: duckdb, path: dev.duckdb, schema: main}\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.sql").write_text("select 1 as x")
    snapshot = Project(tmp_path, {"KPI_WAREHOUSE": str(tmp_path / "w.duckdb"), "KPI_SCHEMA": "run_1",
                                  "DBT_TARGET_PATH": str(tmp_path / "target"),
                                  "DBT_LOG_PATH": str(tmp_path / "logs")})
    snapshot.dbt(["run"])
    assert not (tmp_path / "dev.duckdb").exists()
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("select x from run_1.m").fetchall() == [(1,)]


def _run_output(project: Project) -> dict:
    from pipeline.profile import read_yaml, rendered, run_profiles

    folder = project.root / "run_profiles"
    folder.mkdir(exist_ok=True)
    written = run_profiles(project.root, project.env, project.warehouse, folder)
    assert written == folder
    profile = read_yaml(folder / "profiles.yml")["saas"]
    return profile["outputs"][rendered(profile["target"])]
