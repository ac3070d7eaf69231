"""Write-audit-publish on a real DuckDB file: swap, audit, rollback, cleanup, lock, kills.

The first tests build run schemas by hand (no dbt, seconds); the last ones run the
whole build (`kpi build`) in subprocesses against a copy of the demo warehouse and kill
them (SIGKILL) at points the build makes reachable.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from test_gate import copy_warehouse
from test_gate import published_demo as published_demo  # the shared session fixture

from pipeline import publish
from pipeline.build import build
from pipeline.project import snapshot_worktree

REPO = Path(__file__).resolve().parents[2]
KPI = str(Path(sys.executable).with_name("kpi"))
AS_OF = "2026-11-15"


def _run(con: duckdb.DuckDBPyConnection, orders: list[int], *, rate: float = 0.5) -> str:
    """A run schema as dbt leaves it: a mart, the KPI catalog and values, a wide table."""
    run_id = publish.new_run_id()
    publish.start_run(con, run_id, as_of=datetime(2026, 11, 15))
    s = publish.run_schema(run_id)
    con.execute(f"CREATE SCHEMA {s}")
    rows = ", ".join(f"(DATE '2026-11-{i + 1:02d}', {v})" for i, v in enumerate(orders))
    con.execute(f"CREATE TABLE {s}.orders AS SELECT * FROM (VALUES {rows}) v(day, orders)")
    con.execute(
        f"CREATE TABLE {s}.kpi_catalog AS SELECT * FROM (VALUES "
        "('orders_placed', 'simple', 'number'), ('conversion_rate', 'ratio', 'percent')) "
        "c(kpi, kind, format)"
    )
    con.execute(
        f"CREATE TABLE {s}.kpi_values AS "
        f"SELECT 'orders_placed' AS kpi, 'day' AS grain, day AS period_start, 'total' AS dimension, "
        f"'total' AS dimension_value, orders::DOUBLE AS value FROM {s}.orders UNION ALL "
        f"SELECT 'conversion_rate', 'day', day, 'total', 'total', {rate} FROM {s}.orders"
    )
    con.execute(
        f"CREATE TABLE {s}.kpi_daily AS SELECT day AS period_start, orders AS orders_placed, "
        f"{rate} AS conversion_rate FROM {s}.orders"
    )
    con.execute(f"CREATE VIEW {s}.stg_orders AS SELECT * FROM {s}.orders")
    return run_id


@pytest.fixture()
def con(tmp_path):
    connection = publish.connect(tmp_path / "wh.duckdb")
    publish.ensure_meta(connection)
    yield connection
    connection.close()


def _published(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics'"
    ).fetchall()
    return {r[0] for r in rows} - {"_kpi_published"}


def test_only_the_output_contract_is_published_and_rollback_keeps_its_own(con):
    first = _run(con, [1, 2, 3])
    internal = f"{publish.run_schema(first)}.kpi_measures__orders"
    con.execute(f"CREATE TABLE {internal} AS SELECT 1 AS x")
    publish.swap(con, first, marts=["orders"])
    assert _published(con) == {"orders", "kpi_catalog", "kpi_values", "kpi_daily"}
    second = _run(con, [4, 5, 6])
    publish.swap(con, second, marts=[])  # the project no longer publishes its orders mart
    assert _published(con) == {"kpi_catalog", "kpi_values", "kpi_daily"}
    publish.rollback(con)  # the previous run as it was published
    assert _published(con) == {"orders", "kpi_catalog", "kpi_values", "kpi_daily"}
    assert con.execute(f"SELECT count(*) FROM {internal}").fetchone()[0] == 1  # kept in its run


def test_swap_publishes_views_of_the_run_and_rollback_restores(con):
    first = _run(con, [1, 2, 3])
    publish.swap(con, first)
    assert publish.published_run(con) == first
    published = {
        r[0]: r[1] for r in con.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = 'analytics'"
        ).fetchall()
    }
    assert published == {
        "orders": "VIEW", "kpi_catalog": "VIEW", "kpi_values": "VIEW", "kpi_daily": "VIEW",
        "_kpi_published": "VIEW",
    }
    before = publish.published_fingerprint(con)

    second = _run(con, [5, 6])
    assert publish.audit(con, second) == []
    publish.swap(con, second)
    assert publish.published_fingerprint(con) != before
    assert publish.previous_run(con) == first
    assert con.execute("SELECT run_id FROM analytics._kpi_published").fetchone()[0] == second

    rolled_from, now = publish.rollback(con)
    assert (rolled_from, now) == (second, first)
    assert publish.published_fingerprint(con) == before


def test_cleanup_keeps_the_published_and_the_previous_run(con):
    runs = []
    for n in range(3):
        run_id = _run(con, [n + 1])
        publish.swap(con, run_id)
        publish.cleanup(con)
        runs.append(run_id)
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert publish.run_schema(runs[0]) not in schemas
    assert {publish.run_schema(runs[1]), publish.run_schema(runs[2])} <= schemas


def test_a_plain_dbt_table_in_analytics_is_replaced(con):
    con.execute("CREATE TABLE analytics.orders AS SELECT 1 AS x")
    run_id = _run(con, [1])
    publish.swap(con, run_id)
    assert con.execute("SELECT count(*) FROM analytics.orders").fetchone()[0] == 1
    assert "day" in [r[0] for r in con.execute("DESCRIBE analytics.orders").fetchall()]


@pytest.mark.parametrize(
    ("sql", "failure"),
    [
        ("DELETE FROM {s}.orders", "orders: has rows"),
        ("UPDATE {s}.kpi_values SET value = -1 WHERE kpi = 'orders_placed'",
         "kpi_values: no negative counts or durations"),
        ("UPDATE {s}.kpi_values SET value = 1.5 WHERE kpi = 'conversion_rate'",
         "kpi_values: rates within [0, 1]"),
        ("UPDATE {s}.kpi_values SET value = 'nan'::DOUBLE WHERE kpi = 'conversion_rate'",
         "kpi_values: no NaN or infinite values"),
        ("INSERT INTO {s}.kpi_values SELECT * FROM {s}.kpi_values LIMIT 1",
         "kpi_values: one row per (kpi, grain, period_start, dimension, dimension_value)"),
        ("INSERT INTO {s}.kpi_daily SELECT * FROM {s}.kpi_daily LIMIT 1",
         "kpi_daily: one row per period_start"),
    ],
)
def test_audit_catches_wrong_marts(con, sql, failure):
    run_id = _run(con, [1, 2])
    assert publish.audit(con, run_id) == []
    con.execute(sql.format(s=publish.run_schema(run_id)))
    names = [f.name for f in publish.audit(con, run_id)]
    assert failure in names


def test_unfinished_runs_are_abandoned_and_dropped(con):
    good = _run(con, [1])
    publish.swap(con, good)
    dead = _run(con, [2])  # status 'building', as a killed build leaves it
    con.execute(f"CREATE SCHEMA {publish.input_schema(dead)}")
    con.execute("CREATE SCHEMA run_r20260101t000000_abcdef")  # never recorded
    assert publish.abandon_unfinished(con) == [dead]
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert publish.run_schema(dead) not in schemas
    assert publish.input_schema(dead) not in schemas
    assert "run_r20260101t000000_abcdef" not in schemas
    assert publish.published_run(con) == good
    assert {r.run_id: r.status for r in publish.runs(con)}[dead] == "aborted"


def test_the_lock_refuses_a_second_build_with_a_clear_message(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with publish.build_lock(warehouse):
            held.set()
            done.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    with pytest.raises(publish.BuildLocked) as info, publish.build_lock(
        warehouse, wait_seconds=0.3
    ):
        pass
    done.set()
    thread.join()
    message = str(info.value)
    assert f"pid {os.getpid()}" in message and "another kpi build is running" in message
    # released; and a thread holding it enters it again
    with publish.build_lock(warehouse), publish.build_lock(warehouse):
        pass


def test_the_lock_waits_for_the_first_build(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    held = threading.Event()

    def hold() -> None:
        with publish.build_lock(warehouse):
            held.set()
            time.sleep(1.0)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    started = time.monotonic()
    with publish.build_lock(warehouse, wait_seconds=10):
        waited = time.monotonic() - started
    thread.join()
    assert 0.5 < waited < 5


_SWAP_SCRIPT = """
import sys, time
from pipeline import publish
con = publish.connect(__import__("pathlib").Path(sys.argv[1]))
def pause(point):
    print("paused", flush=True)
    time.sleep(600)
