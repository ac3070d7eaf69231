"""The tool as users get it: the wheel built from the repository's package, installed in a
fresh virtual environment outside the repository (tests/conftest.py's session fixtures
`wheel` and `installed_wheel` build and install it once for every test using them)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def build_wheel(folder: Path) -> Path:
    """The package's wheel, built in `folder` from a copy of the sources (building writes
    build/ and *.egg-info beside the code)."""
    source = folder / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(
        REPO_ROOT / "pipeline", source / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), str(source)],
        check=True, capture_output=True,
    )
    (path,) = folder.glob("kpi_pipeline-*.whl")
    return path


def install(wheel: Path, folder: Path) -> Path:
    """A virtual environment `folder/venv` with the wheel and its dependencies installed;
    returns its bin/ folder."""
    env_dir = folder / "venv"
    venv.create(env_dir, with_pip=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)]
    subprocess.run(pip, check=True, capture_output=True, cwd=folder)
    return env_dir / "bin"
