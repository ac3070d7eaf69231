"""The `kpi` command: thin commands that parse arguments, call one stage, and print.

Every command runs inside one error handler: an error is printed as
`path:line:col: error: message` with the exit code of its kind (README, "Exit codes"),
never as a Python traceback unless `kpi --debug` asks for one.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core
from rich.console import Console
from rich.table import Table

from pipeline import compiler
from pipeline.errors import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    NOWHERE,
    Issue,
    Level,
    PipelineError,
    UserError,
    error,
    has_errors,
)
from pipeline.project import Project
from pipeline.spec.load import load

if TYPE_CHECKING:  # the build's modules load GX and dbt: only when a command needs them
    from pipeline.alerts.rules import Rules
    from pipeline.progress import Progress
    from pipeline.report import BuildReport


class _Commands(typer.core.TyperGroup):
    """`kpi` and its subcommands: each runs inside the one error handler."""

    def invoke(self, ctx: Any) -> Any:  # a typer.Context
        with _reported(debug=bool(ctx.params.get("debug"))):
            return super().invoke(ctx)


app = typer.Typer(
    cls=_Commands,
    help="Metrics-as-code KPI pipeline: metric YAML → dbt KPI marts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show an error's Python traceback instead of its message.")
    ] = False,
) -> None:
    """Options of every command (`_Commands.invoke` reads --debug)."""


@contextmanager
def _reported(*, debug: bool) -> Iterator[None]:
    """The one error handler: an error becomes its messages on stderr and the exit code of
    its kind; with --debug, its traceback. Typer's own exits and usage errors pass."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except (Exception, KeyboardInterrupt) as exc:
        issues, code = _explained(exc)
        if debug:
            traceback.print_exc()
        else:
            _print_issues(issues, err)
        raise typer.Exit(code) from None


def _explained(exc: BaseException) -> tuple[list[Issue], int]:
    """What to print for an error, and the exit code of its kind."""
    if isinstance(exc, PipelineError):
        return exc.issues, exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return [error("interrupted", NOWHERE)], EXIT_INTERRUPTED
    if isinstance(exc, OSError):  # a file it cannot write: a full disk, no permission
        return [error(str(exc), NOWHERE)], EXIT_FAILED
    # the warehouse file held by a build, or not a DuckDB file (duckdb is imported if so)
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.IOException):
        return [error(f"cannot open the warehouse: {exc}", NOWHERE)], EXIT_FAILED
    first = next(iter(str(exc).splitlines()), "")
    message = f"{type(exc).__name__}: {first} (unexpected; `kpi --debug …` shows the traceback)"
    return [error(message, NOWHERE)], EXIT_INTERNAL


ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", help="The dbt project (default: found from the current folder)."),
]


def _print_issues(issues: list[Issue], console: Console) -> None:
    """One print per run of issues of one level: a print costs more than its text."""
    for level, run in groupby(issues, key=lambda i: i.level):
        style = "red" if level is Level.ERROR else "yellow"
        console.print("\n".join(str(i) for i in run), style=style, markup=False)


_short_lived_process = False


def _short_lived() -> None:
    """A command whose process ends with it: cyclic GC would only pass, again and again, over
    parsed files and SQL trees that all die together (a tenth of `kpi compile`), and `main`
    ends the process without freeing them one by one (another tenth)."""
    global _short_lived_process
    _short_lived_process = True
    gc.disable()


def main() -> None:
    """The `kpi` command: `app`, then, after a short-lived command, an exit that skips the
    interpreter's teardown (its output flushed, nothing else left to run)."""
    try:
        app()
    except SystemExit as done:
        if not _short_lived_process:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(done.code if isinstance(done.code, int) else int(done.code is not None))


def _compiled(project: Project) -> compiler.Compiled:
    result = compiler.compile_project(project)
    if not result.ok:
        raise UserError(result.issues)
    return result