publish.swap(con, sys.argv[2], pause=pause)
"""


def test_killed_during_the_swap_nothing_changes(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    con = publish.connect(warehouse)
    publish.ensure_meta(con)
    first = _run(con, [1, 2, 3])
    publish.swap(con, first)
    second = _run(con, [7])
    before = publish.published_fingerprint(con)
    con.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SWAP_SCRIPT, str(warehouse), second],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "paused"  # inside the transaction, views dropped
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    con = publish.connect(warehouse)
    assert publish.published_fingerprint(con) == before
    assert publish.published_run(con) == first
    publish.swap(con, second)  # and the next swap works
    assert publish.published_run(con) == second
    con.close()


# --- whole builds (dbt) -----------------------------------------------------------------


def _env(warehouse: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KPI_WAREHOUSE": str(warehouse),
        "DBT_TARGET_PATH": str(warehouse.parent / "target"),
        "DBT_LOG_PATH": str(warehouse.parent / "logs"),
        "GX_ANALYTICS_ENABLED": "false",
        **extra,
    }


def _start(project: Path, warehouse: Path, **env: str) -> subprocess.Popen[str]:
    """`kpi build` of a copy of the project (`snapshot_worktree`) into `warehouse`."""
    return subprocess.Popen(
        [KPI, "build", "--as-of", AS_OF, "--project-dir", str(project)],
        env=_env(warehouse, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(path: Path, line: str, proc: subprocess.Popen[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and line in path.read_text().split():
            return
        if proc.poll() is not None:
            raise AssertionError(f"build ended before {line}: {proc.communicate()}")
        time.sleep(0.1)
    raise AssertionError(f"no {line} in {timeout} s")


def _fingerprint(warehouse: Path) -> dict[str, str]:
    con = publish.connect(warehouse)
    try:
        return publish.published_fingerprint(con)
    finally:
        con.close()


@pytest.mark.dbt
def test_builds_killed_at_each_stage_leave_the_marts_and_the_next_build_works(
    published_demo, tmp_path
):
    warehouse = copy_warehouse(published_demo, tmp_path / "wh.duckdb")
    project = snapshot_worktree(REPO, tmp_path / "project")
    before = _fingerprint(warehouse)
    assert before and "orders" in before
    stages = tmp_path / "stages.txt"
    for point, kill_after in (("gate", 0.0), ("dbt-running", 6.0), ("swap", 0.0)):
        stages.unlink(missing_ok=True)
        if point == "dbt-running":  # no pause: killed while dbt is building the run
            proc = _start(project, warehouse, KPI_STAGE_FILE=str(stages))
            _wait_for(stages, "dbt", proc)
        else:
            proc = _start(project, warehouse, KPI_STAGE_FILE=str(stages), KPI_PAUSE_AT=point)
            _wait_for(stages, f"paused:{point}", proc)
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert _fingerprint(warehouse) == before, point
    report = build(_project(warehouse), as_of=AS_OF, do_seed=False, data_docs=False,
                   reports_dir=tmp_path / "reports")
    assert report.status == "published", report.error
    con = publish.connect(warehouse)
    statuses = {r.status for r in publish.runs(con)}
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    con.close()
    assert "aborted" in statuses
    run_schemas = {s for s in schemas if s.startswith("run_") and not s.endswith("_input")}
    assert len(run_schemas) <= 2  # the published run and the previous one


def _project(warehouse: Path):
    from pipeline.project import Project

    return Project(REPO, env={
        "KPI_WAREHOUSE": str(warehouse),
        "DBT_TARGET_PATH": str(warehouse.parent / "target"),
        "DBT_LOG_PATH": str(warehouse.parent / "logs"),
    })


def test_warehouse_problems_are_named_only_for_the_warehouse_and_the_files_beside_it(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    full = OSError(errno.ENOSPC, "No space left on device", f"{warehouse}.wal")
    assert publish.warehouse_problem(full, warehouse) == (
        f"the disk holding the warehouse {warehouse} is full: free some space "
        "(DuckDB also spills to wh.duckdb.tmp beside it) and build again"
    )
    dbt = (f'dbt build --vars {{"raw_schema": "run_x"}} failed: IO Error: Could not write '
           f'file "{warehouse}.wal": No space left on device')
    assert publish.warehouse_problem(dbt, warehouse) == publish.warehouse_problem(full, warehouse)
    elsewhere = PermissionError(errno.EACCES, "Permission denied", "/srv/target/manifest.json")
    assert publish.warehouse_problem(elsewhere, warehouse) is None
    assert publish.warehouse_problem(
        f'IO Error: Cannot open file "{warehouse}": Permission denied', warehouse
    ) == (f"the warehouse {warehouse} is read-only (Permission denied): make it writable, "
          "or set KPI_WAREHOUSE to a writable file")


@pytest.mark.dbt
def test_a_build_publishes_the_kpi_marts_and_the_project_s_marts_only(published_demo):
    from pipeline.build import published_marts
    from pipeline.plan.models import KPI_MARTS
    from pipeline.project import Project

    marts = published_marts(Project(REPO))
    assert "orders" in marts and "kpi_measures__orders" not in marts
    with duckdb.connect(str(published_demo), read_only=True) as reader:
        published = _published(reader)
        run = publish.published_run(reader)
        built = set(publish.run_tables(reader, run))
    assert published == (set(KPI_MARTS) | set(marts)) & built
    assert "kpi_measures__orders" in built - published  # internal models stay in the run
