"""Write-audit-publish on DuckDB: run schemas, audit, one-transaction swap, rollback, lock.

Layout of the warehouse (one DuckDB file; the names are `pipeline.warehouse.names`'s):

- `raw`: the raw tables, as `dbt seed` loads them (never read by BI tools).
- `run_<id>_input`: the gate's validated copy of every raw table for run `<id>`
  (raw minus the quarantined rows); the dbt sources of that run read it.
- `run_<id>`: everything dbt builds for run `<id>` (staging views, marts, KPI marts).
- `analytics`: what BI tools read: one view per table of the published run
  (`SELECT * FROM run_<id>.<table>`), plus `analytics._kpi_published`.
- `kpi_meta`: `_kpi_runs` (one row per build: status, timestamps, the fingerprint of
  its raw inputs) and
  `_kpi_row_counts` (raw / passed / quarantined rows per table and run, the volume
  baseline).
- `quarantine`: `quarantined_rows`, the rows the gate set aside, with the reason.

The statements are built in `pipeline.warehouse.sql`.

A run is published by replacing the views of `analytics` in a single DuckDB
transaction, so a reader sees either the old complete marts or the new complete
marts; a process killed at any point leaves the published views as they were (an
uncommitted transaction is rolled back when the file is next opened). The previous
published run is kept for `rollback`; older runs are dropped.

Only one build may write at a time: `build_lock` takes an exclusive `fcntl` lock on
`<warehouse>.lock` (released by the kernel even when the process is killed). What keeps
a build from writing (a read-only file or folder, a full disk, another process holding
the file) is raised as `WarehouseError`, one line saying what to do.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from pipeline.errors import PipelineError
from pipeline.plan.models import KPI_MARTS
from pipeline.warehouse import sql
from pipeline.warehouse.names import (
    COUNTS_TABLE,
    META_SCHEMA,
    PUBLISHED_MARKER,
    PUBLISHED_SCHEMA,
    QUARANTINE_SCHEMA,
    RUN_SCHEMA,
    RUNS_TABLE,
    Relation,
    input_schema,
    run_schema,
)

# names the gate (`build.py`, `quality/`) and the tests read from here
from pipeline.warehouse.names import QUARANTINE_TABLE as QUARANTINE_TABLE
from pipeline.warehouse.names import RAW_SCHEMA as RAW_SCHEMA
from pipeline.warehouse.names import new_run_id as new_run_id
from pipeline.warehouse.sql import execute, param
from pipeline.warehouse.sql import quote_ident as quote_ident
from pipeline.warehouse.sql import quote_literal as quote_literal


class PublishError(PipelineError):
    """The audit failed, or there is nothing to publish / roll back to."""


class BuildLocked(PipelineError):
    """Another build holds the warehouse lock."""


class WarehouseError(PipelineError):
    """The warehouse cannot be opened or written; the message says why and what to do."""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    published_at: datetime | None
    detail: str | None


@dataclass(frozen=True)
class AuditCheck:
    """A sanity query on the run schema: it returns the number of offending rows."""

    name: str
    query: exp.Expr


@dataclass(frozen=True)
class AuditFailure:
    name: str
    offending: int
    detail: str = ""


# --- lock ---------------------------------------------------------------------------


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


Wait = Callable[[str], None]  # told once, when a build starts waiting, what it waits for

_held = threading.local()  # the lock files this thread holds (build_lock is reentrant)


@contextmanager
def build_lock(
    warehouse: Path, *, wait_seconds: float = 0.0, what: str = "build", on_wait: Wait | None = None
) -> Iterator[Path]:
    """Hold the warehouse's exclusive build lock; wait up to `wait_seconds`, then refuse.

    Once held, the warehouse's folder and file are checked writable and no other process
    may hold the DuckDB file (waiting for it within the same `wait_seconds`): otherwise
    WarehouseError. A thread already holding the lock enters again at once.
    """
    path = lock_path(warehouse)
    held: set[Path] = _held.__dict__.setdefault("paths", set())
    if path in held:
        yield path
        return
    deadline = time.monotonic() + wait_seconds
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as error:
        raise WarehouseError(warehouse_problem(error, warehouse) or str(error)) from None
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "{}"
                try:
                    info = json.loads(holder)
                except json.JSONDecodeError:
                    info = {}
                running = (f"another kpi {info.get('what', 'build')} is running on {warehouse} "
                           f"(pid {info.get('pid', '?')}, since {info.get('since', '?')})")
                if time.monotonic() >= deadline:
                    raise BuildLocked(
                        f"{running}; wait for it to finish or retry with a longer wait "
                        f"(waited {wait_seconds:g} s; lock file {path})"
                    ) from None
                if on_wait is not None:
                    on_wait(f"waiting: {running}")
                    on_wait = None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({
            "pid": os.getpid(), "what": what,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }))
        handle.flush()
        _check_writable(warehouse)
        if warehouse.exists():
            connect(warehouse, wait_seconds=max(0.0, deadline - time.monotonic()),
                    on_wait=on_wait).close()
        held.add(path)
        try:
            yield path
        finally:
            held.discard(path)
    finally:
        handle.close()  # closing the descriptor releases the flock


def _check_writable(warehouse: Path) -> None:
    """WarehouseError unless the file can be written and its folder can take new files
    (DuckDB writes <warehouse>.wal and spills to <warehouse>.tmp beside it)."""
    try:
        with tempfile.NamedTemporaryFile(dir=warehouse.parent, prefix=f".{warehouse.name}."):
            pass
        if warehouse.exists():
            warehouse.open("r+b").close()
    except OSError as error:
        raise WarehouseError(warehouse_problem(error, warehouse) or str(error)) from None


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in .*?\(PID (\d+)\)")
_READ_ONLY = {errno.EACCES: "Permission denied", errno.EPERM: "Operation not permitted",
              errno.EROFS: "Read-only file system"}
_FULL = {errno.ENOSPC: "No space left on device", errno.EDQUOT: "Disk quota exceeded"}
_PATH = re.compile(r'"([^"]+)"')


def warehouse_problem(error: BaseException | str, warehouse: Path) -> str | None:
    """One line saying what keeps the build from the warehouse and what to do, when
    `error` (an OSError, DuckDB's or dbt's message) comes from the file or the files
    beside it (`.wal`, `.tmp`, `.lock`); else None."""
    text = str(error)
    code = error.errno if isinstance(error, OSError) else None
    holder = _LOCK_HOLDER.search(text)
    if holder:
        return (f"the warehouse {warehouse} is opened by another process (PID {holder.group(1)}): "
                "close it or open it read-only")
    paths = [q for q in _PATH.findall(text) if Path(q).is_absolute()]
    named = getattr(error, "filename", None) or next(
        (q for q in paths if Path(q).parent == warehouse.parent), paths[0] if paths else ""
    )
    if named and Path(named).parent != warehouse.parent:  # another file: not the warehouse's
        return None
    if code in _FULL or any(reason in text for reason in _FULL.values()):
        return (f"the disk holding the warehouse {warehouse} is full: free some space "
                f"(DuckDB also spills to {warehouse.name}.tmp beside it) and build again")
    if code in _READ_ONLY or any(reason in text for reason in _READ_ONLY.values()):
        reason = _READ_ONLY.get(code or 0) or next(r for r in _READ_ONLY.values() if r in text)
        if named and Path(named) != warehouse:  # a file beside it: the folder is read-only
            return (f"the warehouse's folder {warehouse.parent} is read-only ({reason}): make it "
                    "writable, or set KPI_WAREHOUSE to a file in a writable folder")
        return (f"the warehouse {warehouse} is read-only ({reason}): make it writable, "
                "or set KPI_WAREHOUSE to a writable file")
    return None


# --- bookkeeping --------------------------------------------------------------------


# DuckDB's memory budget for the pipeline's connections, as profiles.yml sets it for dbt's:
# past it, joins, aggregates and sorts spill to <warehouse>.tmp instead of growing.
MEMORY_LIMIT_ENV = "KPI_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"


# how long a build's connection waits for a reader (a BI tool) to close the file
BUSY_SECONDS = 10.0


def connect(
    warehouse: Path,
    *,
    read_only: bool = False,
    wait_seconds: float = BUSY_SECONDS,
    on_wait: Wait | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse; while another process holds the file, retried with
    backoff for up to `wait_seconds`, then WarehouseError (as for a file that cannot be
    opened)."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.05
    while True:
        try:
            warehouse.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(warehouse), read_only=read_only)
            break
        except (OSError, duckdb.IOException) as error:
            problem = warehouse_problem(error, warehouse)
            left = deadline - time.monotonic()
            if problem is None:
                raise
            if not _LOCK_HOLDER.search(str(error)) or left <= 0:
                raise WarehouseError(problem) from None
            if on_wait is not None:
                on_wait(f"waiting: {problem}")
                on_wait = None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)
    limit = os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    execute(con, sql.setting("memory_limit", limit))
    execute(con, sql.utc(con))  # the project's time zone: raw timestamps are naive UTC
    return con


def ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    for schema in (META_SCHEMA, QUARANTINE_SCHEMA, PUBLISHED_SCHEMA):
        execute(con, sql.create_schema(schema))
    for table in sql.META_TABLES:
        for statement in sql.create_table(table):
            execute(con, statement)


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, *, as_of: datetime) -> None:
    ensure_meta(con)
    execute(con, sql.insert(RUNS_TABLE, {
        "run_id": param(), "status": exp.Literal.string("building"), "started_at": param(),
        "as_of": param(),
    }), [run_id, _now(), as_of])


def set_status(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, detail: str | None = None
) -> None:
    detail_or_kept = exp.func("coalesce", param(), sql.column("detail"))
    execute(con, sql.update(
        RUNS_TABLE, {"status": param(), "finished_at": param(), "detail": detail_or_kept},
        sql.is_param("run_id"),
    ), [status, _now(), detail, run_id])


def record_inputs(con: duckdb.DuckDBPyConnection, run_id: str, fingerprint: Any) -> None:
    """Store the fingerprint of the run's raw inputs (`quality.inputs`) with the run."""
    execute(con, sql.update(RUNS_TABLE, {"inputs": param()}, sql.is_param("run_id")),
            [json.dumps(fingerprint), run_id])


