"""A side of the diff: its metric files loaded (and compiled), its kpi_values built
into a temporary DuckDB file."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlglot import exp

from pipeline.diff.report import Side
from pipeline.errors import Issue
from pipeline.project import DbtError, Project, release_duckdb
from pipeline.render.dbt import KPI_DIR
from pipeline.spec.model import Spec
from pipeline.warehouse import sql
from pipeline.warehouse.names import PUBLISHED_SCHEMA, RAW_SCHEMA, Relation, values_table

VALUES_TABLE = values_table()
WAREHOUSE_NAME = "kpi_diff.duckdb"
PROJECT_WAREHOUSE = "project_warehouse"  # the project's warehouse, attached to copy its raw tables


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


def seed(root: Path, warehouse: Path, work: Path, raw_from: Path | None = None) -> None:
    """Load the side's seeds (the raw tables) into `warehouse`, then copy there the raw
    tables of the project's warehouse `raw_from` that no seed loaded (raw data that lives
    in the warehouse, not in seed files)."""
    try:
        _dbt_project(root, warehouse, work).dbt(["seed"])
    finally:
        release_duckdb()
    if raw_from is None or not raw_from.is_file():
        return
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        sql.execute(con, sql.attach(raw_from, PROJECT_WAREHOUSE))
        listed = sql.select(
            Relation("information_schema", "tables"),
            ["table_catalog", "table_name"],
            sql.column("table_schema").eq(exp.Literal.string(RAW_SCHEMA)),
        )
        tables = sql.execute(con, listed).fetchall()
        seeded = {name for catalog, name in tables if catalog != PROJECT_WAREHOUSE}
        sql.execute(con, sql.create_schema(RAW_SCHEMA))
        for catalog, name in tables:
            if catalog == PROJECT_WAREHOUSE and name not in seeded:
                table = Relation(RAW_SCHEMA, name)
                copied = exp.select("*").from_(table.node(catalog=PROJECT_WAREHOUSE))
                sql.execute(con, exp.Create(kind="TABLE", this=table.node(), expression=copied))


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
        found = sql.execute(con, sql.has_table(VALUES_TABLE)).fetchone()
    return bool(found and found[0])




def build_both(
    base_root: Path,
    head_root: Path,
    head_warehouse: Path | None,
    work: Path,
    base_side: Side,
    head_side: Side,
    raw_from: Path | None = None,
) -> tuple[Path | None, Path | None]:
    """Build both sides' kpi_values.

    The base is seeded and built first; when the head has the same seeds, it starts from a
    copy of the base's warehouse and rebuilds only what changed (dbt's `state:modified+`
    against the base's manifest), falling back to a full build if that fails. Raw tables
    no seed provides are copied from `raw_from` (the project's warehouse) into both.
    """
    base_work, head_work = work / "base-dbt", work / "head-dbt"
    # one file name for both: DuckDB names the database after the file, and dbt's state
    # comparison would see every source as moved to another database
    base_wh = base_work / WAREHOUSE_NAME
    head_wh = head_warehouse.resolve() if head_warehouse is not None else head_work / WAREHOUSE_NAME
    head_work.mkdir(parents=True, exist_ok=True)
    seeded = False
    try:
        seed(base_root, base_wh, base_work, raw_from)
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
                seed(head_root, head_wh, head_work, raw_from)
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


