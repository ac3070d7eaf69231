"""The two trees of a diff: a git ref's tree and a snapshot of the working tree."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

from pipeline.diff.report import DiffError

# what a dbt project needs besides the folders dbt_project.yml names
PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml")
DBT_PATHS = {  # dbt_project.yml keys → dbt's defaults
    "model-paths": ["models"],
    "seed-paths": ["seeds"],
    "macro-paths": ["macros"],
    "test-paths": ["tests"],
    "analysis-paths": ["analyses"],
    "snapshot-paths": ["snapshots"],
}


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise DiffError("git is not installed") from exc
    if done.returncode != 0:
        raise DiffError(done.stderr.strip())
    return done.stdout.strip()


def resolve_ref(root: Path, ref: str) -> str:
    """The commit a ref names; DiffError when the folder is not in a repository or the ref is unknown."""
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except DiffError as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise DiffError(f"unknown git ref '{ref}'{detail}") from None


def materialize_ref(root: Path, ref: str, dest: Path) -> tuple[Path, str]:
    """Write the tree of `ref` to `dest` (git archive: the repository is not touched).

    Returns the project root inside `dest` (the project may sit in a subfolder of the
    repository) and the commit.
    """
    commit = resolve_ref(root, ref)
    prefix = _git(root, "rev-parse", "--show-prefix")
    done = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", commit, *([prefix] if prefix else [])],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise DiffError(f"git archive {ref}: {message or 'failed'}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest / prefix, commit


def snapshot_worktree(root: Path, dest: Path) -> Path:
    """Copy what dbt and the compiler read from the working tree (committed or not) to `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        if (root / name).is_file():
            shutil.copy2(root / name, dest / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".*cache", "target", "logs")
    for name in sorted({"metrics", *_project_paths(root)}):
        source = root / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=skip, dirs_exist_ok=True)
    return dest


def _project_paths(root: Path) -> set[str]:
    """The folders dbt reads: those dbt_project.yml names (model-paths, seed-paths…), dbt's
    defaults for those it does not."""
    from ruamel.yaml import YAML

    try:
        config = YAML(typ="safe").load((root / "dbt_project.yml").read_text(encoding="utf-8"))
    except Exception:  # a broken dbt_project.yml fails in dbt, with dbt's message
        config = {}
    found: set[str] = set()
    for key, default in DBT_PATHS.items():
        value = (config or {}).get(key, default)
        for item in value if isinstance(value, list) else []:
            path = Path(str(item))
            if str(item) and not path.is_absolute() and ".." not in path.parts:
                found.add(path.as_posix())
    return found


