"""The tracking models: the final long table `kpi_values` (comparisons, targets, status,
deviation) and `kpi_windows` (trailing windows, period to date).

Their SQL is constant in shape and lives in templates/*.sql, parsed by sqlglot; what varies
with the metric files comes in as data (the catalog, target and window definitions) and as
calendar expressions replacing the templates' __period_start__-style placeholders.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources

import sqlglot
from sqlglot import exp

from pipeline.plan.models import NodeKind
from pipeline.plan.planner import Plan
from pipeline.plan.steps import Step
from pipeline.render.builders import (
    DATE,
    DOUBLE,
    INCREMENTAL_PREFIX,
    INTEGER,
    RECOMPUTE_FROM,
    VARCHAR,
    and_,
    col,
    days_between,
    divide,
    lit,
    ref_table,
    select,
)
from pipeline.render.sql import (
    KEYS,
    WINDOW_ROW_COLUMNS,
    joined,
    sightings,
    since,
    slice_alias,
    typed_values,
    with_bounds,
)
from pipeline.semantics import calendar
from pipeline.semantics.additivity import target_carry
from pipeline.semantics.marts import VALUE_COLUMNS
from pipeline.spec.model import GRAINS, Spec

TEMPLATE_DIALECT = "postgres"
TARGET_COLUMNS = (
    ("kpi", VARCHAR),
    ("priority", DOUBLE),
    ("series_index", INTEGER),
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
        ("observations", _every_row("kpi_observations")),
        ("catalog", _every_row("kpi_catalog")),
        ("target_definitions", _every_row("kpi_targets")),
    ]
    return _fill(_template("kpi_values").copy(), ctes, plan.week_start)


def kpi_windows(spec: Spec, plan: Plan) -> exp.Expr:
    ctes = [
        ("observations", _every_row("kpi_observations")),
        ("catalog", _every_row("kpi_catalog")),
        ("window_definitions", _window_definitions(spec)),
        ("distinct_windows", _distinct_windows(plan)),
    ]
    return _fill(_template("kpi_windows").copy(), ctes, plan.week_start)


def _every_row(model: str) -> exp.Expr:
    return select(exp.Star()).from_(ref_table(model), copy=False)


def observations(plan: Plan) -> exp.Expr:
    """Every KPI's rows, from the values models."""
    models = sorted({s.values_model for s in plan.steps})
    branches = [
        select(*(col(c) for c in VALUE_COLUMNS)).from_(ref_table(m), copy=False) for m in models
    ]
    query: exp.Expr = branches[0]
    for branch in branches[1:]:
        query = exp.union(query, branch, distinct=False, copy=False)
    return query


def _distinct_windows(plan: Plan) -> exp.Expr:
    columns = (
        "window_name",
        "grain",
        "period_start",
        "period_end",
        "window_start",
        "dimension",
        "dimension_value",
        "value",
    )
    branches = [
        select(
            exp.alias_(lit(m.steps[0].kpi.name), "kpi", copy=False), *(col(c) for c in columns)
        ).from_(ref_table(m.name), copy=False)
        for m in plan.of_kind(NodeKind.DISTINCT_WINDOWS)
    ]
    if not branches:
        return typed_values([("kpi", VARCHAR), *WINDOW_ROW_COLUMNS], [], "distinct_windows")
    query: exp.Expr = branches[0]
    for branch in branches[1:]:
        query = exp.union(query, branch, distinct=False, copy=False)
    return query


