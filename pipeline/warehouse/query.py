"""Reading the published KPI marts from the warehouse (DuckDB by default)."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from pipeline.errors import Location, NoWarehouse, did_you_mean, error
from pipeline.errors import UserError as _UserError
from pipeline.project import Project
from pipeline.spec.model import GRAINS
from pipeline.warehouse import sql
from pipeline.warehouse.names import values_table


def _user_error(message: str) -> _UserError:
    return _UserError([error(message, Location("kpi query"))])


def kpi_rows(
    project: Project, kpi: str, grain: str, by: str | None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Rows of kpi_values for one KPI and grain: totals, or one slice per value of `by`."""
    import duckdb

    if grain not in GRAINS:
        raise _user_error(
            f"unknown grain '{grain}'{did_you_mean(grain, GRAINS)}; use one of {', '.join(GRAINS)}"
        )
    if not project.warehouse.is_file():
        raise NoWarehouse(project.warehouse)
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        table = values_table()
        known = [r[0] for r in sql.execute(con, sql.distinct(table, "kpi")).fetchall()]
        if kpi not in known:
            raise _user_error(f"unknown KPI '{kpi}'{did_you_mean(kpi, known)}")
        dims = [
            r[0]
            for r in sql.execute(
                con, sql.distinct(table, "dimension", sql.is_param("kpi")), [kpi]
            ).fetchall()
        ]
        dimension = by or "total"
        if dimension not in dims:
            choices = ", ".join(d for d in sorted(dims) if d != "total") or "none"
            raise _user_error(
                f"KPI '{kpi}' has no dimension '{dimension}'{did_you_mean(dimension, dims)} (dimensions: {choices})"
            )
        where = exp.and_(*(sql.is_param(c) for c in ("kpi", "grain", "dimension")))
        query = sql.ordered(table, [], ["period_start", "dimension_value"], where)
        result = sql.execute(con, query, [kpi, grain, dimension])
        columns = [d[0] for d in result.description]
        return columns, result.fetchall()
