"""`dbt build` of the whole project on a local SparkSession (dbt-spark's `session` method),
from raw Parquet files, in a process of its own so the JVM ends with it.

    python -m tests.support.spark_build PROJECT OUT TABLE...

Run with PROJECT as the working folder (Spark's metastore and warehouse land there) and
KPI_RAW_PARQUET set: the project's on-run-start hook registers the raw tables over those
files; the staging models, marts and Spark KPI models are built and tested, and each TABLE
is written back to OUT/<table>/ as Parquet. The session is the one dbt-spark then opens (the
settings of profiles.yml's `spark` output), so the build and the export share it.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(project: Path, out: Path, tables: list[str]) -> int:
    from dbt.cli.main import dbtRunner
    from pyspark.sql import SparkSession

    from pipeline.profile import read_yaml, rendered

    # the settings of profiles.yml's `spark` output, which dbt-spark's session reuses
    name = read_yaml(project / "dbt_project.yml")["profile"]
    output = read_yaml(project / "profiles.yml")[name]["outputs"]["spark"]
    settings = {key: rendered(value) for key, value in output["server_side_parameters"].items()}
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    result = dbtRunner().invoke(
        [
            "build", "--exclude", "resource_type:seed", "--target", "spark",
            "--project-dir", str(project), "--profiles-dir", str(project),
        ]
    )
    if not result.success:
        return 1
    for table in tables:
        spark.table(f"analytics.{table}").write.mode("overwrite").parquet(str(out / table))
    return 0


if __name__ == "__main__":
    project, out, *tables = sys.argv[1:]
    sys.exit(main(Path(project), Path(out), tables))
