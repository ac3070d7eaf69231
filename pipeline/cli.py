"""The `kpi` command: thin commands that parse arguments, call one stage, and print.

User mistakes are printed as `path:line:col: error: message` with exit code 2; a failed
build exits 1; nothing a user can cause prints a Python traceback.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from pipeline import compiler
from pipeline.errors import Issue, Level, UserError
from pipeline.project import DbtError, Project
from pipeline.spec.load import load

app = typer.Typer(
    help="Metrics-as-code KPI pipeline: metric YAML → dbt KPI marts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", help="The dbt project (default: found from the current folder)."),
]

EXIT_FAILED = 1
EXIT_USER_ERROR = 2


def _project(project_dir: Path | None) -> Project:
    try:
        return Project.find(project_dir)
    except FileNotFoundError as exc:
        _fail(str(exc), EXIT_USER_ERROR)


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def _print_issues(issues: list[Issue]) -> None:
    for issue in issues:
        style = "red" if issue.level is Level.ERROR else "yellow"
        out.print(str(issue), style=style, markup=False)


@contextmanager
def _user_errors() -> Iterator[None]:
    """The one error handler: what users cause becomes a message and an exit code."""
    try:
        yield
    except UserError as exc:
        _print_issues(exc.issues)
        raise typer.Exit(EXIT_USER_ERROR) from None
    except DbtError as exc:
        _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def _compiled(project: Project) -> compiler.Compiled:
    result = compiler.compile_project(project)
    if not result.ok:
        raise UserError(result.issues)
    return result


@app.command()
def validate(project_dir: ProjectDir = None) -> None:
    """Check every metric file without touching a warehouse."""
    with _user_errors():
        project = _project(project_dir)
        started = time.perf_counter()
        from pipeline.catalog import read_catalog

        files = compiler.read_metric_files(project)
        spec, issues = compiler.check_files(files, read_catalog(project.models_dir, project.root))
        _print_issues(issues)
        errors = sum(1 for i in issues if i.level is Level.ERROR)
        elapsed = time.perf_counter() - started
        if errors:
            err.print(f"{errors} error(s) in {len(files)} metric file(s)", style="red")
            raise typer.Exit(EXIT_USER_ERROR)
        err.print(
            f"{len(spec.kpis)} KPIs in {len(files)} metric files are valid ({elapsed:.2f} s)",
            style="green",
        )


@app.command("compile")
def compile_(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 and name the stale files instead of writing.")
    ] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Write the generated KPI models under models/kpi/."""
    with _user_errors():
        project = _project(project_dir)
        result = _compiled(project)
        _print_issues(result.issues)
        if check:
            stale = compiler.stale(result.files, project.root)
            for path in stale:
                out.print(f"stale: {path}", markup=False)
            if stale:
                err.print(
                    f"{len(stale)} generated file(s) are stale: run `kpi compile`", style="red"
                )
                raise typer.Exit(EXIT_FAILED)
            err.print(f"{len(result.files)} generated files are up to date", style="green")
            return
        changed = compiler.write(result.files, project.root)
        for path in changed:
            out.print(f"wrote: {path}", markup=False)
        err.print(f"{len(result.files)} generated files, {len(changed)} changed", style="green")


