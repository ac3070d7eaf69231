"""`kpi diff`: what a change to the metrics does to the definitions, the SQL and the numbers.

Stages, each a plain function:

1. `materialize_ref` writes a git ref's tree to a folder (`git archive`, nothing in the
   repository changes); `snapshot_worktree` copies the working tree's dbt project.
2. `load_side` loads a side's metric files (and, for the working tree, compiles them, so
   the numbers follow the YAML even before `kpi compile`).
3. `seed` and `build_values` run `dbt seed` and `dbt run --select +kpi_values` into a
   temporary DuckDB file per side; when both sides have the same seeds, the working tree
   starts from a copy of the base's warehouse and rebuilds only what changed.
4. `compare` compares definitions, generated SQL and `analytics.kpi_values` rows keyed by
   (kpi, grain, period_start, dimension, dimension_value) into a `DiffReport`.
5. `render_terminal`, `render_markdown` and `render_json` print it.

`diff` runs them all. Nothing here writes to the project's own warehouse or target/.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import Issue, Level
from pipeline.project import DbtError, Project, release_duckdb, snapshot_worktree
from pipeline.render.dbt import KPI_DIR
from pipeline.spec import expressions
from pipeline.spec.hygiene import definition_key
from pipeline.spec.model import Kpi, Spec

PUBLISHED_SCHEMA = "analytics"
VALUES_TABLE = f"{PUBLISHED_SCHEMA}.kpi_values"
KEY_COLUMNS = ("kpi", "grain", "period_start", "dimension", "dimension_value")
GRAIN_ORDER = ("day", "week", "month", "quarter", "year")
WAREHOUSE_NAME = "kpi_diff.duckdb"
TOLERANCE = 1e-9  # relative: float sums in another order are not a move

Status = Literal["added", "removed", "changed"]


class DiffError(RuntimeError):
    """The diff cannot start (not a git repository, unknown ref)."""


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class FieldChange:
    """One field of a KPI's definition, as written on each side ('' when absent)."""

    field: str
    base: str
    head: str


@dataclass(frozen=True)
class Move:
    """One kpi_values row whose value moved; change and relative are None when a side is NULL."""

    grain: str
    period_start: str
    dimension: str
    dimension_value: str
    base: float | None
    head: float | None
    change: float | None
    relative: float | None


@dataclass
class ValueDiff:
    """How a KPI's rows compare: counts, then the largest moves first."""

    compared: int = 0  # rows on both sides
    moved: int = 0
    only_base: int = 0  # periods or slices no longer there
    only_head: int = 0  # new periods or slices
    moved_by_grain: dict[str, int] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)  # the top N, largest |change| first

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.only_base or self.only_head)


@dataclass
class KpiChange:
    name: str
    status: Status
    label: str = ""
    file: str = ""  # where it is defined (head's file; base's when removed)
    renamed_from: str | None = None
    definition: list[FieldChange] = field(default_factory=list)
    values: ValueDiff | None = None  # None: not compared (added, removed or no values)
    rows: int = 0  # rows of an added or removed KPI


@dataclass(frozen=True)
class SqlChange:
    path: str
    status: Status
    added_lines: int
    removed_lines: int
    diff: str  # unified diff


@dataclass
class Side:
    """One side of the diff: where it came from and what went wrong there."""

    name: str  # the ref, or "working tree"
    commit: str | None = None
    kpis: int = 0
    issues: list[str] = field(default_factory=list)  # load/validate errors, as printed
    build_error: str | None = None
    warehouse: str | None = None  # the DuckDB file built (gone with a temporary workdir)
    values: bool = False  # kpi_values could be read
    notes: list[str] = field(default_factory=list)

    @property
    def compiles(self) -> bool:
        return not self.issues


