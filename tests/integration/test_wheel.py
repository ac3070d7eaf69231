"""The tool as users get it: the built wheel, installed in a fresh virtual environment
outside the repository, compiles a project (templates and schemas come from the wheel)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from tests.support.projects import copy_project

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_every_data_file_of_the_package(wheel: Path) -> None:
    packed = set(zipfile.ZipFile(wheel).namelist())
    data_files = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "pipeline").rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }
    assert data_files, "the package has data files"
    assert sorted(data_files - packed) == []


def test_the_installed_wheel_validates_and_compiles_a_project(
    installed_wheel: Path, tmp_path: Path
) -> None:
    project = copy_project(tmp_path)
    kpi = str(installed_wheel / "kpi")
    for args in (["validate"], ["compile", "--check"]):
        result = subprocess.run(
            [kpi, *args, "--project-dir", str(project)], cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
    # the command ran the installed package, not the repository's source
    where = subprocess.run(
        [str(installed_wheel / "python"), "-c", "import pipeline; print(pipeline.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    assert str(installed_wheel.parent) in where.stdout
