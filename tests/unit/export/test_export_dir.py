"""Exports land in the project's target folder, not beside a warehouse file elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.export.files import default_export_dir
from pipeline.project import Project


def test_exports_go_under_target_whatever_the_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPI_EXPORT_DIR", raising=False)
    project = Project(tmp_path, {"KPI_WAREHOUSE": "/tmp/elsewhere/x.duckdb"})
    assert default_export_dir(project) == tmp_path / "target/kpi/exports"
    monkeypatch.setenv("KPI_EXPORT_DIR", "out")
    assert default_export_dir(project) == tmp_path / "out"