@app.command()
def init(
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="The dbt project or empty folder (default: here)."),
    ] = None,
) -> None:
    """Set up the KPI pipeline in a dbt project (or an empty folder): settings, a first KPI,
    starter expectations per source. Nothing that exists is overwritten."""
    from pipeline.scaffold import init as scaffold

    root = (project_dir or Path.cwd()).resolve()
    done = scaffold(root)
    for path in done.written:
        out.print(f"wrote: {path.relative_to(root)}", markup=False)
    for path in done.kept:
        out.print(f"kept: {path.relative_to(root)}", markup=False)
    for note in done.notes:
        err.print(f"note: {note}", style="yellow", markup=False)
    err.print("next: edit metrics/, then `kpi validate` and `kpi compile`", style="green")


@app.command()
def validate(project_dir: ProjectDir = None) -> None:
    """Check every metric file without touching a warehouse."""
    _short_lived()
    project = Project.find(project_dir)
    started = time.perf_counter()
    from pipeline.catalog import read_catalog

    files = compiler.read_metric_files(project)
    spec, issues = compiler.check_files(
        files, read_catalog(project.models_dir, project.root), with_hygiene=True
    )
    _print_issues(issues, out)
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
    _short_lived()
    project = Project.find(project_dir)
    result = _compiled(project)
    _print_issues(result.issues, out)
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


AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Judge freshness and future dates against this time (default: $KPI_AS_OF, else now).",
    ),
]
Wait = Annotated[
    float,
    typer.Option(help="Seconds to wait for another build, or a process holding the warehouse file."),
]
RawParquet = Annotated[
    Path | None,
    typer.Option(
        "--raw-parquet",
        help="Load the dbt sources' tables from Parquet files under DIR instead of the seeds "
        "(default: $KPI_RAW_PARQUET).",
        metavar="DIR",
    ),
]
RawParquetLayout = Annotated[
    str | None,
    typer.Option(
        "--raw-parquet-layout",
        help="Where a table's files are under DIR: {source}, {table}, {identifier}, globs "
        "(default: $KPI_RAW_PARQUET_LAYOUT, else {source}/{table}.parquet).",
        metavar="PATTERN",
    ),
]


def _with_raw_parquet(project: Project, folder: Path | None, layout: str | None = None) -> Project:
    from pipeline.raw import check_layout

    env = dict(project.env)
    if folder is not None:
        if not folder.is_dir():
            raise UserError(f"--raw-parquet: no folder {folder}")
        env["KPI_RAW_PARQUET"] = str(folder.resolve())
    if layout is not None:
        env["KPI_RAW_PARQUET_LAYOUT"] = layout
    project = Project(project.root, env)
    try:
        check_layout(project.raw_parquet_layout)
    except ValueError as exc:
        raise UserError(f"--raw-parquet-layout: {exc}") from None
    return project


@contextmanager
def _live_progress() -> Iterator[Progress]:
    """The build's progress, live: each stage (and wait) printed with the time since the
    start; the status line shows the latest event, details too (a model, a chunk), ticking."""
    from rich.markup import escape
    from rich.progress import Progress as Bar
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    from pipeline.progress import Detail, Event

    started = time.perf_counter()
    with Bar(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=err, transient=True,
    ) as bar:
        task = bar.add_task("starting…", total=None)

        def progress(event: Event) -> None:
            bar.update(task, description=escape(str(event)))
            if not isinstance(event, Detail):
                err.print(f"[dim]{time.perf_counter() - started:6.1f} s[/] {escape(str(event))}")

        yield progress


def _report(report: BuildReport) -> None:
    from pipeline.report import print_report

    print_report(report, err)


Target = Annotated[
    str,
    typer.Option(
        "--target",
        help="dbt target in profiles.yml: duckdb (gate, safe publish, exports) or another warehouse (dbt build).",
    ),
]