def targets(spec: Spec) -> exp.Expr:
    """Every target as data, one row per target and period of a series: a changed target
    is a changed line."""
    kpis = {k.name: k for k in spec.kpis}
    rows = []
    for kpi in sorted(spec.kpis, key=lambda k: k.name):
        carry = target_carry(kpi, kpis)
        for priority, target in enumerate(spec.targets_of(kpi)):
            series = target.series if target.kind == "series" else ((None, target.value),)
            for index, (start, value) in enumerate(series):
                rows.append(
                    [
                        kpi.name,
                        priority,
                        index,
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
    return typed_values(TARGET_COLUMNS, rows, "targets")


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


_PLACEHOLDERS: dict[str, Callable[..., exp.Expr]] = {
    "__period_start__": calendar.period_start,
    "__period_end__": lambda grain, value, week_start: calendar.period_end(grain, value),
    "__last_year_start__": calendar.last_year_start,
    "__first_in_period__": calendar.first_in_period,
}


# rules a template applies more than once, called as __name__(arguments...): the rule's
# SQL with each argument in place of its _name
_TEXT_RULES = {
    "__attainment__": (
        ("direction", "value", "target"),
        "case when _direction = 'higher' then __divide__(_value, _target)"
        " else __divide__(_target, _value) end",
    ),
    # a partial period's value at its end: to date / the share of the total expected by its
    # elapsed day (half the references', half the days'), the days' alone without references
    "__paced__": (
        ("to_date", "reference_to_date", "reference_total", "elapsed_share"),
        "_to_date / case when least(_reference_total, _reference_to_date) > 0"
        " then (_reference_to_date / _reference_total + _elapsed_share) / 2"
        " else _elapsed_share end",
    ),
    "__status__": (
        ("direction", "value", "target", "on_track", "at_risk"),
        """case
            when _value is null or _target is null then null
            when _direction = 'higher' and _value >= _on_track * _target then 'on_track'
            when _direction = 'higher' and _value >= _at_risk * _target then 'at_risk'
            when _direction = 'higher' then 'off_track'
            when _value * _on_track <= _target then 'on_track'
            when _value * _at_risk <= _target then 'at_risk'
            else 'off_track'
        end""",
    ),
}


def _text_rule(names: tuple[str, ...], text: str) -> Callable[..., exp.Expr]:
    def expand(*values: exp.Expr) -> exp.Expr:
        arguments = {f"_{n}": a for n, a in zip(names, values, strict=True)}
        tree = sqlglot.parse_one(text, read=TEMPLATE_DIALECT).transform(
            lambda n: arguments[n.name].copy()
            if isinstance(n, exp.Column) and n.name in arguments
            else n
        )
        return tree.transform(_rule)

    return expand


# the template's rules: the builders' own (one division rule for all generated SQL) and
# the text rules
_RULES: dict[str, Callable[..., exp.Expr]] = {
    "__divide__": divide,
    "__days_between__": days_between,
    **{name: _text_rule(*rule) for name, rule in _TEXT_RULES.items()},
}


def _rule(node: exp.Expr) -> exp.Expr:
    """A rule placeholder expanded with its (expanded) arguments; other nodes unchanged."""
    rule = _RULES.get(str(node.this).lower()) if isinstance(node, exp.Anonymous) else None
    if rule is None:
        return node
    return rule(*(a.transform(_rule) for a in node.expressions))


def _fill(template: exp.Expr, ctes: list[tuple[str, exp.Expr]], week_start: str) -> exp.Expr:
    """Put the generated CTEs in front of the template's and expand its placeholders."""
    template = _calendar(template.transform(_rule), week_start, {})
    generated = [exp.CTE(this=q, alias=exp.TableAlias(this=exp.to_identifier(n))) for n, q in ctes]
    with_ = template.args["with_"]  # every template starts with a WITH
    with_.set("expressions", [*generated, *with_.expressions])
    return template


def _calendar(node: exp.Expr, week_start: str, bound: dict[str, str]) -> exp.Expr:
    """`node` with its calendar placeholders expanded. A grain held in a column becomes one
    CASE branch per grain, inside which that column is the branch's grain (`bound`), so
    nested placeholders of the same grain expand directly instead of branching again."""
    expand = (
        _PLACEHOLDERS.get(str(node.this).lower()) if isinstance(node, exp.Anonymous) else None
    )
    if expand is not None:
        grain, *values = node.expressions
        name = grain.name if isinstance(grain, exp.Literal) else bound.get(grain.sql())
        if name is not None:
            return expand(name, *(_calendar(v, week_start, bound) for v in values), week_start)
        branches = [
            exp.If(
                this=exp.EQ(this=grain.copy(), expression=lit(g)),
                true=_calendar(node.copy(), week_start, {**bound, grain.sql(): g}),
            )
            for g in GRAINS
        ]
        return exp.Case(ifs=branches)
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expr):
            node.set(key, _calendar(value, week_start, bound))
        elif isinstance(value, list):
            node.set(
                key, [_calendar(v, week_start, bound) if isinstance(v, exp.Expr) else v for v in value]
            )
    return node


def distinct_windows(step: Step, plan: Plan) -> exp.Expr:
    """Windows of one distinct-count KPI, recounted from its rows: the template
    kpi_distinct_windows.sql behind the CTEs `entity_days` (day, slice, entity of the KPI's
    rows, from `sightings`: a repeat on one day is never new), `spine` (the KPI's periods
    and slices), `window_definitions`, `counted` (one row: the first day whose
    period-to-date values are counted from rows, NULL for all) and `carried` (the stored
    period-to-date values of the day before it, none on a full build). Every count comes
    from one sort of the sightings (each with the one before it), never from a join of each
    window with its rows."""
    kpi = step.kpi
    incremental = plan.lookback_for(kpi.grains) is not None
    spine = (
        select(*(col(k) for k in KEYS))
        .from_(ref_table(step.values_model), copy=False)
        .where(exp.EQ(this=col("kpi"), expression=lit(kpi.name)), copy=False)
    )
    windows = typed_values(
        WINDOW_COLUMNS[1:], [[w.name, w.grain, w.count] for w in kpi.windows], "windows"
    )
    ctes = [
        ("entity_days", _entity_days(step, incremental)),
        ("spine", spine),
        ("window_definitions", windows),
        *_carried(incremental),
    ]
    query = _fill(_template("kpi_distinct_windows").copy(), ctes, plan.week_start)
    return _recomputed_periods(query, step, plan.week_start) if incremental else query


def _entity_days(step: Step, incremental: bool) -> exp.Expr:
    """The day, slice and entity of each of the KPI's rows, as sightings. Incremental: every
    entity's rows from the first day a trailing window needs; the rows of the entities seen
    on recomputed days from the start of their periods to date (whether they are new
    there); the other entities' values to date are carried."""
    assert step.group is not None
    group, kpi = step.group, step.kpi
    measure = next(m for m in group.measures if m.name == kpi.name)
    assert measure.expr is not None
    slices = {s.label: s for s in group.slices}
    day = exp.cast(col(group.time, group.model), DATE)
    kept: list[exp.Expr] = [
        exp.Not(this=exp.Is(this=col(group.time, group.model), expression=exp.Null())),
        exp.Not(this=exp.Is(this=measure.expr.copy(), expression=exp.Null())),
    ]
    if measure.filter is not None:
        kept.append(measure.filter.copy())
    rows = joined(
        select(
            exp.alias_(day, "day", copy=False),
            *(
                exp.alias_(
                    col(slices[label].column, slices[label].table), slice_alias(name), copy=False
                )
                for name, label in step.dimensions
            ),
            exp.alias_(measure.expr.copy(), "entity", copy=False),
        ).from_(ref_table(group.model, group.model), copy=False),
        group,
    )
    conditions = [c.copy() for c in kept]
    if incremental:
        recent = joined(
            select(measure.expr.copy()).from_(ref_table(group.model, group.model), copy=False),
            group,
            {c.table for e in (measure.expr, *kept) for c in e.find_all(exp.Column)},
        ).where(and_(*(c.copy() for c in kept), since(day.copy())), copy=False)
        conditions += [
            since(day.copy(), "to_date_from"),
            exp.Or(
                this=since(day.copy(), "history_from"),
                expression=exp.In(this=measure.expr.copy(), query=exp.Subquery(this=recent)),
            ),
        ]
    named = [(name, slice_alias(name)) for name, _ in step.dimensions]
    return sightings(rows.where(and_(*conditions), copy=False), named)


def _carried(incremental: bool) -> list[tuple[str, exp.Expr]]:
    """The CTEs `counted` (the first day counted from rows: the first recomputed one, NULL
    on a full build) and `carried` (the stored period-to-date values of the day before)."""
    columns = [
        (c, t)
        for c, t in WINDOW_ROW_COLUMNS
        if c in ("window_name", "dimension", "dimension_value", "window_start", "value")
    ]
    if not incremental:
        counted = select(exp.alias_(exp.cast(exp.null(), DATE), "first_day", copy=False))
        return [("counted", counted), ("carried", typed_values(columns, [], "carried"))]
    counted = select(exp.alias_(col(RECOMPUTE_FROM), "first_day", copy=False))
    carried = (
        select(*(col(c) for c, _ in columns))
        .from_(exp.table_(STORED_WINDOWS, alias="stored"), copy=False)
        .where(
            and_(
                exp.EQ(this=col("grain"), expression=lit("day")),
                exp.EQ(
                    this=col("period_start"),
                    expression=exp.Sub(this=col(RECOMPUTE_FROM), expression=lit(1)),
                ),
            ),
            copy=False,
        )
    )
    return [("counted", counted), ("carried", carried)]


def _recomputed_periods(query: exp.Expr, step: Step, week_start: str) -> exp.Expr:
    """Only the values of periods ending on or after the first recomputed day."""
    with_ = query.args["with_"]
    query.set("with_", None)
    recomputed = (
        select(exp.Star())
        .from_(exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier("windows"))))
        .where(since(col("period_end")), copy=False)
    )
    recomputed.set("with_", with_)
    return with_bounds(recomputed, _bounds(step, week_start))


