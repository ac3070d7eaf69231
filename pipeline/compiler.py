"""The compiler's stages end to end: read metric files → load → validate → plan → render,
and the comparison with (or writing of) the generated files on disk."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.alerts.rules import load_rules
from pipeline.catalog import Catalog, read_catalog
from pipeline.errors import Issue, Location, error, has_errors, sort_issues
from pipeline.plan.planner import Plan, plan
from pipeline.project import Project
from pipeline.render import dbt
from pipeline.spec.hygiene import hygiene
from pipeline.spec.load import load
from pipeline.spec.located_yaml import MAX_BYTES
from pipeline.spec.model import Spec
from pipeline.spec.validate import validate


@dataclass
class Compiled:
    spec: Spec
    issues: list[Issue]
    plan: Plan | None = None
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not has_errors(self.issues)


def read_metric_files(project: Project) -> dict[str, bytes]:
    """Every metric file's bytes (decoded by load), keyed by its path relative to the project
    root; a file larger than load accepts is read no further than that."""
    found = [*project.metrics_dir.rglob("*.yml"), *project.metrics_dir.rglob("*.yaml")]
    paths = sorted(p for p in found if p.is_file())
    return {str(p.relative_to(project.root)): _head(p, MAX_BYTES + 1) for p in paths}


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


def check_files(
    files: Mapping[str, str | bytes], catalog: Catalog, *, with_hygiene: bool = False
) -> tuple[Spec, list[Issue]]:
    """load + validate, with no file system; `kpi validate` adds the hygiene warnings.
    A file that did not parse is reported first: later errors may follow from it, and
    warnings (no target, ...) wait until every file parses."""
    spec, issues = load(files)
    issues += validate(spec, catalog)
    issues += load_rules(files, spec)[1]
    if with_hygiene and not spec.unparsed:
        issues += hygiene(spec)
    if not files:
        issues.append(error("no metric files found under metrics/", Location("metrics")))
    return spec, sort_issues(issues, first=spec.unparsed)


def compile_files(
    files: Mapping[str, str | bytes], catalog: Catalog, dialect: str | None = None
) -> Compiled:
    """All four stages; `dialect` overrides the project's (for per-engine snapshots)."""
    with _no_cyclic_gc():
        spec, issues = check_files(files, catalog)
        if dialect is not None:
            spec = replace(spec, config=replace(spec.config, dialect=dialect))
        result = Compiled(spec, issues)
        if result.ok:
            result.plan = plan(spec)
            result.files = dbt.render(spec, result.plan)
    return result


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """SQL trees are large graphs of parent links: cyclic GC passes over them cost more than
    the compile itself, and everything is freed when the compile returns."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def compile_project(project: Project) -> Compiled:
    return compile_files(read_metric_files(project), read_catalog(project.models_dir, project.root))


def stale(files: Mapping[str, str], root: Path) -> list[str]:
    """Paths that differ from what would be written, or are generated and no longer wanted."""
    differ = [
        p
        for p, text in files.items()
        if not (root / p).is_file() or (root / p).read_text(encoding="utf-8") != text
    ]
    existing = [
        str(p.relative_to(root))
        for folder in dbt.GENERATED_DIRS
        if (root / folder).is_dir()
        for p in (root / folder).rglob("*")
        if p.is_file()
    ]
    return sorted(differ + [p for p in existing if p not in files])


def write(files: Mapping[str, str], root: Path) -> list[str]:
    """Write what changed, remove generated files no longer wanted; return those paths."""
    changed = stale(files, root)
    for path in changed:
        target = root / path
        if path in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[path], encoding="utf-8")
        else:
            target.unlink()
    return changed