@app.command()
def build(
    as_of: AsOf = None,
    wait: Wait = 0.0,
    target: Target = "duckdb",
    raw_parquet: RawParquet = None,
    raw_parquet_layout: RawParquetLayout = None,
    alert: Annotated[
        bool,
        typer.Option(
            "--alert",
            help="Send the alerts after publishing; a blocked or failed build sends 'build blocked' (docs/alerts.md).",
        ),
    ] = False,
    project_dir: ProjectDir = None,
) -> None:
    """The main job: compile the KPIs, load and check the raw data, build, test, publish, export."""
    from pipeline import build as pipeline_build
    from pipeline.progress import pause
    from pipeline.publish import build_lock

    project = _with_raw_parquet(Project.find(project_dir), raw_parquet, raw_parquet_layout)
    rules = _alert_rules(project, target) if alert else None
    started = time.perf_counter()
    # the lock before anything is written, until the export is done; the build reads
    # its inputs once: dbt builds a snapshot of the project compiled at the start
    with build_lock(project.warehouse, wait_seconds=wait, on_wait=_waiting):
        frozen = project.snapshot(project.root / "target" / "kpi" / "inputs")
        with err.status("compiling KPI models…"):
            compiled = _compiled(frozen)
            changed = compiler.write(compiled.files, project.root)
            compiler.write(compiled.files, frozen.root)
        err.print(f"[green]✓[/] KPI models compiled ({len(changed)} changed)")
        if target != "duckdb":
            _build_elsewhere(frozen, target, started)
            return
        with _live_progress() as progress:
            report = pipeline_build.build(
                frozen, as_of=as_of, progress=progress,
                reports_dir=project.root / "target" / "kpi",
            )
        _report(report)
        if rules is not None:
            _send_alerts(project, rules, report)
        if report.exit_code:
            raise typer.Exit(report.exit_code)
        pause("export")
        _export(project, compiled, formats=BUILD_EXPORT_FORMATS)
    err.print(
        f"warehouse: {project.warehouse} (BI tools read schema analytics), {time.perf_counter() - started:.0f} s"
    )


def _waiting(message: str) -> None:
    err.print(message, markup=False)


# what `kpi build` exports after publishing; `kpi export` writes every format
BUILD_EXPORT_FORMATS = ("parquet",)


def _build_elsewhere(project: Project, target: str, started: float) -> None:
    """Another warehouse through its dbt adapter: seed, then build and test every model.
    The input gate, safe publish and exports are the DuckDB target's (docs/quality.md)."""
    on_target = Project(project.root, {**project.env, "KPI_TARGET": target})
    with err.status(f"dbt seed on {target}…"):
        on_target.dbt(["seed"])
    err.print(f"[green]✓[/] raw data loaded on {target}")
    with err.status(f"dbt build on {target}…"):
        on_target.dbt(["build", "--exclude", "resource_type:seed"])
    err.print(
        f"[green]✓[/] models built and tested on {target} in {time.perf_counter() - started:.0f} s"
    )


def _export(
    project: Project,
    compiled: compiler.Compiled | None,
    *,
    formats: tuple[str, ...],
    out: Path | None = None,
) -> None:
    from pipeline.export.files import export_project

    with err.status("exporting the published marts…"):
        report = export_project(project, out, formats=formats, compiled=compiled)
    err.print(
        f"[green]✓[/] exported {len(report.tables)} tables ({', '.join(formats)}) to {report.out} in {report.seconds:.1f} s"
    )


@app.command()
def check(
    as_of: AsOf = None,
    wait: Wait = 0.0,
    raw_parquet: RawParquet = None,
    raw_parquet_layout: RawParquetLayout = None,
    project_dir: ProjectDir = None,
) -> None:
    """Load the raw data and run the input expectations alone; publish nothing."""
    from pipeline import build as pipeline_build

    project = _with_raw_parquet(Project.find(project_dir), raw_parquet, raw_parquet_layout)
    with _live_progress() as progress:
        report = pipeline_build.check(
            project, as_of=as_of, progress=progress, wait_seconds=wait
        )
    _report(report)
    raise typer.Exit(report.exit_code)


