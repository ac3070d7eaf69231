"""Hostile metric files against real dbt: Jinja in a label, an expression's string or a
filter is refused before dbt sees it (no table created, no environment variable read), and
braces that open no Jinja reach kpi_catalog and the KPI values as written."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.project import DbtError, Project

pytestmark = pytest.mark.dbt

REPO_ROOT = Path(__file__).resolve().parents[2]
KPI = str(Path(sys.executable).with_name("kpi"))
SECRET = "s3cr3t-from-the-environment"

HOSTILE = """
kpis:
  - name: revenue
    label: 'Online sales {{ env_var("KPI_TEST_SECRET") }}'
    category: financial
    model: orders
    time: order_date
    sum: "CASE WHEN channel = '{{ run_query(\\"create table main.pwned as select 1 as x\\") }}' THEN 0 ELSE amount END"
    filter: "channel <> '{% do run_query(\\"create table main.pwned_too as select 1 as x\\") %}'"
"""

# braces, percent and hash signs that open no Jinja
BRACES = "Online sales {EU} 100% #1 { {x} }"
HARMLESS = f"""
kpis:
  - name: revenue
    label: '{BRACES}'
    description: "Sales of {{channel}} orders, #1 KPI"
    category: financial
    model: orders
    time: order_date
    sum: "CASE WHEN channel = '{{test}}' THEN 0 ELSE amount END"
    filter: "channel <> '{{ }}'"
    grains: [month]
"""


def _project(root: Path, metrics: str) -> Project:
    (root / "models").mkdir(parents=True)
    (root / "metrics").mkdir()
    (root / "dbt_project.yml").write_text(
        "name: jinja_probe\nversion: '1.0.0'\nconfig-version: 2\nprofile: jinja_probe\n"
        "model-paths: [models]\nmacro-paths: [macros]\ntest-paths: [tests]\n"
    )
    (root / "profiles.yml").write_text(
        "jinja_probe:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n"
        "      path: \"{{ env_var('KPI_WAREHOUSE') }}\"\n      schema: main\n      threads: 1\n"
    )
    (root / "models" / "orders.sql").write_text(
        "select * from (values (1, date '2024-01-05', 10.0, 'web'),"
        " (2, date '2024-01-20', 5.5, '{test}'), (3, date '2024-02-01', 2.0, '{ }'))"
        " as t(order_id, order_date, amount, channel)"
    )
    (root / "models" / "_models.yml").write_text(
        "version: 2\nmodels:\n  - name: orders\n    columns:\n"
        "      - {name: order_id, data_type: integer, data_tests: [unique]}\n"
        "      - {name: order_date, data_type: date}\n"
        "      - {name: amount, data_type: 'decimal(12,2)'}\n"
        "      - {name: channel, data_type: varchar}\n"
    )
    (root / "metrics" / "sales.yml").write_text(metrics)
    return Project(
        root,
        env={
            "KPI_WAREHOUSE": str(root / "warehouse.duckdb"),
            "KPI_TEST_SECRET": SECRET,
            "DBT_TARGET_PATH": str(root / "target"),
            "DBT_LOG_PATH": str(root / "logs"),
        },
    )


def _compile(project: Project) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KPI, "compile", "--project-dir", str(project.root)],
        capture_output=True,
        text=True,
        env=project.dbt_env(),
    )


def _warehouse(project: Project) -> tuple[set[str], list[tuple]]:
    """The warehouse's table names and every row of them."""
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        tables = {
            t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()
        }
        rows = [
            row for t in sorted(tables) for row in con.execute(f'select * from "{t}"').fetchall()
        ]
    return tables, rows


def test_jinja_in_a_metric_file_is_refused_and_dbt_runs_none_of_it(tmp_path: Path):
    project = _project(tmp_path, HOSTILE)
    result = _compile(project)
    with contextlib.suppress(DbtError):  # dbt builds whatever was written
        project.dbt(["build"])
    tables, rows = _warehouse(project)
    assert "orders" in tables
    assert not [t for t in tables if t.startswith("pwned")]  # no run_query ran
    assert not [row for row in rows if any(SECRET in str(value) for value in row)]
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    for place, field, delimiter in (
        ("4:12", "label", "{{"),
        ("8:10", "sum", "{{"),
        ("9:13", "filter", "{%"),
    ):
        message = (
            f"kpi 'revenue': {field} must not contain '{delimiter}' (dbt would run it as Jinja)"
        )
        assert f"metrics/sales.yml:{place}: error: {message}" in lines, lines
    assert not (tmp_path / "models" / "kpi").exists()


def test_braces_that_open_no_jinja_reach_the_catalog_and_values_as_written(tmp_path: Path):
    project = _project(tmp_path, HARMLESS)
    result = _compile(project)
    assert result.returncode == 0, result.stdout + result.stderr
    project.dbt(["build"])
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        catalog = con.execute("select label, description from kpi_catalog").fetchall()
        values = con.execute(
            "select period_start, value from kpi_values"
            " where kpi = 'revenue' and grain = 'month' and dimension = 'total'"
            " order by period_start"
        ).fetchall()
    assert catalog == [(BRACES, "Sales of {channel} orders, #1 KPI")]
    # orders on channel '{test}' count 0, the one on '{ }' is filtered out
    assert [float(v) for _, v in values] == [10.0, 0.0]