@dataclass
class DiffReport:
    base: Side
    head: Side
    kpis: list[KpiChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    sql: list[SqlChange] = field(default_factory=list)
    top: int = 10

    def of(self, status: Status) -> list[KpiChange]:
        return [k for k in self.kpis if k.status == status]

    def kpi(self, name: str) -> KpiChange | None:
        return next((k for k in self.kpis if k.name == name), None)

    @property
    def values_compared(self) -> bool:
        return self.base.values and self.head.values

    @property
    def empty(self) -> bool:
        return not self.kpis and not self.sql

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["values_compared"] = self.values_compared
        return data


# ---------------------------------------------------------------- stage 1: the two trees


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


# ---------------------------------------------------------------- stage 2: load a side


@dataclass
class Loaded:
    """A side's KPIs and the generated models it builds."""

    root: Path
    spec: Spec
    issues: list[Issue]
    sql: dict[str, str]  # path under models/kpi → text (what this side builds)


def load_side(root: Path, *, compile_models: bool) -> Loaded:
    """Load and validate a side's metric files.

    With `compile_models`, the side's models are compiled from its metric files and written
    into `root` (a snapshot, never the user's tree) so the build follows the YAML;
    otherwise the generated models on disk are what is built (the base as committed).
    """
    from pipeline import compiler
    from pipeline.catalog import read_catalog

    project = Project(root)
    files = compiler.read_metric_files(project) if project.metrics_dir.is_dir() else {}
    try:
        catalog = read_catalog(project.models_dir, project.root)
        if compile_models:
            result = compiler.compile_files(files, catalog)
            spec, issues = result.spec, result.issues
            if result.ok:
                compiler.write(result.files, root)
        else:
            spec, issues = compiler.check_files(files, catalog)
    except Exception as exc:  # an older or newer tree this compiler cannot read
        from pipeline.errors import Location, error
        from pipeline.spec.load import load

        spec, issues = load(files)
        issues.append(error(f"cannot check the metric files: {exc}", Location("metrics")))
    return Loaded(root, spec, issues, _generated(root))


def _generated(root: Path) -> dict[str, str]:
    folder = root / KPI_DIR
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- stage 3: build


def _dbt_project(root: Path, warehouse: Path, work: Path) -> Project:
    """The project building into `warehouse` on DuckDB, its artifacts and logs under `work`."""
    return Project(
        root,
        env={
            "KPI_TARGET": "duckdb",  # never the user's warehouse: a temporary DuckDB file
            "KPI_SCHEMA": PUBLISHED_SCHEMA,
            "KPI_WAREHOUSE": str(warehouse),
            "DBT_TARGET_PATH": str(work / "target"),
            "DBT_LOG_PATH": str(work / "logs"),
            "DBT_PARTIAL_PARSE": "false",
        },
    )


def seed(root: Path, warehouse: Path, work: Path) -> None:
    """Load the side's seeds (the raw tables) into `warehouse`."""
    try:
        _dbt_project(root, warehouse, work).dbt(["seed"])
    finally:
        release_duckdb()


def build_values(
    root: Path,
    warehouse: Path,
    work: Path,
    *,
    select: str = "+kpi_values",
    state: Path | None = None,
) -> None:
    """Build kpi_values and what it reads (no tests: a diff needs numbers, not checks);
    with `state` (a folder holding another build's manifest.json), `select` may use
    `state:modified` to rebuild only what differs from that build."""
    args = ["run", "--select", select, *(["--state", str(state)] if state else [])]
    try:
        _dbt_project(root, warehouse, work).dbt(args)
    finally:
        release_duckdb()


def seeds_fingerprint(root: Path) -> str:
    """A hash of the seed files: equal fingerprints, same raw tables."""
    digest = hashlib.sha256()
    folder = root / "seeds"
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def has_values(warehouse: Path) -> bool:
    import duckdb

    if not warehouse.is_file():
        return False
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.execute(
            "select count(*) from information_schema.tables"
            " where table_schema = ? and table_name = 'kpi_values'",
            [PUBLISHED_SCHEMA],
        ).fetchone()
    return bool(found and found[0])


# ---------------------------------------------------------------- stage 4: compare


def _written(text: str | None, dialect: str, *, row_level: bool = True) -> str | None:
    """An expression as sqlglot writes it (case and spacing normalised), for display."""
    if text is None:
        return None
    try:
        return expressions.parse(text, dialect, what="expression", row_level=row_level).sql(dialect=dialect)
    except (expressions.ExpressionError, ValueError):
        return " ".join(text.split())


def definition(kpi: Kpi, spec: Spec) -> dict[str, str]:
    """A KPI's definition as comparable text per field (expressions normalised)."""
    dialect = spec.config.dialect

    def text(value: Any) -> str:
        if value is None or value == () or value == {}:
            return ""
        if isinstance(value, tuple | list):
            return ", ".join(text(v) for v in value)
        return str(value)

    targets = [_target_text(t) for t in spec.targets_of(kpi)]
    fields: dict[str, str] = {
        "kind": (kpi.agg or "") if kpi.kind == "simple" else kpi.kind,
        "expression": text(kpi.expr if kpi.expr == "*" else _written(kpi.expr, dialect)),
        "model": text(kpi.model),
        "time": text(kpi.time),
        "filter": text(_written(kpi.filter, dialect)),
        "numerator": text(kpi.numerator),
        "denominator": text(kpi.denominator),
        "formula": text(_written(kpi.formula, dialect, row_level=False)),
        "params": json.dumps(kpi.params, sort_keys=True, default=str) if kpi.params else "",
        "dimensions": ", ".join(
            d.column if d.name == d.column.split(".")[-1] else f"{d.name}={d.column}"
            for d in kpi.dimensions
        ),
        "grains": ", ".join(kpi.grains),
        "label": kpi.label,
        "description": " ".join(kpi.description.split()),
        "category": kpi.category,
        "owner": text(kpi.owner),
        "format": kpi.format,
        "unit": text(kpi.unit),
        "direction": kpi.direction,
        "strategic": "yes" if kpi.strategic else "",
        "targets": "; ".join(targets),
        "status": _thresholds_text(spec, kpi),
        "windows": ", ".join(w.name for w in kpi.windows),
        "deviation": (
            f"periods {kpi.deviation.periods}, k {kpi.deviation.k:g}" if kpi.deviation else ""
        ),
    }
    return fields


def _target_text(target: Any) -> str:
    parts = [f"{target.kind}"]
    if target.value is not None:
        parts.append(f"{target.value:g}")
    if target.series:
        parts.append(", ".join(f"{k}: {v:g}" for k, v in target.series))
    if target.growth is not None:
        parts.append(f"{target.growth:+g}")
    if target.per:
        parts.append(f"per {target.per}")
    if target.where:
        parts.append(f"where {target.where[0]}={target.where[1]}")
    if target.valid_from or target.valid_to:
        parts.append(f"{target.valid_from or ''}..{target.valid_to or ''}")
    return " ".join(parts)


def _thresholds_text(spec: Spec, kpi: Kpi) -> str:
    if kpi.thresholds is None:
        return ""
    return f"on_track {kpi.thresholds.on_track:g}, at_risk {kpi.thresholds.at_risk:g}"


def compare_definitions(base: Spec, head: Spec) -> list[KpiChange]:
    """Added, removed and redefined KPIs (a rename: same definition, new name)."""
    base_kpis = {k.name: k for k in base.kpis}
    head_kpis = {k.name: k for k in head.kpis}
    changes: list[KpiChange] = []
    removed = [n for n in base_kpis if n not in head_kpis]
    removed_by_key: dict[Any, list[str]] = {}
    for name in removed:
        key = definition_key(base_kpis[name], base.config.dialect)
        removed_by_key.setdefault(key, []).append(name)
    renamed: dict[str, str] = {}
    for name, kpi in head_kpis.items():
        if name in base_kpis:
            continue
        candidates = removed_by_key.get(definition_key(kpi, head.config.dialect), [])
        if candidates:
            renamed[name] = candidates.pop(0)
    for name, kpi in head_kpis.items():
        if name in base_kpis:
            before, after = definition(base_kpis[name], base), definition(kpi, head)
            fields = _field_changes(before, after)
            changes.append(KpiChange(name, "changed", kpi.label, kpi.file, definition=fields))
        else:
            old = renamed.get(name)
            fields = (
                _field_changes(definition(base_kpis[old], base), definition(kpi, head))
                if old
                else []
            )
            changes.append(
                KpiChange(name, "added", kpi.label, kpi.file, renamed_from=old, definition=fields)
            )
    for name in removed:
        kpi = base_kpis[name]
        changes.append(KpiChange(name, "removed", kpi.label, kpi.file))
    return changes


def _field_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[FieldChange]:
    return [
        FieldChange(name, before.get(name, ""), after.get(name, ""))
        for name in after
        if before.get(name, "") != after.get(name, "")
    ]


def compare_sql(base: Mapping[str, str], head: Mapping[str, str]) -> list[SqlChange]:
    """Per generated file: added, removed or changed, with line counts and a unified diff."""
    changes: list[SqlChange] = []
    for path in sorted({*base, *head}):
        old, new = base.get(path), head.get(path)
        if old == new:
            continue
        lines = list(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"base/{path}",
                tofile=f"head/{path}",
                n=2,
            )
        )
        added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
        removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
        status: Status = "added" if old is None else "removed" if new is None else "changed"
        changes.append(SqlChange(path, status, added, removed, "".join(lines)))
    return changes


