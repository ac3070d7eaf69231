"""The gate on a project of one's own: dbt sources outside `raw`, unguarded tables, Parquet
files in another layout. `kpi check` (the gate alone) on a small dbt project in a fresh
folder and a real DuckDB file; no dbt run is needed for these."""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import pytest
from rich.console import Console

from pipeline import publish
from pipeline.build import check
from pipeline.project import Project
from pipeline.report import print_report

AS_OF = "2026-11-15"
SOURCES = """\
version: 2
sources:
  - name: shop
    schema: landing
    tables:
      - name: orders
        identifier: shop_orders
      - name: customers
"""
EXPECTATIONS = """\
version: 1
source: shop
tables:
  orders:
    key: order_id
    columns: {order_id: integer, status: string}
    checks:
      - accepted_values: {column: status, values: [placed, shipped]}
        max_quarantine_percent: 50
"""


def own_project(root: Path, expectations: str | None = EXPECTATIONS, **env: str) -> Project:
    (root / "models" / "staging" / "shop").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: own\nversion: '1.0.0'\nconfig-version: 2\nprofile: own\n")
    (root / "models" / "staging" / "shop" / "_shop__sources.yml").write_text(SOURCES)
    if expectations is not None:
        (root / "models" / "staging" / "shop" / "_shop__expectations.yml").write_text(expectations)
    return Project(root, {"KPI_WAREHOUSE": str(root / "wh.duckdb"), **env})


def fill(project: Project) -> None:
    con = publish.connect(project.warehouse)
    try:
        con.execute("CREATE SCHEMA landing")
        con.execute("CREATE TABLE landing.shop_orders AS SELECT range AS order_id, "
                    "CASE WHEN range = 3 THEN 'on_hold' ELSE 'placed' END AS status FROM range(10)")
        con.execute("CREATE TABLE landing.customers AS SELECT range AS customer_id, "
                    "TIMESTAMP '2026-11-01' + INTERVAL (range) DAY AS signed_up_at FROM range(4)")
    finally:
        con.close()


def terminal(report) -> str:
    out = io.StringIO()
    print_report(report, Console(file=out, width=300, highlight=False))
    return " ".join(out.getvalue().split())


def test_the_gate_reads_a_source_where_it_is_and_names_the_unguarded(tmp_path):
    project = own_project(tmp_path)
    fill(project)
    report = check(project, as_of=AS_OF, do_seed=False, reports_dir=tmp_path / "reports")
    assert report.gate is not None
    orders = report.gate.table("orders")
    assert orders.raw_rows == 10  # landing.shop_orders, not raw.orders
    outcome = report.gate.outcome("orders.accepted_values.status")
    # dbt reads landing in place: a row the gate would set aside blocks instead
    assert outcome.action == "blocked" and outcome.unexpected_count == 1
    assert "reads landing.shop_orders in place" in outcome.note
    assert report.status == "blocked"
    (unguarded,) = report.gate.unguarded
    assert (unguarded.source, unguarded.table, unguarded.relation, unguarded.rows) == (
        "shop", "customers", "landing.customers", 4)
    assert "UNGUARDED shop.customers (landing.customers, models/staging/shop/_shop__sources.yml:8)" \
        " has no expectations: 4 rows, nothing checked" in terminal(report)
    saved = json.loads(report.report_path.read_text())["gate"]
    assert saved["unguarded"][0]["table"] == "customers"
    # the fingerprint covers the unguarded table too: rows and newest timestamp
    inputs = {t["table"]: t for t in saved["inputs"]["tables"]}
    assert (inputs["customers"]["rows"], inputs["customers"]["newest"]) == (4, "2026-11-04T00:00:00")
    con = publish.connect(project.warehouse)
    try:
        schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    finally:
        con.close()
    assert "raw" not in schemas


def test_without_expectations_every_source_is_unguarded_never_a_silent_pass(tmp_path):
    project = own_project(tmp_path, expectations=None)
    fill(project)
    report = check(project, as_of=AS_OF, do_seed=False, reports_dir=tmp_path / "reports")
    assert report.gate is not None and report.gate.tables == []
    assert {u.table for u in report.gate.unguarded} == {"orders", "customers"}
    assert report.gate.status == "warned"


