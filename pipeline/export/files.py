"""File exports of the published KPI marts: Parquet (partitioned by grain), CSV and JSON.

Layout of an export folder (documented in docs/exports.md):

    manifest.json                          what was exported: tables, rows, columns, files
    catalog.json, catalog.schema.json      the KPI catalog and its schema (when given)
    parquet/kpi_values/grain=<grain>/kpi_values.parquet   hive-partitioned by grain
    parquet/kpi_windows/grain=<grain>/kpi_windows.parquet
    parquet/kpi_daily.parquet …            tables without a grain column: one file each
    csv/<table>.csv                        header row, comma-separated, NULL as empty
    json/<table>.json                      one JSON array of objects per table

Atomicity: everything is written to a staging folder next to `out` and swapped in at the
end (an atomic directory exchange on Linux, two renames elsewhere), so a reader sees the
previous complete export or the new complete one, never a half-written file; a failure or
a kill midway leaves the previous export as it was (the staging folder is removed, or
cleaned by the next export).
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from pipeline.errors import NoWarehouse, UserError
from pipeline.export.catalog import SCHEMA_FILE, build_catalog, schema_path
from pipeline.plan.models import KPI_MARTS
from pipeline.project import Project
from pipeline.warehouse import sql
from pipeline.warehouse.names import MART_KEYS, PUBLISHED_SCHEMA, Relation

if TYPE_CHECKING:
    from pipeline.compiler import Compiled

EXPORT_VERSION = "1"
MANIFEST = "manifest.json"
FORMATS = ("parquet", "csv", "json")
DEFAULT_EXPORT_DIR = Path("target") / "kpi" / "exports"
PARTITION_COLUMN = "grain"


class ExportError(UserError):
    """The export cannot start: an unknown format, no marts, a folder it must not replace."""


@dataclass
class ExportReport:
    out: Path
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows
    files: list[str] = field(default_factory=list)  # relative to `out`
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "tables": self.tables,
            "files": self.files,
            "seconds": round(self.seconds, 3),
        }


def default_export_dir(project: Project) -> Path:
    """Where `kpi build` exports: `target/kpi/exports/` in the project (KPI_EXPORT_DIR overrides)."""
    value = project.env.get("KPI_EXPORT_DIR") or os.environ.get("KPI_EXPORT_DIR")
    if value:
        path = Path(value)
        return path if path.is_absolute() else project.root / path
    return project.root / DEFAULT_EXPORT_DIR


def export(
    warehouse: Path,
    out: Path,
    *,
    schema: str = PUBLISHED_SCHEMA,
    formats: Sequence[str] = FORMATS,
    catalog: Mapping[str, Any] | None = None,
    tables: Sequence[str] | None = None,
) -> ExportReport:
    """Export the published KPI marts of `warehouse` (schema `schema`) into folder `out`.

    `catalog`: a catalog document (`catalog.build_catalog`) written as catalog.json with
    its schema. `tables`: a subset of KPI_MARTS (default: every one the schema holds).
    Raises ExportError when there is nothing to export or `out` is a folder holding
    something other than an export.
    """
    started = time.perf_counter()
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExportError(f"unknown export format(s) {', '.join(unknown)}; use {', '.join(FORMATS)}")
    warehouse = Path(warehouse)
    out = Path(out).absolute()
    if not warehouse.is_file():
        raise NoWarehouse(warehouse)
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    staging = out.parent / f".{out.name}.staging-{secrets.token_hex(4)}"
    staging.mkdir()
    report = ExportReport(out)
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            sql.execute(con, sql.setting("enable_progress_bar", False))
            present = _relations(con, schema)
            wanted = [t for t in (tables or KPI_MARTS) if t in present]
            if not wanted:
                raise ExportError(
                    f"schema {schema} of {warehouse} holds none of the KPI marts ({', '.join(KPI_MARTS)})"
                )
            manifest_tables: dict[str, Any] = {}
            for table in wanted:
                manifest_tables[table] = _export_table(con, schema, table, staging, formats, report)
        if catalog is not None:
            _write_json(staging / "catalog.json", catalog)
            shutil.copyfile(schema_path(), staging / SCHEMA_FILE)
            report.files += ["catalog.json", SCHEMA_FILE]
        manifest = {
            "export_version": EXPORT_VERSION,
            "exported_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "warehouse": str(warehouse.absolute()),
            "schema": schema,
            "formats": list(formats),
            "tables": manifest_tables,
            "catalog": "catalog.json" if catalog is not None else None,
        }
        _write_json(staging / MANIFEST, manifest)
        report.files.append(MANIFEST)
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.seconds = time.perf_counter() - started
    return report


def export_project(
    project: Project,
    out: Path | None = None,
    *,
    formats: Sequence[str] = FORMATS,
    schema: str = PUBLISHED_SCHEMA,
    compiled: Compiled | None = None,
) -> ExportReport:
    """`kpi export` (and `kpi build` after publishing): the project's published marts plus
    its catalog, into `out` (default: `default_export_dir(project)`). `compiled`: the
    build's compile result, to skip compiling again for the catalog."""
    return export(
        project.warehouse,
        out or default_export_dir(project),
        schema=schema,
        formats=formats,
        catalog=build_catalog(project, compiled),
    )