def compare_values(
    base_warehouse: Path,
    head_warehouse: Path,
    pairs: Mapping[str, str],
    top: int = 10,
) -> tuple[dict[str, ValueDiff], dict[str, int], dict[str, int]]:
    """Compare kpi_values of the two warehouses for `pairs` (head name → base name).

    Returns each pair's ValueDiff (keyed by head name) and the row counts of every KPI on
    each side (base, head), for KPIs added or removed.
    """
    import duckdb

    with duckdb.connect(":memory:") as con:
        con.execute(f"attach '{_quoted(base_warehouse)}' as base (read_only)")
        con.execute(f"attach '{_quoted(head_warehouse)}' as head (read_only)")
        base_counts = dict(
            con.execute(f"select kpi, count(*) from base.{VALUES_TABLE} group by kpi").fetchall()
        )
        head_counts = dict(
            con.execute(f"select kpi, count(*) from head.{VALUES_TABLE} group by kpi").fetchall()
        )
        con.execute("create temp table pairs (head_kpi varchar, base_kpi varchar)")
        if pairs:
            con.executemany("insert into pairs values (?, ?)", list(pairs.items()))
        con.execute(
            f"""
            create temp table joined as
            with b as (
                select p.head_kpi as kpi, v.grain, v.period_start, v.dimension,
                       v.dimension_value, v.value::double as value
                from base.{VALUES_TABLE} v join pairs p on v.kpi = p.base_kpi
            ), h as (
                select v.kpi, v.grain, v.period_start, v.dimension, v.dimension_value,
                       v.value::double as value
                from head.{VALUES_TABLE} v join pairs p on v.kpi = p.head_kpi
            )
            select coalesce(h.kpi, b.kpi) as kpi, coalesce(h.grain, b.grain) as grain,
                   coalesce(h.period_start, b.period_start) as period_start,
                   coalesce(h.dimension, b.dimension) as dimension,
                   coalesce(h.dimension_value, b.dimension_value) as dimension_value,
                   b.value as base_value, h.value as head_value,
                   b.kpi is not null as in_base, h.kpi is not null as in_head,
                   h.value - b.value as change,
                   case when b.value <> 0 then (h.value - b.value) / abs(b.value) end as relative,
                   b.kpi is not null and h.kpi is not null and (
                       (b.value is null) <> (h.value is null)
                       or abs(h.value - b.value) > {TOLERANCE} * greatest(1, abs(b.value))
                   ) as moved
            from b full join h using (kpi, grain, period_start, dimension, dimension_value)
            """
        )
        diffs: dict[str, ValueDiff] = {name: ValueDiff() for name in pairs}
        for kpi, compared, moved, only_base, only_head in con.execute(
            """
            select kpi, count(*) filter (where in_base and in_head),
                   count(*) filter (where moved),
                   count(*) filter (where in_base and not in_head),
                   count(*) filter (where in_head and not in_base)
            from joined group by kpi
            """
        ).fetchall():
            diffs[kpi] = ValueDiff(compared, moved, only_base, only_head)
        for kpi, grain, moved in con.execute(
            "select kpi, grain, count(*) from joined where moved group by kpi, grain"
        ).fetchall():
            diffs[kpi].moved_by_grain[grain] = moved
        for kpi, diff in diffs.items():
            order = {g: i for i, g in enumerate(GRAIN_ORDER)}
            diff.moved_by_grain = dict(
                sorted(diff.moved_by_grain.items(), key=lambda item: order.get(item[0], 99))
            )
            del kpi
        for row in con.execute(
            """
            select kpi, grain, period_start::varchar, dimension, dimension_value,
                   base_value, head_value, change, relative
            from (
                select *, row_number() over (
                    partition by kpi
                    order by abs(change) desc nulls last, grain, period_start, dimension,
                             dimension_value
                ) as n
                from joined where moved
            ) where n <= ?
            order by kpi, n
            """,
            [top],
        ).fetchall():
            diffs[row[0]].moves.append(Move(*row[1:]))
    return diffs, base_counts, head_counts


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def compare(
    base: Loaded,
    head: Loaded,
    base_side: Side,
    head_side: Side,
    base_warehouse: Path | None,
    head_warehouse: Path | None,
    top: int = 10,
) -> DiffReport:
    """Definitions, SQL and (when both warehouses hold kpi_values) values, in one report."""
    report = DiffReport(base_side, head_side, top=top)
    base_side.kpis, head_side.kpis = len(base.spec.kpis), len(head.spec.kpis)
    changes = compare_definitions(base.spec, head.spec)
    report.sql = compare_sql(base.sql, head.sql)
    if base_warehouse is not None and head_warehouse is not None:
        pairs = {
            c.name: c.renamed_from or c.name
            for c in changes
            if c.status == "changed" or c.renamed_from
        }
        diffs, base_counts, head_counts = compare_values(base_warehouse, head_warehouse, pairs, top)
        for change in changes:
            if change.name in diffs:
                change.values = diffs[change.name]
            elif change.status == "added":
                change.rows = head_counts.get(change.name, 0)
            else:
                change.rows = base_counts.get(change.name, 0)
    for change in changes:
        moved = change.values is not None and change.values.changed
        if change.status == "changed" and not change.definition and not moved:
            report.unchanged.append(change.name)
        else:
            report.kpis.append(change)
    order = {"added": 0, "removed": 1, "changed": 2}
    report.kpis.sort(key=lambda c: (order[c.status], c.name))
    report.unchanged.sort()
    return report


