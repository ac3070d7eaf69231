"""Targets are data in the generated models: changing one target's value changes one line
of one generated file per engine (the target's row), whatever kind of target it is."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from pipeline.catalog import read_catalog
from pipeline.compiler import compile_files, read_metric_files
from pipeline.project import Project

ROOT = Path(__file__).resolve().parents[3]
MAX_CHANGED_LINES = 2

# (metric file, text before, text after): one target's value each
EDITS = [
    ("metrics/targets.yml", "{kpi: csat, value: 0.85}", "{kpi: csat, value: 0.9}"),
    ("metrics/targets.yml", "{kpi: cogs, growth: 0.2}", "{kpi: cogs, growth: 0.25}"),
    ("metrics/targets.yml", "2025-12: 1200000,", "2025-12: 1300000,"),
    ("metrics/financial/revenue.yml", "- value: 500000 ", "- value: 550000 "),
]


def _changed_lines(before: dict[str, str], after: dict[str, str]) -> dict[str, int]:
    """Per generated file, the lines removed or added."""
    changed = {}
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path, "").splitlines(), after.get(path, "").splitlines()
        diff = difflib.unified_diff(old, new, lineterm="", n=0)
        count = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
        if count:
            changed[path] = count
    return changed


@pytest.mark.parametrize(("file", "old", "new"), EDITS, ids=[e[2] for e in EDITS])
def test_changing_one_target_changes_at_most_two_generated_lines(
    file: str, old: str, new: str
) -> None:
    project = Project(ROOT)
    catalog = read_catalog(project.models_dir, project.root)
    files = {p: b.decode("utf-8") for p, b in read_metric_files(project).items()}
    assert files[file].count(old) == 1, f"{old!r} is no longer in {file}"
    edited = {**files, file: files[file].replace(old, new)}
    before, after = compile_files(files, catalog), compile_files(edited, catalog)
    assert before.ok and after.ok, after.issues
    changed = _changed_lines(before.files, after.files)
    assert changed, "the edit changed no generated file"
    # the targets model of the project's dialect and of each engine of config.engines
    targets = {"models/kpi/kpi_targets.sql"} | {
        f"models/kpi_{e}/kpi_targets.sql" for e in before.spec.config.engines
    }
    assert set(changed) == targets, changed
    assert all(n <= 2 * MAX_CHANGED_LINES for n in changed.values()), changed  # a line out, a line in
