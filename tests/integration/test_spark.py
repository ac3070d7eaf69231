"""The whole project built on Apache Spark gives DuckDB's KPI values.

The raw tables of the session's DuckDB build (`demo_warehouse`, loaded from the seeds)
become Parquet files, one per source table in the layout KPI_RAW_PARQUET reads; dbt-spark
(`method: session`, in a process of its own: tests/support/spark_build.py) registers them
as the raw tables (the project's on-run-start hook), builds the staging models, the marts
and every Spark KPI model (models/kpi_spark/) and runs all their data tests; every row of
kpi_values, kpi_windows, the catalog and two wide tables equals DuckDB's (doubles to 1e-9
relative). Needs the `spark` extra (pyspark, dbt-spark) and Java, which is installed with
apt-get when missing and possible; otherwise the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pipeline.datagen import TABLES as TABLES_OF_THE_DEMO
from pipeline.project import snapshot_worktree
from tests.conftest import REPO_ROOT, release_duckdb_handles
from tests.support import apt
from tests.support.engines import VALUE_KEYS, WINDOW_KEYS, compare, duckdb_rows

pytestmark = [pytest.mark.spark, pytest.mark.dbt]

TABLES: dict[str, Sequence[str]] = {
    "kpi_values": VALUE_KEYS,
    "kpi_windows": WINDOW_KEYS,
    "kpi_catalog": ("kpi",),
    "kpi_monthly": ("period_start",),
    "kpi_yearly": ("period_start",),
}


@pytest.fixture(scope="module")
def spark_build(demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the Spark build's KPI marts as Parquet (one folder per table)."""
    pytest.importorskip("pyspark", reason="the `spark` extra is not installed")
    pytest.importorskip("dbt.adapters.spark", reason="the `spark` extra is not installed")
    if shutil.which("java") is None:
        reason = apt.install("openjdk-17-jre-headless", "Java")
        if shutil.which("java") is None:
            pytest.skip(reason or "no java after installing openjdk-17-jre-headless")
    import duckdb

    folder = tmp_path_factory.mktemp("spark_build")
    project = snapshot_worktree(REPO_ROOT, folder / "project")
    models = sorted((project / "models" / "kpi_spark").rglob("*.sql"))
    assert models, "the demo renders no Spark models (config.engines)"
    raw = folder / "raw"
    release_duckdb_handles()
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        for table in TABLES_OF_THE_DEMO:
            (raw / table.source).mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY raw.{table.name} TO '{raw / table.source / table.name}.parquet'")
    env = {
        **os.environ,
        "KPI_TARGET": "spark",
        "KPI_RAW_PARQUET": str(raw),
        "KPI_SPARK_WAREHOUSE": str(folder / "spark-warehouse"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYTHONPATH": str(REPO_ROOT),
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "tests.support.spark_build", str(project), str(folder / "out"),
         *TABLES],
        cwd=project, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    print(f"spark: {len(TABLES_OF_THE_DEMO)} raw tables, the project with {len(models)} KPI "
          f"models built and tested in {time.perf_counter() - started:.0f} s")
    return folder / "out"


def _spark_rows(out: Path, table: str, keys: Sequence[str]) -> tuple[list[str], list[tuple[Any, ...]]]:
    import duckdb

    with duckdb.connect() as con:
        result = con.execute(
            f"SELECT * FROM read_parquet('{out / table}/*.parquet') ORDER BY {', '.join(keys)}"
        )
        return [d[0] for d in result.description], result.fetchall()


@pytest.mark.parametrize("table", sorted(TABLES))
def test_spark_build_gives_duckdb_s_rows(spark_build: Path, demo_warehouse: Path, table: str):
    keys = TABLES[table]
    duck = duckdb_rows(demo_warehouse, table, keys)
    spark = _spark_rows(spark_build, table, keys)
    assert duck[1], f"{table} is empty"
    problems = compare(duck, spark, keys, "spark")
    assert not problems, f"{table}:\n" + "\n".join(problems)


def test_the_spark_build_covers_every_kpi_grain_and_a_median(spark_build: Path, demo_warehouse: Path):
    columns, rows = _spark_rows(spark_build, "kpi_values", VALUE_KEYS)
    kpi, grain = columns.index("kpi"), columns.index("grain")
    catalog_columns, catalog = duckdb_rows(demo_warehouse, "kpi_catalog", ("kpi",))
    assert {r[kpi] for r in rows} == {r[catalog_columns.index("kpi")] for r in catalog}
    assert {r[grain] for r in rows} == {"day", "week", "month", "quarter", "year"}
    # a median (PERCENTILE_CONT on DuckDB, Spark's exact PERCENTILE), not an approximation
    medians = [r for r in rows if r[kpi] == "first_response_time" and r[grain] == "month"]
    assert medians