# ---------------------------------------------------------------- the whole diff


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
        base_wh, head_wh = _build_both(
            base_root, head_root, head_warehouse, work, base_side, head_side
        )
    return compare(base, head, base_side, head_side, base_wh, head_wh, top)


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _build_both(
    base_root: Path,
    head_root: Path,
    head_warehouse: Path | None,
    work: Path,
    base_side: Side,
    head_side: Side,
) -> tuple[Path | None, Path | None]:
    """Build both sides' kpi_values.

    The base is seeded and built first; when the head has the same seeds, it starts from a
    copy of the base's warehouse and rebuilds only what changed (dbt's `state:modified+`
    against the base's manifest), falling back to a full build if that fails.
    """
    base_work, head_work = work / "base-dbt", work / "head-dbt"
    # one file name for both: DuckDB names the database after the file, and dbt's state
    # comparison would see every source as moved to another database
    base_wh = base_work / WAREHOUSE_NAME
    head_wh = head_warehouse.resolve() if head_warehouse is not None else head_work / WAREHOUSE_NAME
    head_work.mkdir(parents=True, exist_ok=True)
    seeded = False
    try:
        seed(base_root, base_wh, base_work)
        seeded = True
        build_values(base_root, base_wh, base_work)
    except DbtError as exc:
        base_side.build_error = str(exc)
    if head_warehouse is None:
        try:
            if seeded and seeds_fingerprint(base_root) == seeds_fingerprint(head_root):
                shutil.copy2(base_wh, head_wh)
                manifest = base_work / "target" / "manifest.json"
                if base_side.build_error is None and manifest.is_file():
                    try:
                        build_values(
                            head_root,
                            head_wh,
                            head_work,
                            select="state:modified+,+kpi_values",
                            state=manifest.parent,
                        )
                    except DbtError:
                        build_values(head_root, head_wh, head_work)
                else:
                    build_values(head_root, head_wh, head_work)
            else:
                seed(head_root, head_wh, head_work)
                build_values(head_root, head_wh, head_work)
        except DbtError as exc:
            head_side.build_error = str(exc)
    for side, warehouse in ((base_side, base_wh), (head_side, head_wh)):
        side.warehouse = str(warehouse)
        if side.build_error is None:
            side.values = has_values(warehouse)
            if not side.values:
                side.notes.append(f"no {VALUES_TABLE} was built")
    return (
        base_wh if base_side.values else None,
        head_wh if head_side.values else None,
    )


