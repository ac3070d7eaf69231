"""Copies of the repository's dbt project, for tests and benchmarks that build elsewhere."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def copy_project(folder: Path, lookback_days: int | None = None) -> Path:
    """`folder/project`: the dbt project and metrics, recompiled with an incremental
    lookback (`config.incremental.lookback_days`) when one is given."""
    project = folder / "project"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(REPO_ROOT / name, project / name)
    for name in ("models", "macros", "metrics", "tests/dbt"):
        shutil.copytree(REPO_ROOT / name, project / name)
    if lookback_days is not None:
        from pipeline.compiler import compile_project, write
        from pipeline.project import Project

        set_lookback(project / "metrics" / "_project.yml", lookback_days)
        compiled = compile_project(Project(project))
        assert compiled.ok, compiled.issues
        write(compiled.files, project)
    return project


def set_lookback(path: Path, days: int) -> None:
    """Add `config.incremental.lookback_days` to a project file, keeping the rest."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(path.read_text())
    data.setdefault("config", {})["incremental"] = {"lookback_days": days}
    with path.open("w") as file:
        yaml.dump(data, file)


FIXTURES = REPO_ROOT / "tests" / "fixtures"


def fixture_project(folder: Path, extra_metrics: dict[str, str] | None = None) -> Path:
    """`folder/fixture`: a project of the tool's own fixtures, independent of the demo: the
    models of tests/fixtures/catalog, the KPIs of tests/fixtures/snapshot_metrics (and
    `extra_metrics`, file name -> text), its models compiled and written."""
    from pipeline.compiler import compile_project, write
    from pipeline.project import Project

    project = folder / "fixture"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(FIXTURES / "catalog" / "models", project / "models")
    shutil.copytree(FIXTURES / "snapshot_metrics", project / "metrics")
    for name, text in (extra_metrics or {}).items():
        (project / "metrics" / name).write_text(text, encoding="utf-8")
    (project / "dbt_project.yml").write_text(
        'name: fixture\nversion: "1.0.0"\nconfig-version: 2\nprofile: fixture\n', encoding="utf-8"
    )
    compiled = compile_project(Project(project))
    assert compiled.ok, compiled.issues
    write(compiled.files, project)
    return project