def _published_tables(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str] | None:
    """The tables a run published (None: not recorded, a run from before the record)."""
    row = _run_field(con, run_id, "published_tables")
    return json.loads(row[0]) if row and row[0] else None


def _run_field(con: duckdb.DuckDBPyConnection, run_id: str, name: str) -> Any:
    return execute(con, sql.select(RUNS_TABLE, [name], sql.is_param("run_id")), [run_id]).fetchone()


def run_inputs(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The JSON fingerprint of a run's raw inputs, None when it was not recorded."""
    row = _run_field(con, run_id, "inputs")
    return str(row[0]) if row and row[0] is not None else None


def runs(con: duckdb.DuckDBPyConnection) -> list[RunRecord]:
    if not has_table(con, RUNS_TABLE):
        return []
    columns = ["run_id", "status", "started_at", "finished_at", "published_at", "detail"]
    rows = execute(con, sql.select(RUNS_TABLE, columns, order=["started_at", "run_id"])).fetchall()
    return [RunRecord(*row) for row in rows]


def published_run(con: duckdb.DuckDBPyConnection) -> str | None:
    for record in reversed(runs(con)):
        if record.status == "published":
            return record.run_id
    return None


def previous_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run `rollback` goes back to: the latest run published before the current one."""
    current = published_run(con)
    candidates = [
        r for r in runs(con)
        if r.status == "superseded" and r.run_id != current and r.published_at is not None
        and _has_schema(con, run_schema(r.run_id))
    ]
    candidates.sort(key=lambda r: r.published_at or datetime.min)
    return candidates[-1].run_id if candidates else None


def baseline_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Raw row counts per table of the published run (the volume checks' baseline)."""
    current = published_run(con)
    if current is None or not has_table(con, COUNTS_TABLE):
        return {}
    query = sql.select(COUNTS_TABLE, ["table_name", "raw_rows"], sql.is_param("run_id"))
    rows = execute(con, query, [current]).fetchall()
    return {str(name): int(count) for name, count in rows}


def abandon_unfinished(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Mark runs left half-done by a killed build as aborted and drop their schemas.

    Only call this while holding the build lock: no other build is running then.
    """
    ensure_meta(con)
    finished = ("published", "superseded", "rolled_back", "aborted", "failed", "blocked")
    dead = [r.run_id for r in runs(con) if r.status not in finished]
    for run_id in dead:
        set_status(con, run_id, "aborted", "the build stopped before it finished")
    keep = {published_run(con), previous_run(con)} - {None}
    for record in runs(con):
        if record.run_id not in keep and record.status in ("aborted", "failed", "blocked"):
            _drop_run(con, record.run_id)
    # schemas of runs nobody recorded (killed between CREATE SCHEMA and the insert)
    known = {r.run_id for r in runs(con)}
    for schema in _schemas(con):
        match = RUN_SCHEMA.match(schema)
        if match and match.group(1) not in known:
            execute(con, sql.drop_schema(schema))
    return dead


# --- audit --------------------------------------------------------------------------


def run_tables(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """The tables (not views) dbt built in the run's schema: what gets published."""
    rows = execute(con, sql.tables(run_schema(run_id), base_only=True)).fetchall()
    return [str(r[0]) for r in rows]


def default_audit_checks(con: duckdb.DuckDBPyConnection, run_id: str) -> list[AuditCheck]:
    """KPI sanity checks on the run's tables, beyond dbt's tests (which ran during dbt build).

    - every table that would be published has rows;
    - `kpi_values` (the long KPI table, with `kpi_catalog`): one row per KPI, grain,
      period and slice; no NaN or infinite values; counts (`simple` KPIs of format
      `number`) and durations never negative; rates (`ratio` KPIs of format `percent`,
      a part over its whole) within [0, 1];
    - the wide KPI tables (`kpi_daily`, `kpi_weekly`, ...): one row per period.
    """
    queries = sql.audit_queries(run_schema(run_id), run_tables(con, run_id))
    return [AuditCheck(name, query) for name, query in queries]


def audit(
    con: duckdb.DuckDBPyConnection, run_id: str, checks: Sequence[AuditCheck] | None = None
) -> list[AuditFailure]:
    """Run the sanity checks on the run schema; return the failures (empty: all passed)."""
    if not run_tables(con, run_id):
        return [AuditFailure("run schema", 1, f"{run_schema(run_id)} holds no tables")]
    failures = []
    for check in checks if checks is not None else default_audit_checks(con, run_id):
        try:
            row = execute(con, check.query).fetchone()
            offending = int(row[0]) if row and row[0] is not None else 0
        except duckdb.Error as error:
            failures.append(AuditFailure(check.name, -1, str(error).splitlines()[0]))
            continue
        if offending:
            failures.append(AuditFailure(check.name, offending))
    return failures


# --- publish, rollback, cleanup -----------------------------------------------------


def swap(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    marts: Sequence[str] | None = None,
    pause: Any = None,
) -> None:
    """Point `analytics` at the run's KPI marts and the project's `marts` in one
    transaction; mark runs accordingly. `marts=None`: those the run published before (a
    rollback), every table of a run that recorded none."""
    built = run_tables(con, run_id)
    if not built:
        raise PublishError(f"{run_schema(run_id)} holds no tables: nothing to publish")
    if marts is None:
        recorded = _published_tables(con, run_id)
        tables = built if recorded is None else [t for t in built if t in recorded]
    else:
        tables = [t for t in built if t in KPI_MARTS or t in marts]
    schema = run_schema(run_id)
    with sql.transaction(con):
        for name, kind in execute(con, sql.tables(PUBLISHED_SCHEMA)).fetchall():
            execute(con, sql.drop(sql.published(name), "VIEW" if kind == "VIEW" else "TABLE"))
        for table in tables:
            execute(con, sql.create_view(sql.published(table), sql.select_all(Relation(schema, table))))
        now = _now()
        execute(con, sql.marker_view(run_id, now))
        if pause is not None:
            pause("swap")
        published = exp.Literal.string("published")
        execute(con, sql.update(RUNS_TABLE, {"status": exp.Literal.string("superseded")},
                                sql.column("status").eq(published)))
        execute(con, sql.update(
            RUNS_TABLE,
            {"status": published, "published_at": param(), "finished_at": param(),
             "published_tables": param()},
            sql.is_param("run_id"),
        ), [now, now, json.dumps(tables), run_id])


def cleanup(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Drop the schemas of every run but the published one and the previous one."""
    keep = {published_run(con), previous_run(con)} - {None}
    dropped = []
    for record in runs(con):
        if record.run_id in keep:
            continue
        if _has_schema(con, run_schema(record.run_id)) or _has_schema(con, input_schema(record.run_id)):
            _drop_run(con, record.run_id)
            dropped.append(record.run_id)
    return dropped


def rollback(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """Publish the previous run again; return (rolled back from, now published)."""
    current = published_run(con)
    previous = previous_run(con)
    if current is None or previous is None:
        raise PublishError("nothing to roll back to: no previous published run is kept")
    swap(con, previous)
    execute(con, sql.update(
        RUNS_TABLE, {"status": exp.Literal.string("rolled_back"), "detail": param()},
        sql.is_param("run_id"),
    ), [f"rolled back to {previous} at {_now().isoformat()}", current])
    return current, previous


def rollback_warehouse(warehouse: Path, *, wait_seconds: float = 0.0) -> tuple[str, str]:
    """`kpi rollback`: take the lock, publish the previous run again."""
    with build_lock(warehouse, wait_seconds=wait_seconds, what="rollback"):
        con = connect(warehouse)
        try:
            ensure_meta(con)
            return rollback(con)
        finally:
            con.close()


def published_fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """md5 of every published mart's rows (order-independent): equal means unchanged.

    The `_kpi_published` marker (which run, since when) is left out.
    """
    out: dict[str, str] = {}
    for name, _ in execute(con, sql.tables(PUBLISHED_SCHEMA)).fetchall():
        if name == PUBLISHED_MARKER:
            continue
        digest = execute(con, sql.fingerprint(con, sql.published(str(name)))).fetchone()
        out[str(name)] = str(digest[0]) if digest else ""
    return out


# --- helpers ------------------------------------------------------------------------


def _drop_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    execute(con, sql.drop_schema(run_schema(run_id)))
    execute(con, sql.drop_schema(input_schema(run_id)))


def _schemas(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [str(r[0]) for r in execute(con, sql.schemas()).fetchall()]


def _has_schema(con: duckdb.DuckDBPyConnection, schema: str) -> bool:
    return schema in _schemas(con)


def has_table(con: duckdb.DuckDBPyConnection, relation: Relation) -> bool:
    row = execute(con, sql.has_table(relation)).fetchone()
    return bool(row and row[0])


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