# ---------------------------------------------------------------- stage 5: render


def _number(value: float | None) -> str:
    if value is None:
        return "NULL"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.2f}"
    return f"{value:,.4g}"


def _signed(value: float | None) -> str:
    if value is None:
        return ""
    text = _number(abs(value))
    return f"+{text}" if value > 0 else f"-{text}" if value < 0 else "0"


def _percent(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:+.1%}"


def _slice(move: Move) -> str:
    return "total" if move.dimension == "total" else f"{move.dimension}={move.dimension_value}"


def _side_name(side: Side) -> str:
    return f"{side.name} ({side.commit[:7]})" if side.commit else side.name


def headline(report: DiffReport) -> str:
    parts = [
        f"{len(report.of('added'))} added",
        f"{len(report.of('removed'))} removed",
        f"{len(report.of('changed'))} changed",
        f"{len(report.unchanged)} unchanged",
    ]
    sql = f"{len(report.sql)} generated SQL file(s) changed"
    return f"KPIs: {', '.join(parts)}; {sql}"


def _summary(change: KpiChange, report: DiffReport) -> str:
    """One line: what happened to the KPI."""
    if change.status == "added":
        text = f"renamed from {change.renamed_from}" if change.renamed_from else "new KPI"
        if change.renamed_from and change.values is not None:
            text += "; values identical" if not change.values.changed else "; values moved"
        elif report.values_compared:
            text += f", {change.rows:,} rows"
        return text
    if change.status == "removed":
        text = "removed"
        renamed = next((c.name for c in report.of("added") if c.renamed_from == change.name), None)
        if renamed:
            text = f"renamed to {renamed}"
        elif report.values_compared:
            text += f", {change.rows:,} rows gone"
        return text
    parts = []
    if change.definition:
        parts.append("definition: " + ", ".join(f.field for f in change.definition))
    if change.values is not None:
        parts.append(_values_line(change.values))
    return "; ".join(parts)


