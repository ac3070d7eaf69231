"""The runtime statements: built as trees, quoted by sqlglot, run on a real DuckDB."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp, parse_one

from pipeline import publish
from pipeline.warehouse import sql
from pipeline.warehouse.names import RUNS_TABLE, Relation, input_schema, run_schema

HOSTILE = ["it's", 'a "quoted" name', "semi; DROP TABLE x; --", "back\\slash", "ünïcode"]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


@pytest.mark.parametrize("text", HOSTILE)
def test_a_literal_reads_back_as_the_text(con: duckdb.DuckDBPyConnection, text: str) -> None:
    row = con.execute(f"SELECT {sql.quote_literal(text)}").fetchone()
    assert row == (text,)


@pytest.mark.parametrize("name", HOSTILE)
def test_any_name_is_one_identifier(con: duckdb.DuckDBPyConnection, name: str) -> None:
    sql.execute(con, sql.create_schema(name))
    table = Relation(name, name)
    sql.execute(con, sql.create_view(table, exp.select(exp.alias_(exp.Literal.number(1), "x"))))
    assert sql.execute(con, sql.has_table(table)).fetchone() == (1,)
    assert sql.execute(con, sql.tables(name)).fetchall() == [(name, "VIEW")]
    sql.execute(con, sql.drop_schema(name))
    assert name not in [r[0] for r in sql.execute(con, sql.schemas()).fetchall()]


def test_fill_replaces_named_placeholders_and_keeps_parameters(con: duckdb.DuckDBPyConnection) -> None:
    query = sql.fill("SELECT x FROM :t WHERE x = ?", t=Relation("main", "it's").node())
    con.execute('CREATE TABLE "it\'s" AS SELECT 1 AS x UNION ALL SELECT 2')
    assert sql.execute(con, query, [2]).fetchall() == [(2,)]


def test_the_marker_view_holds_the_run_and_moment(con: duckdb.DuckDBPyConnection) -> None:
    sql.execute(con, sql.create_schema("analytics"))
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000)
    sql.execute(con, sql.marker_view("r20260102t030405_abcdef", moment))
    assert con.execute("SELECT * FROM analytics._kpi_published").fetchall() == [
        ("r20260102t030405_abcdef", moment)
    ]


@pytest.mark.parametrize("fmt", sorted(sql.COPY_OPTIONS))
def test_copy_writes_to_any_path(con: duckdb.DuckDBPyConnection, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"it's {fmt}.{fmt}"
    sql.execute(con, sql.copy_to(exp.select(exp.alias_(exp.Literal.string("v"), "a")), path, fmt))
    reader = {"parquet": "read_parquet", "csv": "read_csv", "json": "read_json"}[fmt]
    assert con.execute(f"SELECT a FROM {reader}(?)", [str(path)]).fetchall() == [("v",)]


def test_attach_reads_a_file_with_any_name(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "it's.duckdb"
    with duckdb.connect(str(path)) as other:
        other.execute("CREATE TABLE t AS SELECT 7 AS x")
    sql.execute(con, sql.attach(path, "side"))
    assert con.execute("SELECT x FROM side.t").fetchall() == [(7,)]
    with pytest.raises(duckdb.Error):  # read only
        con.execute("INSERT INTO side.t VALUES (8)")


def test_meta_tables_are_created_and_upgraded(con: duckdb.DuckDBPyConnection) -> None:
    """A warehouse from before a column was added gets it when opened."""
    con.execute("CREATE SCHEMA kpi_meta")
    con.execute("CREATE TABLE kpi_meta._kpi_runs (run_id VARCHAR PRIMARY KEY, status VARCHAR NOT NULL)")
    publish.ensure_meta(con)
    columns = [r[0] for r in con.execute("DESCRIBE kpi_meta._kpi_runs").fetchall()]
    assert columns == ["run_id", "status", "inputs", "published_tables"]
    publish.ensure_meta(con)  # again: nothing changes
    assert sql.execute(con, sql.has_table(RUNS_TABLE)).fetchone() == (1,)


def test_fingerprint_is_independent_of_row_order(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE a AS SELECT * FROM (VALUES (1, 'x'), (2, NULL)) AS t(k, v)")
    con.execute("CREATE TABLE b AS SELECT * FROM (VALUES (2, NULL), (1, 'x')) AS t(k, v)")
    con.execute("CREATE TABLE c AS SELECT * FROM (VALUES (2, 'y'), (1, 'x')) AS t(k, v)")
    digest = {t: sql.execute(con, sql.fingerprint(con, Relation("main", t))).fetchone() for t in "abc"}
    assert digest["a"] == digest["b"] != digest["c"]


def test_run_schemas_take_run_ids_only() -> None:
    run_id = publish.new_run_id()
    assert run_schema(run_id) == f"run_{run_id}" and input_schema(run_id) == f"run_{run_id}_input"
    with pytest.raises(ValueError):
        run_schema("x; DROP SCHEMA analytics")


@pytest.mark.parametrize("dialect", sorted(sql.DIALECTS))
def test_every_statement_generates_in_every_dialect(dialect: str) -> None:
    """The trees are engine-neutral: each dialect generates text it parses back."""
    table = Relation("run_x", "kpi_values")
    statements: list[exp.Expr] = [
        sql.create_schema("s"), sql.drop_schema("s"), sql.drop(table, "VIEW"),
        sql.create_view(table, sql.select_all(table)), sql.marker_view("r", datetime(2026, 1, 1)),
        *[s for t in (*sql.META_TABLES, sql.SENT_DEF) for s in sql.create_table(t)],
        sql.insert_row(sql.SENT_DEF), sql.update(RUNS_TABLE, {"status": sql.param()}, sql.is_param("run_id")),
        sql.tables("s", base_only=True), sql.has_table(table), sql.describe(table),
        *[q for _, q in sql.audit_queries("run_x", ["kpi_values", "kpi_catalog", "kpi_daily"])],
        sql.totals(table, ["kpi"]), sql.latest_two(table, ["kpi"]),
    ]
    for statement in statements:
        text = statement.sql(dialect=dialect)
        assert parse_one(text, read=dialect) is not None, text