# --- one table ------------------------------------------------------------------------


def _export_table(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    staging: Path,
    formats: Sequence[str],
    report: ExportReport,
) -> dict[str, Any]:
    relation = Relation(schema, table)
    described = sql.execute(con, sql.describe(relation)).fetchall()
    columns = [(str(r[0]), str(r[1])) for r in described]
    names = [c for c, _ in columns]
    keys = [k for k in MART_KEYS[table] if k in names] or names
    select = sql.ordered(relation, [], keys)
    row = sql.execute(con, sql.select(relation, [sql.count_star()])).fetchone()
    rows = int(row[0]) if row else 0
    files: dict[str, list[str]] = {}
    partitions: list[str] = []
    for fmt in formats:
        written: list[str] = []
        if fmt == "parquet" and PARTITION_COLUMN in names:
            partitions = [
                str(r[0])
                for r in sql.execute(con, sql.distinct(relation, PARTITION_COLUMN)).fetchall()
            ]
            rest = [c for c in names if c != PARTITION_COLUMN]
            for value in partitions:
                path = f"parquet/{table}/{PARTITION_COLUMN}={value}/{table}.parquet"
                where = sql.column(PARTITION_COLUMN).eq(exp.Literal.string(value))
                _write(con, sql.ordered(relation, rest, keys, where), staging / path, fmt)
                written.append(path)
        else:
            suffix = {"parquet": "parquet", "csv": "csv", "json": "json"}[fmt]
            path = f"{fmt}/{table}.{suffix}"
            _write(con, select, staging / path, fmt)
            written.append(path)
        files[fmt] = written
        report.files += written
    report.tables[table] = rows
    return {
        "rows": rows,
        "columns": [{"name": c, "type": t} for c, t in columns],
        "partitioned_by": PARTITION_COLUMN if partitions and "parquet" in formats else None,
        "files": files,
    }


def _write(con: duckdb.DuckDBPyConnection, select: exp.Select, path: Path, fmt: str) -> None:
    """Write one file (the one place files are written: tests make it fail midway)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sql.execute(con, sql.copy_to(select, path, fmt))


# --- the folder swap --------------------------------------------------------------------


def _check_replaceable(out: Path) -> None:
    """Refuse to replace a folder that is not an export (an empty folder is fine)."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ExportError(
            f"{out} is not empty and holds no {MANIFEST}: not replacing a folder that is not a KPI export"
        )


def _remove_stale_staging(out: Path) -> None:
    """Staging folders left by an export that was killed before its swap."""
    for stale in out.parent.glob(f".{out.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in out.parent.glob(f".{out.name}.previous-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _swap_in(staging: Path, out: Path) -> None:
    """Make `staging` the folder `out`; the previous export is removed afterwards."""
    if not out.exists():
        os.rename(staging, out)
        return
    if _exchange(staging, out):  # staging now holds the previous export
        shutil.rmtree(staging, ignore_errors=True)
        return
    previous = out.parent / f".{out.name}.previous-{secrets.token_hex(4)}"
    os.rename(out, previous)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(previous, out)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2: Callable[..., int] = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange)
    return result == 0


# --- helpers ------------------------------------------------------------------------------


def _relations(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    return {str(r[0]) for r in sql.execute(con, sql.tables(schema)).fetchall()}


def _write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def iter_export_files(out: Path) -> Iterator[Path]:
    """Every data file of an export folder (for tools listing what to load)."""
    manifest = json.loads((Path(out) / MANIFEST).read_text(encoding="utf-8"))
    for table in manifest["tables"].values():
        for paths in table["files"].values():
            for path in paths:
                yield Path(out) / path
