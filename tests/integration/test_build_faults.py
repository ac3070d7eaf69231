"""Faults during `kpi build`, on real DuckDB files, real processes and real dbt: a warehouse
it cannot write, a full disk, another process holding the file, a second build, metric
files edited meanwhile. Each ends in one clear line (or waits, when asked to) and leaves
the published marts as they were.

The tests run as root, who ignores permission bits: a read-only file or folder is made
with `chattr +i`, a full disk is a small tmpfs; a test skips when the machine allows neither.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from test_gate import copy_warehouse
from test_gate import published_demo as published_demo  # the shared session fixture
from test_publish import AS_OF, _fingerprint, _project, _wait_for

from pipeline import publish
from pipeline.build import build
from pipeline.project import snapshot_worktree

REPO = Path(__file__).resolve().parents[2]
KPI = str(Path(sys.executable).with_name("kpi"))

# a BI tool: opens the file (read-only, as the README advises), says so, holds it until told
_READER = (
    "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
    "print('open', flush=True); sys.stdin.readline()"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project (metric files, models, seeds…) that builds may write to."""
    return snapshot_worktree(REPO, tmp_path / "project")


def _kpi(project: Path, warehouse: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [KPI, *args, "--project-dir", str(project)],
        env={**os.environ, "KPI_WAREHOUSE": str(warehouse), "GX_ANALYTICS_ENABLED": "false", **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )


def _kpi_build(project: Path, warehouse: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return _kpi(project, warehouse, "build", "--as-of", AS_OF, *args, **env)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error_line(stderr: str) -> str:
    """The one `error:` line, and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def _read_until(proc: subprocess.Popen[str], text: str) -> str:
    """The process's stderr up to the line holding `text` (the process goes on)."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"no {text!r} before the process ended: {''.join(seen)}")


@contextmanager
def _reader(warehouse: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _READER, str(warehouse)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
    try:
        yield proc
    finally:
        _release(proc)


@contextmanager
def _killed_at_the_end(*procs: subprocess.Popen[str]) -> Iterator[None]:
    """Processes a failed assertion would leave paused forever: killed on the way out."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()


def _release(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait()


def _chattr(flag: str, path: Path) -> None:
    if subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode:
        pytest.skip(f"chattr {flag} does not work on {path} here")


@contextmanager
def _fault(fault: str, warehouse: Path) -> Iterator[str]:
    """The fault in place; yields the message a build must print."""
    if fault == "opened by another process":
        with _reader(warehouse) as reader:
            yield (f"the warehouse {warehouse} is opened by another process (PID {reader.pid}): "
                   "close it or open it read-only")
        return
    path = warehouse if fault == "read-only file" else warehouse.parent
    _chattr("+i", path)  # immutable: not even root may write it
    try:
        if fault == "read-only file":
            yield (f"the warehouse {warehouse} is read-only (Operation not permitted): make it "
                   "writable, or set KPI_WAREHOUSE to a writable file")
        else:
            yield (f"the warehouse's folder {warehouse.parent} is read-only (Operation not "
                   "permitted): make it writable, or set KPI_WAREHOUSE to a file in a writable folder")
    finally:
        _chattr("-i", path)


@pytest.mark.dbt
@pytest.mark.parametrize("fault", ["read-only file", "read-only folder", "opened by another process"])
def test_a_warehouse_the_build_cannot_write_is_one_line_and_changes_nothing(
    published_demo, project, tmp_path, fault
):
    (tmp_path / "wh").mkdir()
    warehouse = copy_warehouse(published_demo, tmp_path / "wh" / "wh.duckdb")
    before = _fingerprint(warehouse)
    models = _files(project / "models")
    (project / "metrics/financial/revenue.yml").write_text(  # a compile would rewrite models
        (project / "metrics/financial/revenue.yml").read_text().replace("500000", "400000")
    )
    with _fault(fault, warehouse) as message:
        proc = _kpi_build(project, warehouse)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    assert _error_line(err) == f"error: {message}", out + err
    assert _fingerprint(warehouse) == before
    assert _files(project / "models") == models  # refused before writing anything


@pytest.mark.dbt
def test_a_full_disk_is_one_line_and_changes_nothing(published_demo, project, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    size = published_demo.stat().st_size + 2 * 1024 * 1024  # a run needs far more than 2 MiB
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        warehouse = copy_warehouse(published_demo, disk / "wh.duckdb")
        proc = _kpi_build(project, warehouse)
        out, err = proc.communicate(timeout=600)
        after = tmp_path / "after"
        after.mkdir()
        for name in ("wh.duckdb", "wh.duckdb.wal"):  # read off the full disk
            if (disk / name).exists():
                shutil.copy(disk / name, after / name)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err, err
    failed = [line for line in err.splitlines() if ": failed — " in line]
    assert len(failed) == 1, err
    assert f"the disk holding the warehouse {warehouse} is full: free some space" in failed[0]
    assert _fingerprint(after / "wh.duckdb") == _fingerprint(copy_warehouse(
        published_demo, tmp_path / "before.duckdb"
    ))


@pytest.mark.dbt
def test_a_second_build_is_refused_before_it_writes_anything(published_demo, project, tmp_path):
    warehouse = copy_warehouse(published_demo, tmp_path / "wh.duckdb")
    before = _fingerprint(warehouse)
    stages = tmp_path / "stages.txt"
    first = _kpi_build(project, warehouse, KPI_STAGE_FILE=str(stages), KPI_PAUSE_AT="gate")
    try:
        _wait_for(stages, "paused:gate", first)
        revenue = project / "metrics/financial/revenue.yml"
        revenue.write_text(revenue.read_text().replace("500000", "400000"))
        models = _files(project / "models")
        second = _kpi_build(project, warehouse)
        out, err = second.communicate(timeout=300)
        assert second.returncode == 1, out + err
        assert "another kpi build is running" in _error_line(err)
        assert f"pid {first.pid}" in err
        assert _files(project / "models") == models  # the second compiled nothing
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert _fingerprint(warehouse) == before


def _published_targets(warehouse: Path) -> set[float]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT DISTINCT target FROM analytics.kpi_values WHERE kpi = 'revenue' "
            "AND grain = 'month' AND dimension = 'total' AND target IS NOT NULL"
        ).fetchall()
    finally:
        con.close()
    return {float(r[0]) for r in rows}


@pytest.mark.dbt
def test_metric_files_edited_during_a_build_do_not_change_what_it_publishes(
    published_demo, project, tmp_path
):
    warehouse = copy_warehouse(published_demo, tmp_path / "wh.duckdb")
    assert _published_targets(warehouse) == {500000.0}
    stages, resume = tmp_path / "stages.txt", tmp_path / "resume"
    first = _kpi_build(project, warehouse, KPI_STAGE_FILE=str(stages), KPI_PAUSE_AT="dbt",
                       KPI_RESUME_FILE=str(resume))
    with _killed_at_the_end(first):
        _wait_for(stages, "paused:dbt", first)
        revenue = project / "metrics/financial/revenue.yml"
        revenue.write_text(revenue.read_text().replace("500000", "400000"))
        compiled = _kpi(project, warehouse, "compile")  # the edit reaches models/kpi meanwhile
        assert compiled.wait(timeout=120) == 0, compiled.communicate()
        resume.touch()
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, out + err
    assert _published_targets(warehouse) == {500000.0}  # what the build compiled at its start


@pytest.mark.dbt
def test_a_waiting_build_waits_for_the_first_one_to_finish_its_export(
    published_demo, project, tmp_path
):
    warehouse = copy_warehouse(published_demo, tmp_path / "wh.duckdb")
    stages, resume = tmp_path / "stages.txt", tmp_path / "resume"
    first = _kpi_build(project, warehouse, KPI_STAGE_FILE=str(stages), KPI_PAUSE_AT="export",
                       KPI_RESUME_FILE=str(resume))
    with _killed_at_the_end(first):
        _wait_for(stages, "paused:export", first)
        second = _kpi_build(project, warehouse, "--wait", "600", KPI_STAGE_FILE=str(stages))
        with _killed_at_the_end(second):
            seen = _read_until(
                second, f"waiting: another kpi build is running on {warehouse} (pid {first.pid}"
            )
            assert stages.read_text().split().count("seed") == 1  # the second has not started
            resume.touch()
            out, err = first.communicate(timeout=600)
            assert first.returncode == 0, out + err
            out, err = second.communicate(timeout=600)
    assert second.returncode == 0, seen + out + err
    assert "Traceback" not in seen + err
    assert stages.read_text().split().count("swap") == 2  # both published


def _run_statuses(warehouse: Path) -> dict[str, str]:
    con = publish.connect(warehouse)
    try:
        return {r.run_id: r.status for r in publish.runs(con)}
    finally:
        con.close()


@pytest.mark.dbt
def test_a_reader_during_the_build_fails_it_and_the_failure_is_recorded(
    published_demo, project, tmp_path
):
    warehouse = copy_warehouse(published_demo, tmp_path / "wh.duckdb")
    before = _fingerprint(warehouse)
    stages, resume = tmp_path / "stages.txt", tmp_path / "resume"
    proc = _kpi_build(project, warehouse, KPI_STAGE_FILE=str(stages), KPI_PAUSE_AT="dbt",
                      KPI_RESUME_FILE=str(resume))
    _wait_for(stages, "paused:dbt", proc)
    with _killed_at_the_end(proc), _reader(warehouse) as reader:
        resume.touch()
        # dbt failed on the file's lock; recording the failure waits for the reader
        seen = _read_until(proc, f"waiting: the warehouse {warehouse} is opened by another process")
        _release(reader)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in seen + err
    assert f"opened by another process (PID {reader.pid}): close it or open it read-only" in err
    assert "could not be recorded" not in err
    assert "failed" in _run_statuses(warehouse).values()
    assert "gated" not in _run_statuses(warehouse).values()
    assert _fingerprint(warehouse) == before


@pytest.mark.dbt
def test_a_failure_that_cannot_be_recorded_says_so_and_the_next_build_marks_it(
    published_demo, project, tmp_path
):
    warehouse = copy_warehouse(published_demo, tmp_path / "wh.duckdb")
    before = _fingerprint(warehouse)
    stages, resume = tmp_path / "stages.txt", tmp_path / "resume"
    proc = _kpi_build(project, warehouse, KPI_STAGE_FILE=str(stages), KPI_PAUSE_AT="dbt",
                      KPI_RESUME_FILE=str(resume))
    _wait_for(stages, "paused:dbt", proc)
    (run_id,) = [k for k, v in _run_statuses(warehouse).items() if v == "gated"]
    with _killed_at_the_end(proc), _reader(warehouse) as reader:  # held till the build gives up
        resume.touch()
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err
    failed = [line for line in err.splitlines() if ": failed — " in line]
    assert len(failed) == 1, err
    assert (f"the failure could not be recorded in the warehouse (the warehouse {warehouse} is "
            f"opened by another process (PID {reader.pid}): close it or open it read-only): "
            f"the next build marks run {run_id} aborted") in failed[0]
    assert _run_statuses(warehouse)[run_id] == "gated"
    # the next build (here one its gate blocks: nothing is fresh in 2030) marks it
    report = build(_project(warehouse), as_of="2030-01-01", do_seed=False, data_docs=False,
                   reports_dir=tmp_path / "reports")
    assert report.status == "blocked"
    assert _run_statuses(warehouse)[run_id] == "aborted"
    assert _fingerprint(warehouse) == before
