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
