"""One build: seed -> gate -> dbt build into the run schema -> audit -> publish.

Each stage is a plain function; `build` chains them under the warehouse lock and
returns a `BuildReport` (`pipeline/report.py`). The published marts (`analytics`) change only in the last
stage, in one transaction; any failure or kill before it leaves them as they were.
Progress goes out as typed events, and the stages' test hooks are those of
`pipeline/progress.py`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import duckdb

from pipeline import publish, raw
from pipeline.progress import Detail, Progress, Stage, on_wait, pause, start_stage
from pipeline.project import DbtError, NodeEvent, Project
from pipeline.quality import run as gate_run
from pipeline.quality import sources
from pipeline.quality.gate import GateResult
from pipeline.quality.run import DEFAULT_CHUNK_ROWS, GateError
from pipeline.quality.sources import SourceTable
from pipeline.quality.spec import TableSpec, load_specs
from pipeline.report import BuildReport, write_reports

# --- as-of ----------------------------------------------------------------------------


def resolve_as_of(value: str | date | datetime | None = None) -> datetime:
    """The reference time of freshness and not-in-the-future checks (naive UTC).

    `value`, else env KPI_AS_OF, else now. A date alone (2026-11-15) means the end of
    that day, so that the whole day's data is neither "in the future" nor stale.
    """
    if value is None:
        value = os.environ.get("KPI_AS_OF") or None
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), dtime()) - timedelta(microseconds=1)
    text = value.strip()
    if len(text) == 10:
        return resolve_as_of(date.fromisoformat(text))
    return resolve_as_of(datetime.fromisoformat(text))


# --- stages ---------------------------------------------------------------------------


def source_tables(project: Project) -> list[SourceTable]:
    """The dbt sources' tables, where they are (quality.sources); raise SpecError."""
    return sources.source_tables(project.models_dir, sources.project_vars(project.root), project.env)


def load_raw(
    project: Project, specs: Sequence[TableSpec], tables: Sequence[SourceTable],
    report: BuildReport, progress: Progress | None, *, do_seed: bool,
) -> str | None:
    """Load file-based raw data, when there is any: the Parquet files of KPI_RAW_PARQUET,
    else the seeds. Returns the stage's name (None: nothing loaded, the sources are read
    where they are)."""
    if project.raw_parquet is not None:
        start_stage("load", progress)
        loaded = raw.load_parquet(
            project, project.raw_parquet, tables, specs, layout=project.raw_parquet_layout,
            progress=None if progress is None else lambda t: progress(Stage("load", t)),
        )
        report.notes += loaded.notes
        return "load"
    if not do_seed:
        return None
    start_stage("seed", progress)
    seed_error = raw.seed(project)
    if seed_error:
        report.notes.append(
            "dbt seed could not load some CSVs with their declared types; they "
            f"were loaded with text columns where needed ({seed_error[:300]})"
        )
    return "seed"


def run_gate(
    con: duckdb.DuckDBPyConnection, specs: Sequence[TableSpec], tables: Sequence[SourceTable],
    *, run_id: str, as_of: datetime, baselines: Mapping[str, int], chunk_rows: int,
    progress: Progress | None,
) -> GateResult:
    start_stage("gate", progress)

    def on_rows(table: str, done: int, total: int) -> None:
        if progress is not None:
            progress(Detail(Stage("gate", table), f"{done:,} of {total:,} rows"))

    return gate_run.run_gate(
        con, specs, tables, run_id=run_id, as_of=as_of, baselines=baselines,
        chunk_rows=chunk_rows, on_rows=on_rows,
        on_table=None if progress is None else lambda t: progress(Stage("gate", t)),
    )


def dbt_build(project: Project, run_id: str, progress: Progress | None = None) -> None:
    """dbt build (models and their tests) into run_<id>, reading run_<id>_input."""
    start_stage("dbt", progress)
    pause("dbt")
    run_project = Project(  # sources read the gated input, never KPI_RAW_PARQUET's files
        project.root,
        env={**project.env, "KPI_SCHEMA": publish.run_schema(run_id), "KPI_RAW_PARQUET": ""},
    )
    def model_started(event: NodeEvent) -> None:
        if progress is not None and event.event == "start" and event.resource_type == "model":
            progress(Detail(Stage("dbt"), f"{event.node} ({event.index}/{event.total})"))

    run_project.dbt(
        [
            "build",
            "--exclude-resource-type", "seed",
            "--vars", json.dumps({sources.INPUT_VAR: publish.input_schema(run_id)}),
        ],
        progress=model_started,
    )


# --- the build ------------------------------------------------------------------------


def _inputs(project: Project) -> tuple[list[TableSpec], list[SourceTable]]:
    """The expectations and the dbt sources' tables, each spec's table among them; raise
    quality.spec.SpecError before any work."""
    specs = load_specs(project.models_dir)
    tables = source_tables(project)
    sources.guarded(specs, tables)
    return specs, tables


def published_marts(project: Project) -> tuple[str, ...]:
    """The project's marts published beside the KPI marts (`config.publish`)."""
    from pipeline.compiler import read_metric_files
    from pipeline.spec.load import load

    spec, _ = load(read_metric_files(project))
    return spec.config.publish


# what fails a build (reported, nothing published) rather than stopping it with a traceback
FAILURES = (DbtError, GateError, publish.WarehouseError, publish.PublishError, duckdb.Error, OSError)