STORED_WINDOWS = INCREMENTAL_PREFIX + "stored_windows"  # the stored rows (none on a full build)
TO_DATE_GRAINS = ("week", "month", "quarter", "year")
LONGEST_DAYS = {"day": 1, "week": 7, "month": 31, "quarter": 92, "year": 366}


def _bounds(step: Step, week_start: str) -> dict[str, exp.Expr]:
    """The first days of rows an incremental run reads (NULL on a full build):
    history_from, every entity's, from the start of each trailing window ending in the
    period of the first recomputed day, `count - 1` periods before that period's start
    (counted in the longest periods, reading a few days more at worst, which changes
    nothing: an entity's earlier sightings only move where its coverage starts, never past
    that window's start); to_date_from, the recent entities', from the start of the week,
    month, quarter and year holding that day."""
    day = col(RECOMPUTE_FROM)
    to_date = [calendar.period_start(g, day, week_start) for g in TO_DATE_GRAINS]
    trailing = [
        exp.Sub(
            this=calendar.period_start(w.grain, day, week_start),
            expression=lit((w.count - 1) * LONGEST_DAYS[w.grain]),
        )
        for w in step.kpi.windows
    ]
    return {
        "history_from": exp.Least(this=day.copy(), expressions=trailing),
        "to_date_from": exp.Least(this=to_date[0], expressions=to_date[1:]),
    }
