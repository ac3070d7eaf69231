"""The whole diff: both trees, both sides loaded and built, compared."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline.diff.compare import compare
from pipeline.diff.git import materialize_ref
from pipeline.diff.report import DiffReport, Side
from pipeline.diff.sides import _generated, build_both, load_side
from pipeline.errors import Level
from pipeline.project import Project, snapshot_worktree


def diff(
    root: Path,
    base_ref: str,
    *,
    head_warehouse: Path | None = None,
    workdir: Path | None = None,
    top: int = 10,
    values: bool = True,
) -> DiffReport:
    """Compare the project at `root` (working tree) with `base_ref`.

    `head_warehouse`: a DuckDB file already holding the working tree's kpi_values (skips
    the head build). `workdir`: where the base tree, the head snapshot and the temporary
    warehouses go (default: a temporary folder, removed afterwards). `values=False`
    compares definitions and SQL only (no dbt). Raises DiffError when the ref is unknown.
    """
    root = root.resolve()
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return _diff(root, base_ref, head_warehouse, workdir, top, values)
    with tempfile.TemporaryDirectory(prefix="kpi-diff-") as folder:
        return _diff(root, base_ref, head_warehouse, Path(folder), top, values)


def _diff(
    root: Path,
    base_ref: str,
    head_warehouse: Path | None,
    work: Path,
    top: int,
    values: bool,
) -> DiffReport:
    base_root, commit = materialize_ref(root, base_ref, work / "base")
    base_side = Side(base_ref, commit=commit)
    head_side = Side("working tree")
    head_root = snapshot_worktree(root, work / "head")
    base = load_side(base_root, compile_models=False)
    head = load_side(head_root, compile_models=True)
    base_side.issues = [str(i) for i in base.issues if i.level is Level.ERROR]
    head_side.issues = [str(i) for i in head.issues if i.level is Level.ERROR]
    if head_side.issues:
        head_side.notes.append(
            "the working tree does not compile: its generated models were built as they are"
        )
    if base_side.issues:
        base_side.notes.append(
            "the base does not compile: its committed models were built as they are"
        )
    stale = [p for p, text in head.sql.items() if _read(root / p) != text]
    stale += [p for p in _generated(root) if p not in head.sql]
    if stale:
        head_side.notes.append(
            f"{len(stale)} generated file(s) in the working tree are stale; compared and built"
            " what `kpi compile` writes"
        )
    base_wh = head_wh = None
    if values:
        base_wh, head_wh = build_both(
            base_root, head_root, head_warehouse, work, base_side, head_side,
            raw_from=Project(root).warehouse,
        )
    return compare(base, head, base_side, head_side, base_wh, head_wh, top)


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