@app.command()
def build(project_dir: ProjectDir = None) -> None:
    """The main job: compile the KPIs, load the raw data, build and test every model."""
    with _user_errors():
        project = _project(project_dir)
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("compile KPI models", lambda: compiler.write(_compiled(project).files, project.root)),
            ("load raw data (dbt seed)", lambda: project.dbt(["seed"])),
            (
                "build and test models (dbt build)",
                lambda: project.dbt(["build", "--exclude", "resource_type:seed"]),
            ),
        ]
        started = time.perf_counter()
        with err.status("") as status:
            for label, run in steps:
                status.update(f"{label}… ({time.perf_counter() - started:.0f} s)")
                step_started = time.perf_counter()
                run()
                err.print(f"[green]✓[/] {label} ({time.perf_counter() - step_started:.1f} s)")
        err.print(
            f"warehouse: {project.warehouse} (schema analytics) in {time.perf_counter() - started:.0f} s"
        )


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Every KPI with its label, category, type, grains and owner."""
    with _user_errors():
        project = _project(project_dir)
        spec, issues = load(compiler.read_metric_files(project))
        if any(i.level is Level.ERROR for i in issues):
            raise UserError(issues)
        rows: list[dict[str, Any]] = [
            {
                "name": k.name,
                "label": k.label,
                "category": k.category,
                "type": k.agg if k.kind == "simple" else k.kind,
                "grains": list(k.grains),
                "owner": k.owner,
            }
            for k in sorted(spec.kpis, key=lambda k: (k.category, k.name))
        ]
        if as_json:
            out.print(json.dumps(rows, indent=2), markup=False)
            return
        table = Table("name", "label", "category", "type", "grains", "owner")
        for row in rows:
            table.add_row(
                row["name"],
                row["label"],
                row["category"],
                row["type"],
                ",".join(row["grains"]),
                row["owner"] or "",
            )
        out.print(table)


class DataFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


@app.command()
def generate(
    out: Annotated[Path | None, typer.Option(help="Folder to write (default: the project's seeds/).")] = None,
    scale: Annotated[float, typer.Option(help="1 = the committed seeds (about 3,000 orders).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same bytes.")] = 42,
    fmt: Annotated[DataFormat, typer.Option("--format", help="csv (dbt seeds) or parquet.")] = DataFormat.csv,
    defect: Annotated[str | None, typer.Option(help="Corrupt the written CSVs with a named defect.")] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Write the demo business's raw data (Happy Home Goods)."""
    with _user_errors():
        from pipeline import datagen

        if defect is not None and defect not in datagen.DEFECTS:
            _fail(f"unknown defect '{defect}'; one of: {', '.join(datagen.DEFECTS)}", EXIT_USER_ERROR)
        if fmt is DataFormat.csv and scale != 1.0:
            _fail("CSV seeds are written at scale 1; use --format parquet for other scales", EXIT_USER_ERROR)
        target = out or _project(project_dir).seeds_dir
        started = time.perf_counter()
        with err.status(f"writing {fmt.value} to {target}…"):
            if fmt is DataFormat.csv:
                counts = datagen.write_seeds(target, seed=seed)
            else:
                counts = datagen.write_parquet(target, scale=scale, seed=seed)
        err.print(f"{sum(counts.values()):,} rows in {len(counts)} tables, {time.perf_counter() - started:.1f} s")
        if defect is not None:
            injected = datagen.inject_defect_into_dir(target, defect)
            err.print(f"defect {injected.name}: {injected.description} ({injected.rows} rows of {injected.table})")


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def query(
    name: Annotated[str, typer.Argument(help="The KPI's name.")],
    grain: Annotated[str, typer.Option(help="day, week, month, quarter or year.")] = "month",
    by: Annotated[str | None, typer.Option("--by", help="A dimension to slice by.")] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
    project_dir: ProjectDir = None,
) -> None:
    """A KPI's values from the published marts: every column of the KPI mart."""
    with _user_errors():
        project = _project(project_dir)
        from pipeline import warehouse

        columns, rows = warehouse.kpi_rows(project, name, grain, by)
        if fmt is OutputFormat.json:
            records = [dict(zip(columns, row, strict=True)) for row in rows]
            out.print(json.dumps(records, indent=2, default=str), markup=False)
        elif fmt is OutputFormat.csv:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
            sys.stdout.write(buffer.getvalue())
        else:
            table = Table(*columns)
            for row in rows:
                table.add_row(*("" if v is None else str(v) for v in row))
            out.print(table)


def main() -> None:  # pragma: no cover - console entry point
    app()