def _parquet(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(f"COPY ({sql}) TO '{folder / name}' (FORMAT parquet)")


def test_parquet_files_load_into_each_sources_relation_in_the_given_layout(tmp_path):
    files = tmp_path / "files"
    _parquet(files / "shop", "orders-2026.parquet",
             "SELECT range AS order_id, 'placed' AS status FROM range(5)")
    project = own_project(tmp_path / "p", expectations=None, KPI_RAW_PARQUET=str(files),
                          KPI_RAW_PARQUET_LAYOUT="{source}/{table}-*.parquet")
    report = check(project, as_of=AS_OF, reports_dir=tmp_path / "reports")
    assert report.status == "checked", report.error
    rows = {u.table: u.rows for u in report.gate.unguarded}
    assert rows == {"orders": 5, "customers": None}  # loaded into landing.shop_orders; no file
    assert any("shop.customers: no Parquet file" in note for note in report.notes)


def test_parquet_files_for_no_source_table_fail_the_run(tmp_path):
    files = tmp_path / "files"
    _parquet(files / "elsewhere", "orders.parquet", "SELECT 1 AS order_id")
    project = own_project(tmp_path / "p", expectations=None, KPI_RAW_PARQUET=str(files))
    report = check(project, as_of=AS_OF, reports_dir=tmp_path / "reports")
    assert report.status == "failed"
    assert report.error and "for any of the 2 dbt source table(s)" in report.error
    assert "nothing to load" in report.error


@pytest.mark.parametrize("layout", ["{source}.parquet", "{tables}/x.parquet", "../{table}.parquet"])
def test_a_layout_without_the_table_is_refused(tmp_path, layout):
    from pipeline.raw import check_layout

    with pytest.raises(ValueError, match="Parquet layout"):
        check_layout(layout)


PROFILE = """\
own:
  target: dev
  outputs:
    dev: {type: duckdb, path: "{{ env_var('KPI_WAREHOUSE') }}", schema: raw, threads: 1}
"""


@pytest.mark.dbt
def test_a_seed_dbt_cannot_type_is_loaded_as_text_but_a_broken_project_fails(tmp_path):
    root = tmp_path / "p"
    project = own_project(root, expectations=None)
    (root / "models" / "staging" / "shop" / "_shop__sources.yml").write_text(
        "version: 2\nsources:\n  - name: shop\n    schema: raw\n    tables:\n      - name: orders\n"
    )
    (root / "profiles.yml").write_text(PROFILE)
    (root / "seeds").mkdir()
    (root / "seeds" / "orders.csv").write_text("order_id,amount\n1,5\n2,N/A\n")
    (root / "seeds" / "_seeds.yml").write_text(
        "version: 2\nseeds:\n  - name: orders\n    config:\n      column_types: {amount: BIGINT}\n"
    )
    env = {**project.env, "DBT_TARGET_PATH": str(tmp_path / "target"),
           "DBT_LOG_PATH": str(tmp_path / "logs")}
    project = Project(root, env)
    report = check(project, as_of=AS_OF, data_docs=False, reports_dir=tmp_path / "reports")
    assert report.status == "checked", report.error
    assert any("dbt seed could not load some CSVs" in note for note in report.notes)
    assert [u.rows for u in report.gate.unguarded] == [2]
    # a project dbt cannot parse: the error, not a quiet fallback to loading CSVs
    (root / "models" / "broken.sql").write_text("select * from {{ ref('no_such_model') }}")
    report = check(project, as_of=AS_OF, data_docs=False, reports_dir=tmp_path / "reports")
    assert report.status == "failed" and "no_such_model" in (report.error or "")
    assert not report.notes


TEXT_EXPECTATIONS = """\
version: 1
source: shop
tables:
  orders:
    key: order_id
    columns: {order_id: string, ordered_at: string, amount: string}
    checks:
      - freshness: {column: ordered_at, max_age: 2d}
        as: timestamp
      - not_in_future: [ordered_at]
        as: timestamp
      - between: {column: amount, min: 0}
        as: number
"""


def test_a_text_typed_parquet_table_gets_freshness_and_range_checks(tmp_path):
    """Parquet written from a text export (every column VARCHAR): its timestamps and
    amounts are checked as such; a stale extract blocks."""
    files = tmp_path / "files"
    newest = {"stale": "2026-11-01 08:00:00", "fresh": "2026-11-15 08:00:00"}
    for name, last in newest.items():
        _parquet(files / name / "shop", "orders.parquet",
                 "SELECT * FROM (VALUES ('1', '2026-10-30 10:00:00', '5.50'), "
                 f"('2', '{last}', '-1'), ('3', 'not a time', '2')) t(order_id, ordered_at, amount)")
    for name in newest:
        root = tmp_path / name
        project = own_project(root, TEXT_EXPECTATIONS, KPI_RAW_PARQUET=str(files / name))
        report = check(project, as_of=AS_OF, data_docs=False, reports_dir=tmp_path / "reports")
        gate = report.gate
        assert gate is not None and gate.outcome("orders.type.ordered_at").success
        freshness = gate.outcome("orders.freshness.ordered_at")
        assert freshness.observed.isoformat(sep=" ") == newest[name]
        assert freshness.action == ("blocked" if name == "stale" else "passed")
        assert gate.outcome("orders.between.amount").unexpected_count == 1
        assert gate.outcome("orders.as_timestamp.ordered_at").unexpected_count == 1
        assert {t.table: t.newest for t in gate.inputs.tables}["orders"] == newest[name].replace(" ", "T")
