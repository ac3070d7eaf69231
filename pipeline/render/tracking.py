"""The tracking models: the final long table `kpi_values` (comparisons, targets, status,
deviation) and `kpi_windows` (trailing windows, period to date).

Their SQL is constant in shape and lives in templates/*.sql, parsed by sqlglot; what varies
with the metric files comes in as data (the catalog, target and window definitions) and as
calendar expressions replacing the templates' __period_start__-style placeholders.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import sqlglot
from sqlglot import exp

from pipeline.plan import calendar
from pipeline.plan.measures import target_carry
from pipeline.plan.planner import Plan
from pipeline.render.sql import (
    DATE,
    DOUBLE,
    VALUE_COLUMNS,
    VARCHAR,
    col,
    lit,
    ref_table,
    select,
    typed_values,
)
from pipeline.spec.model import GRAINS, Spec

TEMPLATE_DIALECT = "postgres"
TARGET_COLUMNS = (
    ("kpi", VARCHAR),
    ("priority", DOUBLE),
    ("kind", VARCHAR),
    ("per", VARCHAR),
    ("series_start", DATE),
    ("value", DOUBLE),
    ("growth", DOUBLE),
    ("dimension", VARCHAR),
    ("dimension_value", VARCHAR),
    ("valid_from", DATE),
    ("valid_to", DATE),
    ("carry", VARCHAR),
    ("source", VARCHAR),
)
WINDOW_COLUMNS = (
    ("kpi", VARCHAR),
    ("window_name", VARCHAR),
    ("grain", VARCHAR),
    ("periods", DOUBLE),
)


@cache
def _template(name: str) -> exp.Expr:
    text = (
        resources.files("pipeline.render")
        .joinpath("templates", f"{name}.sql")
        .read_text(encoding="utf-8")
    )
    return sqlglot.parse_one(text, read=TEMPLATE_DIALECT)


def kpi_values(spec: Spec, plan: Plan) -> exp.Expr:
    ctes = [
        ("observations", _observations(plan)),
        ("catalog", select(exp.Star()).from_(ref_table("kpi_catalog"), copy=False)),
        ("target_definitions", _target_definitions(spec)),
    ]
    return _fill(_template("kpi_values").copy(), ctes, plan.week_start)


def kpi_windows(spec: Spec, plan: Plan) -> exp.Expr:
    ctes = [
        ("observations", _observations(plan)),
        ("catalog", select(exp.Star()).from_(ref_table("kpi_catalog"), copy=False)),
        ("window_definitions", _window_definitions(spec)),
    ]
    return _fill(_template("kpi_windows").copy(), ctes, plan.week_start)


def _observations(plan: Plan) -> exp.Expr:
    """Every KPI's rows, from the values models."""
    models = sorted({s.values_model for s in plan.steps})
    branches = [
        select(*(col(c) for c in VALUE_COLUMNS)).from_(ref_table(m), copy=False) for m in models
    ]
    query: exp.Expr = branches[0]
    for branch in branches[1:]:
        query = exp.union(query, branch, distinct=False, copy=False)
    return query


def _target_definitions(spec: Spec) -> exp.Expr:
    kpis = {k.name: k for k in spec.kpis}
    rows = []
    for kpi in sorted(spec.kpis, key=lambda k: k.name):
        carry = target_carry(kpi, kpis)
        for priority, target in enumerate(spec.targets_of(kpi)):
            series = target.series if target.kind == "series" else ((None, target.value),)
            for start, value in series:
                rows.append(
                    [
                        kpi.name,
                        priority,
                        target.kind,
                        target.per,
                        _month_start(start),
                        value,
                        target.growth,
                        target.where[0] if target.where else None,
                        target.where[1] if target.where else None,
                        target.valid_from,
                        target.valid_to,
                        carry,
                        target.source,
                    ]
                )
    return typed_values(TARGET_COLUMNS, rows, "target_definitions")


def _month_start(key: str | None) -> str | None:
    """Series keys name a period by its first day; '2025-11' is accepted for a month."""
    return f"{key}-01" if key is not None and len(key) == 7 else key


def _window_definitions(spec: Spec) -> exp.Expr:
    rows: list[list[object]] = [
        [kpi.name, window.name, window.grain, window.count]
        for kpi in sorted(spec.kpis, key=lambda k: k.name)
        for window in kpi.windows
    ]
    return typed_values(WINDOW_COLUMNS, rows, "window_definitions")


_PLACEHOLDERS = {
    "__period_start__": lambda grain, value, week_start: calendar.period_start(
        grain, value, week_start
    ),
    "__period_end__": lambda grain, value, week_start: calendar.period_end(grain, value),
    "__last_year_start__": lambda grain, value, week_start: calendar.last_year_start(
        grain, value, week_start
    ),
}


def _fill(template: exp.Expr, ctes: list[tuple[str, exp.Expr]], week_start: str) -> exp.Expr:
    """Put the generated CTEs in front of the template's and expand its calendar placeholders."""
    for call in reversed(list(template.find_all(exp.Anonymous))):  # innermost first
        expand = _PLACEHOLDERS.get(str(call.this).lower())
        if expand is None:
            continue
        grain, value = call.expressions
        if isinstance(grain, exp.Literal):
            call.replace(expand(grain.name, value, week_start))
        else:  # a grain held in a column: one branch per grain
            branches = [
                exp.If(
                    this=exp.EQ(this=grain.copy(), expression=lit(g)),
                    true=expand(g, value.copy(), week_start),
                )
                for g in GRAINS
            ]
            call.replace(exp.Case(ifs=branches))
    generated = [exp.CTE(this=q, alias=exp.TableAlias(this=exp.to_identifier(n))) for n, q in ctes]
    with_ = template.args["with_"]  # every template starts with a WITH
    with_.set("expressions", [*generated, *with_.expressions])
    return template