def _values_line(values: ValueDiff) -> str:
    if not values.changed:
        return "values unchanged"
    text = f"{values.moved:,} of {values.compared:,} rows moved"
    if values.moved_by_grain:
        text += " (" + ", ".join(f"{g} {n:,}" for g, n in values.moved_by_grain.items()) + ")"
    if values.only_head:
        text += f", {values.only_head:,} new rows"
    if values.only_base:
        text += f", {values.only_base:,} rows gone"
    return text


def _detailed(report: DiffReport) -> list[KpiChange]:
    """KPIs whose definition changed or whose values moved: shown field by field."""
    return [c for c in report.kpis if c.definition or (c.values is not None and c.values.moves)]


def _problems(report: DiffReport) -> list[str]:
    lines = []
    for side in (report.base, report.head):
        label = _side_name(side)
        if side.issues:
            lines.append(f"{label} does not compile ({len(side.issues)} error(s)):")
            lines += [f"  {i}" for i in side.issues[:10]]
        if side.build_error:
            lines.append(f"{label}: the build failed: {side.build_error}")
        lines += [f"{label}: {note}" for note in side.notes]
    if report.base.warehouse is None and report.head.warehouse is None:
        lines.append("values not compared: definitions and generated SQL only")
    elif not report.values_compared:
        lines.append("values not compared: kpi_values missing on one side")
    return lines


