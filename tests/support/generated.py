"""Run generated KPI models in an in-memory DuckDB: the real SQL on real DuckDB, without dbt.

dbt's wrapper is the only Jinja in generated models: `{{ config(...) }}` is dropped and
`{{ ref('x') }}` becomes table x, then each model is created in dependency order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import duckdb
import pandas as pd

from pipeline.catalog import Catalog, ModelInfo
from pipeline.compiler import Compiled, compile_files
from pipeline.errors import Location

_REF = re.compile(r"\{\{\s*ref\('([a-z0-9_]+)'\)\s*\}\}")
_CONFIG = re.compile(r"\{\{\s*config\(.*?\)\s*\}\}")


def catalog_of(
    tables: Mapping[str, pd.DataFrame], unique: Mapping[str, str] | None = None
) -> Catalog:
    """A catalog describing in-memory tables (their columns and DuckDB types)."""
    models = {}
    con = duckdb.connect()
    for name, frame in tables.items():
        con.register("frame", frame)
        types = dict(
            con.execute("select column_name, column_type from (describe frame)").fetchall()
        )
        con.unregister("frame")
        keys = frozenset({unique[name]} if unique and name in unique else set())
        models[name] = ModelInfo(name, types, keys, Location(f"models/{name}.yml", 1, 1))
    return Catalog(models)


def compile_metrics(
    yaml_text: str, tables: Mapping[str, pd.DataFrame], unique: Mapping[str, str] | None = None
) -> Compiled:
    result = compile_files({"metrics/test.yml": yaml_text}, catalog_of(tables, unique))
    assert result.ok, "\n".join(str(i) for i in result.issues)
    return result


def run(compiled: Compiled, tables: Mapping[str, pd.DataFrame]) -> duckdb.DuckDBPyConnection:
    """Create the input tables and every generated model; return the connection."""
    con = duckdb.connect()
    for name, frame in tables.items():
        con.register(f"{name}__frame", frame)
        con.execute(f"create table {name} as select * from {name}__frame")
    models = {
        path.rsplit("/", 1)[-1][:-4]: text
        for path, text in compiled.files.items()
        if path.startswith("models/") and path.endswith(".sql")
    }
    done: set[str] = set()

    def create(name: str) -> None:
        if name in done or name in tables:
            return
        body = _CONFIG.sub("", models[name])
        for dependency in _REF.findall(body):
            create(dependency)
        con.execute(f"create table {name} as {_REF.sub(lambda m: m.group(1), body)}")
        done.add(name)

    for name in sorted(models):
        create(name)
    return con


def values(
    con: duckdb.DuckDBPyConnection, kpi: str, grain: str, dimension: str = "total"
) -> dict[tuple, float | None]:
    """{(period_start, dimension_value): value} for one KPI, grain and dimension."""
    rows = con.execute(
        "select period_start, dimension_value, value from kpi_values where kpi = ? and grain = ? and dimension = ?",
        [kpi, grain, dimension],
    ).fetchall()
    return {(start, value): v for start, value, v in rows}
