"""The cluster tier: the whole project built through a Spark Thrift server whose master is a
standalone cluster of two workers on loopback (tests/support/spark_cluster.py), with
dbt-spark's `thrift` method, gives DuckDB's KPI values, and its tasks ran on the workers.

Needs the `spark` extra (pyspark, dbt-spark with PyHive) and Java.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.datagen import TABLES as TABLES_OF_THE_DEMO
from pipeline.project import snapshot_worktree
from tests.conftest import REPO_ROOT, release_duckdb_handles
from tests.support import apt
from tests.support.engines import VALUE_KEYS, WINDOW_KEYS, compare, duckdb_rows
from tests.support.spark_cluster import Cluster, standalone_cluster, tasks_run_by

pytestmark = [pytest.mark.spark, pytest.mark.dbt]

TABLES = {"kpi_values": VALUE_KEYS, "kpi_windows": WINDOW_KEYS}


@pytest.fixture(scope="module")
def cluster_build(
    demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, Path]]:
    pytest.importorskip("pyhive", reason="dbt-spark's PyHive extra is not installed")
    if shutil.which("java") is None:
        reason = apt.install("openjdk-17-jre-headless", "Java")
        if shutil.which("java") is None:
            pytest.skip(reason or "no java after installing openjdk-17-jre-headless")
    import duckdb
    from pyhive import hive

    folder = tmp_path_factory.mktemp("spark_cluster")
    project = snapshot_worktree(REPO_ROOT, folder / "project")
    raw = folder / "raw"
    release_duckdb_handles()
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        for table in TABLES_OF_THE_DEMO:
            (raw / table.source).mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY raw.{table.name} TO '{raw / table.source / table.name}.parquet'")
    with standalone_cluster(folder / "cluster") as cluster:
        env = {
            **os.environ,
            "KPI_TARGET": "spark", "KPI_SPARK_METHOD": "thrift",
            "KPI_SPARK_PORT": str(cluster.thrift_port), "KPI_RAW_PARQUET": str(raw),
            "DBT_TARGET_PATH": str(folder / "target"), "DBT_LOG_PATH": str(folder / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        run = subprocess.run(
            [str(Path(sys.executable).parent / "dbt"), "build", "--exclude", "resource_type:seed",
             "--project-dir", str(project), "--profiles-dir", str(project)],
            cwd=project, env=env, capture_output=True, text=True, timeout=1800,
        )
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
        out = folder / "out"
        with hive.connect(host="127.0.0.1", port=cluster.thrift_port) as con:
            cursor = con.cursor()
            for table in TABLES:
                cursor.execute(f"insert overwrite directory '{out / table}' using parquet "
                               f"select * from analytics.{table}")
        yield cluster, out


def test_the_tasks_ran_on_both_workers(cluster_build: tuple[Cluster, Path]):
    cluster, _ = cluster_build
    assert all(tasks_run_by(worker) > 0 for worker in cluster.worker_folders)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_cluster_build_gives_duckdb_s_rows(
    cluster_build: tuple[Cluster, Path], demo_warehouse: Path, table: str
):
    import duckdb

    _, out = cluster_build
    keys = TABLES[table]
    with duckdb.connect() as con:
        result = con.execute(
            f"SELECT * FROM read_parquet('{out / table}/*.parquet') ORDER BY {', '.join(keys)}"
        )
        cluster = [d[0] for d in result.description], result.fetchall()
    problems = compare(duckdb_rows(demo_warehouse, table, keys), cluster, keys, "spark cluster")
    assert not problems, f"{table}:\n" + "\n".join(problems)
