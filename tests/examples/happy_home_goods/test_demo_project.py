"""The demo project's own files: its alert rules load, and its committed seeds are
exactly what the generator writes (`kpi generate` at its default scale and seed)."""

from __future__ import annotations

from pathlib import Path

from pipeline.alerts.rules import load_rules
from pipeline.compiler import read_metric_files
from pipeline.datagen import write_seeds
from pipeline.project import Project
from pipeline.spec.load import load
from tests.support.projects import REPO_ROOT


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_the_demo_rules_load() -> None:
    metric_files = read_metric_files(Project(REPO_ROOT))
    spec, issues = load(metric_files)
    rules, found = load_rules(metric_files, spec)
    assert [str(i) for i in issues + found] == []
    assert rules.file == "metrics/_alerts.yml" and "revenue" in rules.kpis


def test_committed_seeds_equal_a_fresh_write(tmp_path: Path) -> None:
    write_seeds(tmp_path, 42)
    committed = files(REPO_ROOT / "seeds")
    fresh = files(tmp_path)
    assert sorted(committed) == sorted(fresh)
    drifted = [name for name in fresh if committed[name] != fresh[name]]
    assert drifted == [], "run write_seeds(Path('seeds')) to regenerate the committed seeds"
