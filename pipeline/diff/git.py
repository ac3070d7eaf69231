"""A git ref's tree for the diff (the working tree's snapshot: `project.snapshot_worktree`)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from pipeline.diff.report import DiffError


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