def build(
    project: Project,
    *,
    as_of: str | date | datetime | None = None,
    progress: Progress | None = None,
    wait_seconds: float = 0.0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    reports_dir: Path | None = None,
    data_docs: bool = True,
    do_seed: bool = True,
) -> BuildReport:
    """seed -> gate -> dbt build into run_<id> -> audit -> publish, under the build lock.

    Raises publish.BuildLocked when another build holds the lock past `wait_seconds`,
    publish.WarehouseError when the warehouse cannot be written (read-only, held by another
    process past `wait_seconds`) and quality.spec.SpecError for mistakes in the expectations
    files, all before any work. Every other failure is reported in the BuildReport (status
    blocked or failed), and recorded in the warehouse when it can be.
    """
    reference = resolve_as_of(as_of)
    specs, tables = _inputs(project)
    reports_dir = reports_dir or project.root / "target" / "kpi"
    warehouse = project.warehouse
    with publish.build_lock(warehouse, wait_seconds=wait_seconds, on_wait=on_wait(progress)):
        run_id = publish.new_run_id()
        report = BuildReport(run_id=run_id, status="failed", as_of=reference)
        clock = time.monotonic()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.monotonic()
            report.timings[stage] = now - clock
            clock = now

        try:
            con = publish.connect(warehouse)
            try:
                publish.abandon_unfinished(con)
                publish.start_run(con, run_id, as_of=reference)
                baselines = publish.baseline_counts(con)
            finally:
                con.close()
            stage = load_raw(project, specs, tables, report, progress, do_seed=do_seed)
            if stage is not None:
                lap(stage)
            con = publish.connect(warehouse)
            try:
                report.gate = run_gate(
                    con, specs, tables, run_id=run_id, as_of=reference, baselines=baselines,
                    chunk_rows=chunk_rows, progress=progress,
                )
                publish.record_inputs(con, run_id, report.gate.inputs.fingerprint())
                if report.gate.blocked:
                    report.status = "blocked"
                    report.error = report.gate.why_blocked
                    publish.set_status(con, run_id, "blocked", report.error)
                    return report
                gate_run.write_gate_outputs(con, report.gate, tables, run_id, pause=pause)
                publish.set_status(con, run_id, "gated")
            finally:
                con.close()
            lap("gate")
            publish.connect(warehouse).close()  # dbt does not wait for a reader to close the file
            dbt_build(project, run_id, progress)
            lap("dbt")
            start_stage("audit", progress)
            pause("audit")
            con = publish.connect(warehouse)
            try:
                report.audit_failures = publish.audit(con, run_id)
                lap("audit")
                if report.audit_failures:
                    report.error = "audit failed: " + "; ".join(
                        f"{f.name} ({f.offending} rows{': ' + f.detail if f.detail else ''})"
                        for f in report.audit_failures
                    )
                    publish.set_status(con, run_id, "failed", report.error)
                    return report
                start_stage("swap", progress)
                publish.swap(con, run_id, marts=published_marts(project), pause=pause)
                publish.cleanup(con)
                lap("publish")
                report.status = "published"
                report.published_run = run_id
                report.previous_run = publish.previous_run(con)
            finally:
                con.close()
            return report
        except FAILURES as error:
            report.status = "failed"
            report.error = publish.warehouse_problem(error, warehouse) or str(error)
            _record_failure(warehouse, report, progress)
            return report
        finally:
            write_reports(report, reports_dir, data_docs=data_docs)


def _record_failure(warehouse: Path, report: BuildReport, progress: Progress | None) -> None:
    """Mark the run failed (waiting a while for a reader to close the file); when even that
    fails, say so: the next build marks the run aborted."""
    try:
        con = publish.connect(warehouse, on_wait=on_wait(progress))
        try:
            publish.set_status(con, report.run_id, "failed", (report.error or "")[:2000])
        finally:
            con.close()
    except (publish.WarehouseError, duckdb.Error) as error:
        problem = publish.warehouse_problem(error, warehouse) or str(error).splitlines()[0]
        report.error = (f"{report.error}; the failure could not be recorded in the warehouse "
                        f"({problem}): the next build marks run {report.run_id} aborted")


def check(
    project: Project,
    *,
    as_of: str | date | datetime | None = None,
    progress: Progress | None = None,
    wait_seconds: float = 0.0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    reports_dir: Path | None = None,
    data_docs: bool = True,
    do_seed: bool = True,
) -> BuildReport:
    """`kpi check`: seed and run the gate only; nothing but `raw` is written.

    Status `checked` when nothing blocks, else `blocked`; the volume baseline is the
    published run's counts, as in a build.
    """
    reference = resolve_as_of(as_of)
    specs, tables = _inputs(project)
    reports_dir = reports_dir or project.root / "target" / "kpi"
    with publish.build_lock(
        project.warehouse, wait_seconds=wait_seconds, what="check", on_wait=on_wait(progress)
    ):
        report = BuildReport(run_id=publish.new_run_id(), status="checked", as_of=reference)
        try:
            load_raw(project, specs, tables, report, progress, do_seed=do_seed)
            con = publish.connect(project.warehouse)
            try:
                publish.ensure_meta(con)
                baselines = publish.baseline_counts(con)
                report.gate = run_gate(
                    con, specs, tables, run_id=report.run_id, as_of=reference, baselines=baselines,
                    chunk_rows=chunk_rows, progress=progress,
                )
            finally:
                con.close()
            if report.gate.blocked:
                report.status = "blocked"
                report.error = "the gate would block a build"
        except FAILURES as error:
            report.status = "failed"
            report.error = publish.warehouse_problem(error, project.warehouse) or str(error)
        write_reports(report, reports_dir, data_docs=data_docs)
        return report