def render_markdown(report: DiffReport, *, sql_diff_lines: int = 80) -> str:
    """The report as Markdown for a pull-request comment."""
    out: list[str] = [
        f"## KPI diff: `{_side_name(report.base)}` → {_side_name(report.head)}",
        "",
        f"**{headline(report)}**",
        "",
    ]
    problems = _problems(report)
    if problems:
        out += ["> [!WARNING]"] + [f"> {_md(p)}  " for p in problems] + [""]
    if report.kpis:
        out += ["| | KPI | what changed |", "|---|---|---|"]
        icons = {"added": "🟢 added", "removed": "🔴 removed", "changed": "🟡 changed"}
        for change in report.kpis:
            out.append(
                f"| {icons[change.status]} | `{change.name}` | {_md(_summary(change, report))} |"
            )
        out.append("")
    else:
        out += ["No KPI changed.", ""]
    for change in _detailed(report):
        title = f"### `{change.name}`"
        if change.renamed_from:
            title += f" (renamed from `{change.renamed_from}`)"
        out += [title, ""]
        if change.definition:
            out += ["| field | base | head |", "|---|---|---|"]
            out += [f"| {f.field} | {_code(f.base)} | {_code(f.head)} |" for f in change.definition]
            out.append("")
        if change.values is not None:
            out += [_md(_values_line(change.values)).capitalize(), ""]
            if change.values.moves:
                shown = len(change.values.moves)
                out += [
                    f"Largest moves (top {shown} of {change.values.moved:,}):",
                    "",
                    "| grain | period | slice | base | head | change | change % |",
                    "|---|---|---|--:|--:|--:|--:|",
                ]
                out += [
                    f"| {m.grain} | {m.period_start} | {_md(_slice(m))} | {_number(m.base)}"
                    f" | {_number(m.head)} | {_signed(m.change)} | {_percent(m.relative)} |"
                    for m in change.values.moves
                ]
                out.append("")
    if report.sql:
        out += [
            f"<details><summary>Generated SQL: {len(report.sql)} file(s) changed</summary>",
            "",
            "| file | change | lines |",
            "|---|---|--:|",
        ]
        out += [
            f"| `{s.path}` | {s.status} | +{s.added_lines} -{s.removed_lines} |" for s in report.sql
        ]
        budget = sql_diff_lines
        diff_lines: list[str] = []
        for s in report.sql:
            lines = s.diff.splitlines()
            if s.status != "changed" or len(lines) > budget:
                continue
            diff_lines += lines
            budget -= len(lines)
        if diff_lines:
            out += ["", "```diff", *diff_lines, "```"]
        out += ["", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    if not text:
        return "—"
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def render_json(report: DiffReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)


def render_terminal(report: DiffReport, console: Any) -> None:
    """The report with rich tables, printed on `console` (a rich Console)."""
    from rich.table import Table

    console.print(f"[bold]KPI diff[/]: {_side_name(report.base)} → {_side_name(report.head)}")
    console.print(headline(report))
    for line in _problems(report):
        console.print(line, style="yellow", markup=False)
    if report.kpis:
        table = Table("", "KPI", "what changed", show_edge=False)
        styles = {"added": "green", "removed": "red", "changed": "yellow"}
        for change in report.kpis:
            table.add_row(
                f"[{styles[change.status]}]{change.status}[/]",
                change.name,
                _summary(change, report),
            )
        console.print(table)
    for change in _detailed(report):
        title = change.name + (
            f" (renamed from {change.renamed_from})" if change.renamed_from else ""
        )
        console.print(f"\n[bold]{title}[/]")
        if change.definition:
            table = Table("field", "base", "head", show_edge=False)
            for f in change.definition:
                table.add_row(f.field, f.base or "—", f.head or "—")
            console.print(table)
        if change.values is not None:
            console.print(_values_line(change.values), markup=False)
            if change.values.moves:
                table = Table(
                    "grain",
                    "period",
                    "slice",
                    "base",
                    "head",
                    "change",
                    "change %",
                    show_edge=False,
                )
                for m in change.values.moves:
                    table.add_row(
                        m.grain,
                        m.period_start,
                        _slice(m),
                        _number(m.base),
                        _number(m.head),
                        _signed(m.change),
                        _percent(m.relative),
                    )
                console.print(table)
    if report.sql:
        table = Table("generated file", "change", "lines", show_edge=False)
        for s in report.sql:
            table.add_row(s.path, s.status, f"+{s.added_lines} -{s.removed_lines}")
        console.print()
        console.print(table)
