"""The built wheel carries every file the package reads at run time, not only its modules."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_every_data_file_of_the_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("kpi_pipeline-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    data_files = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "pipeline").rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }
    assert data_files, "the package has data files"
    assert sorted(data_files - packed) == []