@app.command()
def rollback(wait: Wait = 0.0, project_dir: ProjectDir = None) -> None:
    """Publish the previous run again."""
    from pipeline.publish import rollback_warehouse

    project = Project.find(project_dir)
    was, now = rollback_warehouse(project.warehouse, wait_seconds=wait)
    err.print(f"analytics now reads run {now} (was {was})")


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Every KPI with its label, category, type, grains and owner."""
    project = Project.find(project_dir)
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


class ExportFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"
    json = "json"


@app.command()
def export(
    out: Annotated[
        Path | None, typer.Option(help="Folder to write (default: exports/ beside the warehouse).")
    ] = None,
    fmt: Annotated[
        list[ExportFormat] | None,
        typer.Option("--format", help="parquet, csv, json (repeat; default all)."),
    ] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Write the published KPI marts as Parquet, CSV and JSON, with the KPI catalog."""
    project = Project.find(project_dir)
    formats = tuple(f.value for f in fmt) if fmt else tuple(f.value for f in ExportFormat)
    _export(project, None, formats=formats, out=out)


@app.command()
def scorecard(
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("scorecard.html"),
    project_dir: ProjectDir = None,
) -> None:
    """Write the scorecard: one self-contained HTML page of every KPI against its target."""
    from pipeline.export.scorecard import write_scorecard

    path = write_scorecard(Project.find(project_dir), out)
    err.print(f"scorecard: {path}")


@app.command()
def status(
    grain: Annotated[str, typer.Option(help="day, week, month, quarter or year.")] = "month",
    project_dir: ProjectDir = None,
) -> None:
    """Where each KPI stands against its target: value, target, status and trend."""
    from pipeline.export.catalog import build_catalog
    from pipeline.export.status import print_status

    project = Project.find(project_dir)
    print_status(project.warehouse, build_catalog(project), grain=grain, console=out)


class AlertFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


@app.command()
def alerts(
    fmt: Annotated[
        AlertFormat, typer.Option("--format", help="table (terminal), json or markdown.")
    ] = AlertFormat.table,
    send: Annotated[
        bool, typer.Option("--send", help="Post the events not sent yet to the webhook.")
    ] = False,
    wait: Wait = 0.0,
    project_dir: ProjectDir = None,
) -> None:
    """What changed since the previous published run: status, deviations, periods closed below target."""
    from pipeline.alerts import job, messages

    project = Project.find(project_dir)
    rules = job.project_rules(project)
    if send:
        report, sent = job.send(project.warehouse, rules, wait_seconds=wait)
    else:
        report = job.collect(project.warehouse, rules)
    if fmt is AlertFormat.json:
        sys.stdout.write(messages.as_json(report) + "\n")
    elif fmt is AlertFormat.markdown:
        sys.stdout.write(messages.as_markdown(report))
    else:
        out.print(messages.as_table(report))
    if send:
        err.print(f"{len(sent)} alert(s) sent")


def _alert_rules(project: Project, target: str) -> Rules:
    """`kpi build --alert`: the rules and the webhook checked before building."""
    from pipeline.alerts import job, webhook

    if target != "duckdb":
        raise UserError("--alert needs the duckdb target (it compares published runs)")
    rules = job.project_rules(project)
    webhook.webhook_url(rules.webhook)  # NoWebhook when it is not set
    return rules


def _send_alerts(project: Project, rules: Rules, report: BuildReport) -> None:
    """After the build: its alerts, or 'build blocked'. A failure is one error line; the
    build and its exit code stand."""
    from pipeline.alerts import job, webhook
    from pipeline.publish import BuildLocked

    try:
        if report.status == "published":
            _, sent = job.send(project.warehouse, rules)
            err.print(f"[green]✓[/] {len(sent)} alert(s) sent")
        else:
            job.send_build_blocked(rules, report.run_id, report.status, report.error)
            err.print(f"'build {report.status}' sent to the alert webhook")
    except (webhook.DeliveryError, BuildLocked) as exc:
        err.print(f"error: {exc}", markup=False)


class DiffFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


@app.command("diff")
def diff_(
    base: Annotated[
        str, typer.Option("--base", help="The git ref to compare with (e.g. origin/main).")
    ],
    fmt: Annotated[
        DiffFormat,
        typer.Option("--format", help="table (terminal), markdown (a PR comment) or json."),
    ] = DiffFormat.table,
    top: Annotated[int, typer.Option("--top", help="Largest moves shown per changed KPI.")] = 10,
    head_warehouse: Annotated[
        Path | None,
        typer.Option(
            "--head-warehouse",
            help="A DuckDB file already built from the working tree (skips its build).",
        ),
    ] = None,
    no_values: Annotated[
        bool, typer.Option("--no-values", help="Compare definitions and SQL only (no dbt).")
    ] = False,
    project_dir: ProjectDir = None,
) -> None:
    """What the working tree changes against a git ref: KPIs, generated SQL and values."""
    from pipeline import diff

    project = Project.find(project_dir)
    with err.status(f"building {base} and the working tree…"):
        report = diff.diff(
            project.root, base, head_warehouse=head_warehouse, top=top, values=not no_values
        )
    if fmt is DiffFormat.markdown:
        sys.stdout.write(diff.render_markdown(report))  # plain: CI pipes it into a comment
    elif fmt is DiffFormat.json:
        sys.stdout.write(diff.render_json(report) + "\n")
    else:
        diff.render_terminal(report, out)


class DataFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


class _GenerateCommand(typer.core.TyperCommand):
    """`kpi generate --help` lists the defects (read only then: the generator loads pandas)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from pipeline.datagen import DEFECTS

        option = next(
            p for p in self.params if isinstance(p, typer.core.TyperOption) and p.name == "defect"
        )
        option.help = f"{DEFECT_HELP}: {', '.join(DEFECTS)}."
        super().format_help(ctx, formatter)


DEFECT_HELP = "Corrupt the written CSVs with a named defect"


@app.command(cls=_GenerateCommand)
def generate(
    out: Annotated[
        Path | None, typer.Option(help="Folder to write (default: the project's seeds/).")
    ] = None,
    scale: Annotated[
        float, typer.Option(help="1 = the committed seeds (about 3,000 orders).")
    ] = 1.0,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed writes the same bytes.")
    ] = 42,
    fmt: Annotated[
        DataFormat, typer.Option("--format", help="csv (dbt seeds) or parquet.")
    ] = DataFormat.csv,
    defect: Annotated[
        str | None, typer.Option(help=f"{DEFECT_HELP}.")
    ] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Write the demo business's raw data (Happy Home Goods)."""
    from pipeline import datagen

    if defect is not None and defect not in datagen.DEFECTS:
        raise UserError(f"unknown defect '{defect}'; one of: {', '.join(datagen.DEFECTS)}")
    if scale <= 0:
        raise UserError(f"--scale must be positive, not {scale:g}")
    if fmt is DataFormat.csv and scale != 1.0:
        raise UserError("CSV seeds are written at scale 1; use --format parquet for other scales")
    target = out or Project.find(project_dir).seeds_dir
    started = time.perf_counter()
    with err.status(f"writing {fmt.value} to {target}…"):
        if fmt is DataFormat.csv:
            counts = datagen.write_seeds(target, seed=seed)
        else:
            counts = datagen.write_parquet(target, scale=scale, seed=seed)
    err.print(
        f"{sum(counts.values()):,} rows in {len(counts)} tables, {time.perf_counter() - started:.1f} s"
    )
    if defect is not None:
        injected = datagen.inject_defect_into_dir(target, defect)
        err.print(
            f"defect {injected.name}: {injected.description} ({injected.rows} rows of {injected.table})"
        )


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
    project = Project.find(project_dir)
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
        shown = [c for c in TABLE_COLUMNS if c in columns and (by or c != "dimension_value")]
        title = f"{name} by {grain}" + (f" and {by}" if by else "")
        table = Table(*(TABLE_COLUMNS[c] for c in shown), title=title)
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            table.add_row(*(_cell(record[c]) for c in shown))
        out.print(table)
        err.print("[dim]--format csv or json shows every column[/]")


class ExplainFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


@app.command("explain")
def explain_(
    name: Annotated[str, typer.Argument(help="The KPI's name.")],
    period: Annotated[
        str | None,
        typer.Option(help="2026-10, 2026-Q3, 2026-W44, 2026 or a date (default: the latest period)."),
    ] = None,
    grain: Annotated[
        str | None, typer.Option(help="day, week, month, quarter or year (default: the period's, else month).")
    ] = None,
    vs: Annotated[str, typer.Option("--vs", help="previous or last_year.")] = "previous",
    by: Annotated[
        list[str] | None, typer.Option("--by", help="A dimension to break down by (repeat; default all).")
    ] = None,
    fmt: Annotated[
        ExplainFormat, typer.Option("--format", help="table, markdown or json.")
    ] = ExplainFormat.table,
    top: Annotated[int, typer.Option("--top", help="Largest drivers shown per breakdown (table, markdown).")] = 10,
    project_dir: ProjectDir = None,
) -> None:
    """What drove a KPI's change between two periods: each slice's or input's contribution."""
    from pipeline.explain import marts, render

    project = Project.find(project_dir)
    explanation = marts.explain(project, name, period=period, grain=grain, vs=vs, by=by or ())
    if fmt is ExplainFormat.json:
        sys.stdout.write(render.render_json(explanation) + "\n")
    elif fmt is ExplainFormat.markdown:
        sys.stdout.write(render.render_markdown(explanation, top=top))
    else:
        render.render_terminal(explanation, out, top=top)


TABLE_COLUMNS = {  # column → header of `kpi query --format table`
    "period_start": "period",
    "dimension_value": "slice",
    "value": "value",
    "is_partial_period": "partial",
    "previous_change_rate": "vs prev.",
    "last_year_change_rate": "vs last yr",
    "target": "target",
    "attainment": "attained",
    "status": "status",
}


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


import_app = typer.Typer(help="Write other tools' metric definitions as metric files.")
app.add_typer(import_app, name="import")


@import_app.command("metricflow")
def import_metricflow(
    path: Annotated[
        Path, typer.Argument(help="A dbt project or YAML file with semantic_models/metrics.")
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder written into (default: metrics/).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite imported files.")] = False,
    category: Annotated[
        str, typer.Option(help="Category of KPIs whose metric has no meta.category.")
    ] = "operational",
    project_dir: ProjectDir = None,
) -> None:
    """Import dbt Semantic Layer (MetricFlow) metrics; exit 0 when any metric converted."""
    from pipeline.importers import metricflow
    from pipeline.spec.model import CATEGORIES

    project = Project.find(project_dir)
    if not path.exists():
        raise UserError(f"no such file or folder: {path}")
    if category not in CATEGORIES:
        raise UserError(f"--category must be one of {', '.join(CATEGORIES)}")
    docs, issues = metricflow.read(path)
    if has_errors(issues):
        raise UserError(issues)
    dialect = load(compiler.read_metric_files(project))[0].config.dialect
    result = metricflow.import_project(docs, dialect, category)
    _print_issues(result.issues, out)
    target = out_dir or project.metrics_dir
    if not force and (existing := metricflow.conflicts(result.files, target)):
        raise UserError(f"would overwrite {', '.join(existing)} (use --force)")
    written = metricflow.write(result.files, target)
    err.print(
        f"{len(result.converted)} metric(s) converted, {len(result.not_converted)} not "
        f"converted; wrote {len(written)} file(s) under {target}",
        style="green" if result.converted else "red",
    )
    if not result.converted:
        raise typer.Exit(EXIT_USER_ERROR)
