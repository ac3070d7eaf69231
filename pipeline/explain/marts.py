"""`kpi explain`: what drove a KPI's change between two periods, read from the published marts.

The periods and their pairing are the marts': the previous period is the KPI's period
before, last year's is `calendar.last_year_start`. A partial period compared with the
previous one is compared *to date* (`previous_value_to_date`, as the scorecard does) when
the marts hold every number the decomposition needs to date; otherwise with the whole
previous period, and the explanation says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlglot import exp

from pipeline import compiler
from pipeline.errors import Location, NoWarehouse, UserError, did_you_mean, error, has_errors
from pipeline.explain import decompose
from pipeline.explain.decompose import Driver, NotDecomposable, Ratio
from pipeline.project import Project
from pipeline.semantics import calendar, graph
from pipeline.semantics.additivity import ADDITIVE, base_of
from pipeline.spec import expressions
from pipeline.spec.load import load
from pipeline.spec.model import GRAINS, Kpi, Spec
from pipeline.warehouse import sql
from pipeline.warehouse.names import PUBLISHED_SCHEMA, Relation, values_table

VS = ("previous", "last_year")
COLUMNS = (
    "kpi", "label", "format", "unit", "direction", "grain", "period_start", "period_end",
    "dimension", "dimension_value", "value", "numerator", "denominator", "is_partial_period",
    "previous_value_to_date",
)  # fmt: skip
TOTAL = "total"
INPUTS = "inputs"  # the section of a KPI's input KPIs
# how a KPI's value combines over its slices
ADDS_UP, RATIO, DERIVED, DISTINCT, OTHER = "additive", "ratio", "derived", "distinct", "other"


def combination(kpi: Kpi) -> str:
    """How the KPI's value combines over slices: what the decomposition can use."""
    if kpi.kind == "simple":
        agg = kpi.agg or ""
        return (
            ADDS_UP if agg in ADDITIVE
            else RATIO if agg == "average"
            else DISTINCT if agg == "count_distinct"
            else OTHER
        )  # fmt: skip
    if kpi.kind in ("cumulative", "snapshot"):
        return ADDS_UP
    if kpi.kind == "derived":
        return DERIVED
    return RATIO  # ratio, conversion, retention, churn, lifetime: Σ numerator / Σ denominator


@dataclass(frozen=True)
class Section:
    """The change broken down one way: by a dimension's slices, or by input KPIs."""

    by: str
    method: str  # additive | mix_rate | shapley | own_change
    drivers: tuple[Driver, ...]
    note: str = ""

    @property
    def exact(self) -> bool:
        return self.method != "own_change"

    @property
    def total(self) -> float | None:
        if not self.exact:
            return None
        return math.fsum(d.contribution or 0.0 for d in self.drivers)


@dataclass(frozen=True)
class Explanation:
    kpi: str
    label: str
    format: str
    unit: str | None
    direction: str
    grain: str
    vs: str
    period_start: date
    period_end: date
    is_partial: bool
    base_start: date
    base_end: date
    to_date: bool  # the base is the previous period over as many days as the partial one
    value: float
    base_value: float
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def change(self) -> float:
        return self.value - self.base_value


class NoChange(ValueError):
    """Nothing to explain: a value is missing; the message says which."""


# --- the decomposition over rows in memory -----------------------------------------------


class Rows:
    """kpi_values rows of one grain, by (kpi, period_start, dimension, dimension_value)."""

    def __init__(self, rows: Iterable[Mapping[str, Any]]):
        self._slices: dict[tuple[str, date, str], dict[str, Mapping[str, Any]]] = {}
        for r in rows:
            key = (r["kpi"], r["period_start"], r["dimension"])
            self._slices.setdefault(key, {})[r["dimension_value"]] = r

    def total(self, kpi: str, start: date) -> Mapping[str, Any] | None:
        return self._slices.get((kpi, start, TOTAL), {}).get(TOTAL)

    def slices(self, kpi: str, start: date, dimension: str) -> dict[str, Mapping[str, Any]]:
        return dict(self._slices.get((kpi, start, dimension), {}))


def inputs_of(kpi: Kpi, spec: Spec) -> tuple[str, ...]:
    """The input KPIs a ratio or derived KPI is explained by."""
    if kpi.kind in ("ratio", "derived"):
        return graph.dependencies(kpi, spec.config.dialect)
    return ()


def explain_period(
    spec: Spec,
    rows: Rows,
    kpi: Kpi,
    *,
    period: date,
    base: date,
    vs: str = "previous",
    dimensions: Sequence[str] = (),
) -> Explanation:
    """The change of `kpi` from the period starting `base` to the one starting `period`,
    by each of `dimensions` (and by its inputs for ratio and derived KPIs)."""
    now, then = rows.total(kpi.name, period), rows.total(kpi.name, base)
    if now is None or then is None:
        raise NoChange(f"KPI '{kpi.name}' has no period starting {period if now is None else base}")
    how = combination(base_of(kpi, {k.name: k for k in spec.kpis}))
    inputs = inputs_of(kpi, spec)
    tree = _formula_tree(kpi, spec, inputs)
    to_date = (
        vs == "previous"
        and bool(now["is_partial_period"])
        and now["grain"] != "day"
        and _to_date_available(rows, kpi, how, inputs, tree, period, dimensions)
    )
    notes: list[str] = []
    if now["is_partial_period"] and not to_date:
        notes.append(
            f"the period is partial: it is compared with the whole of the {now['grain']} starting {base}"
            + (" (the marts hold no numbers to date for this breakdown)" if vs == "previous" else "")
        )
    sections: list[Section] = []
    if how == DERIVED:
        assert tree is not None
        current, previous = _input_values(rows, inputs, period, base, to_date)
        value = _num(now["value"])
        base_value = decompose.evaluate(tree, previous) if to_date else _num(then["value"])
        if value is None or base_value is None:
            raise NoChange(_no_value(kpi, period if value is None else base))
        sections.append(_shapley_section(tree, current, previous))
    else:
        value = _num(now["value"])
        base_value = _to_date(now) if to_date else _num(then["value"])
        if value is None or base_value is None:
            raise NoChange(_no_value(kpi, period if value is None else base))
        for dimension in dimensions:
            sections.append(
                _slices_section(rows, kpi, how, dimension, period, base, to_date, inputs)
            )
        if tree is not None:
            current, previous = _input_values(rows, inputs, period, base, to_date)
            sections.append(_shapley_section(tree, current, previous))
        if not sections:
            notes.append(f"KPI '{kpi.name}' has no dimensions or inputs to break its change down by")
    return Explanation(
        kpi=kpi.name,
        label=str(now.get("label") or kpi.label),
        format=str(now.get("format") or kpi.format),
        unit=now.get("unit") or kpi.unit,
        direction=str(now.get("direction") or kpi.direction),
        grain=str(now["grain"]),
        vs=vs,
        period_start=period,
        period_end=now["period_end"],
        is_partial=bool(now["is_partial_period"]),
        base_start=base,
        base_end=then["period_end"],
        to_date=to_date,
        value=value,
        base_value=base_value,
        sections=tuple(sections),
        notes=tuple(notes),
    )


def _no_value(kpi: Kpi, start: date) -> str:
    return f"KPI '{kpi.name}' has no value for the period starting {start} (NULL): nothing to explain"


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _to_date(row: Mapping[str, Any] | None) -> float | None:
    return None if row is None else _num(row.get("previous_value_to_date"))


def _formula_tree(kpi: Kpi, spec: Spec, inputs: Sequence[str]) -> exp.Expr | None:
    """The formula over input KPIs a ratio or derived KPI is computed with."""
    if kpi.kind == "derived" and kpi.formula:
        return expressions.parse(kpi.formula, spec.config.dialect, what="formula", row_level=False)
    if kpi.kind == "ratio" and len(inputs) == 2:
        numerator, denominator = inputs
        return exp.Div(this=exp.column(numerator), expression=exp.column(denominator))
    return None


def _to_date_available(
    rows: Rows,
    kpi: Kpi,
    how: str,
    inputs: Sequence[str],
    tree: exp.Expr | None,
    period: date,
    dimensions: Sequence[str],
) -> bool:
    """Whether the marts hold, to date, every number the decomposition reads."""
    if how == DERIVED:
        to_date = {name: _to_date(rows.total(name, period)) for name in inputs}
        if tree is None or None in to_date.values():
            return False
        try:
            return decompose.evaluate(tree, to_date) is not None
        except NotDecomposable:
            return False
    if how == ADDS_UP:
        sources = [kpi.name]
    elif kpi.kind == "ratio":  # its slices' numerators and denominators are its inputs'
        sources = list(inputs)
    else:
        return False
    if _to_date(rows.total(kpi.name, period)) is None:
        return False
    for name in sources:
        wanted = [rows.total(name, period), *(r for d in dimensions for r in rows.slices(name, period, d).values())]
        if any(_to_date(r) is None for r in wanted):
            return False
    return True


def _input_values(
    rows: Rows, inputs: Sequence[str], period: date, base: date, to_date: bool
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """The inputs' totals in the period and in the base (to date, or the base period)."""
    current = {name: _num((rows.total(name, period) or {}).get("value")) for name in inputs}
    if to_date:
        return current, {name: _to_date(rows.total(name, period)) for name in inputs}
    return current, {name: _num((rows.total(name, base) or {}).get("value")) for name in inputs}


def _formula(tree: exp.Expr) -> Any:
    return lambda values: decompose.evaluate(tree, values)


def _shapley_section(
    tree: exp.Expr, current: Mapping[str, float | None], previous: Mapping[str, float | None]
) -> Section:
    missing = sorted(k for k in current if current[k] is None or previous.get(k) is None)
    if missing:
        return _undecomposable(INPUTS, current, previous, f"no value for {', '.join(missing)} in one of the periods")
    now = {k: float(v) for k, v in current.items() if v is not None}
    then = {k: float(v) for k, v in previous.items() if v is not None}
    try:
        drivers = decompose.shapley(_formula(tree), now, then)
    except NotDecomposable as exc:
        return _undecomposable(INPUTS, current, previous, str(exc))
    return Section(
        INPUTS, "shapley", tuple(drivers),
        "each input's Shapley value: its effect on the formula, averaged over every order of moving the inputs",
    )  # fmt: skip


def _undecomposable(
    by: str, current: Mapping[str, float | None], previous: Mapping[str, float | None], why: str
) -> Section:
    return Section(
        by, "own_change", tuple(decompose.own_changes(current, previous)),
        f"not decomposable: {why}; each one's own change is shown and they do not sum to the total change",
    )  # fmt: skip


def _slices_section(
    rows: Rows,
    kpi: Kpi,
    how: str,
    dimension: str,
    period: date,
    base: date,
    to_date: bool,
    inputs: Sequence[str],
) -> Section:
    now_total, then_total = rows.total(kpi.name, period), rows.total(kpi.name, base)
    now, then = rows.slices(kpi.name, period, dimension), rows.slices(kpi.name, base, dimension)
    assert now_total is not None and then_total is not None
    if how in (ADDS_UP, DISTINCT):
        current = {k: _num(r["value"]) for k, r in now.items()}
        total_now = _num(now_total["value"])
        if to_date:
            previous, total_then = {k: _to_date(r) for k, r in now.items()}, _to_date(now_total)
        else:
            previous, total_then = {k: _num(r["value"]) for k, r in then.items()}, _num(then_total["value"])
        if decompose.adds_up(current.values(), total_now) and decompose.adds_up(previous.values(), total_then):
            note = (
                "distinct counts: here no entity is in two slices (the slices' counts add up to "
                "the total in both periods), so each slice's change is its contribution"
                if how == DISTINCT
                else ""
            )
            return Section(dimension, "additive", tuple(decompose.additive(current, previous)), note)
        for side in (current, previous):  # counts and amounts are 0 where a slice has no rows
            for name in current.keys() | previous.keys():
                side.setdefault(name, 0.0)
        why = (
            "a distinct count counts an entity in several slices once in the total"
            if how == DISTINCT
            else f"the slices of {dimension} do not add up to the total"
        )
        return _undecomposable(dimension, current, previous, why)
    if how == RATIO:
        current_ratios = _ratios(now)
        if to_date and kpi.kind == "ratio":
            numerator, denominator = inputs
            nums = rows.slices(numerator, period, dimension)
            dens = rows.slices(denominator, period, dimension)
            previous_ratios = {
                k: Ratio(_to_date(nums.get(k)) or 0.0, _to_date(dens.get(k)) or 0.0)
                for k in nums.keys() | dens.keys()
            }
            totals_then = (_to_date(rows.total(numerator, period)), _to_date(rows.total(denominator, period)))
        else:
            previous_ratios = _ratios(then)
            totals_then = (_num(then_total["numerator"]), _num(then_total["denominator"]))
        totals_now = (_num(now_total["numerator"]), _num(now_total["denominator"]))
        partitions = all(
            decompose.adds_up((getattr(r, part) for r in side.values()), total)
            for side, totals in ((current_ratios, totals_now), (previous_ratios, totals_then))
            for part, total in zip(("numerator", "denominator"), totals, strict=True)
        )
        rates_now = {k: r.rate for k, r in current_ratios.items()}
        rates_then = {k: r.rate for k, r in previous_ratios.items()}
        if not partitions:
            return _undecomposable(
                dimension, rates_now, rates_then,
                f"the slices' numerators and denominators do not add up to the total's (an entity can be in several slices of {dimension})",
            )  # fmt: skip
        try:
            drivers = decompose.mix_rate(current_ratios, previous_ratios)
        except NotDecomposable as exc:
            return _undecomposable(dimension, rates_now, rates_then, str(exc))
        return Section(
            dimension, "mix_rate", tuple(drivers),
            "contribution = mix (the slice's share of the denominator moved) + rate (the slice's own ratio moved)",
        )  # fmt: skip
    current = {k: _num(r["value"]) for k, r in now.items()}
    previous = {k: _num(r["value"]) for k, r in then.items()}
    return _undecomposable(dimension, current, previous, f"a {kpi.agg or kpi.kind} of the whole is not made of its slices'")


def _ratios(slices: Mapping[str, Mapping[str, Any]]) -> dict[str, Ratio]:
    return {
        k: Ratio(_num(r["numerator"]) or 0.0, _num(r["denominator"]) or 0.0) for k, r in slices.items()
    }


# --- periods ------------------------------------------------------------------------------

_FORMS = (
    (re.compile(r"(\d{4})-(\d{2})-(\d{2})"), None),
    (re.compile(r"(\d{4})-W(\d{1,2})", re.IGNORECASE), "week"),
    (re.compile(r"(\d{4})-Q([1-4])", re.IGNORECASE), "quarter"),
    (re.compile(r"(\d{4})-(\d{1,2})"), "month"),
    (re.compile(r"(\d{4})"), "year"),
)


def parse_period(text: str, grain: str | None) -> tuple[str, date]:
    """(grain, a day of the period) from 2026-10-01, 2026-10, 2026-Q3, 2026-W44 or 2026;
    a date is a day unless `grain` says otherwise."""
    for pattern, form in _FORMS:
        match = pattern.fullmatch(text.strip())
        if match is None:
            continue
        year, *rest = (int(g) for g in match.groups())
        if grain is not None and form is not None and grain != form:
            raise _user_error(f"period '{text}' is a {form}, not a {grain}: drop --grain or give a date")
        try:
            if form is None:
                day = date(year, rest[0], rest[1])
            elif form == "week":
                day = date.fromisocalendar(year, rest[0], 1)
            elif form == "quarter":
                day = date(year, 3 * rest[0] - 2, 1)
            elif form == "month":
                day = date(year, rest[0], 1)
            else:
                day = date(year, 1, 1)
        except ValueError as exc:
            raise _user_error(f"period '{text}': {exc}") from None
        return grain or form or "day", day
    raise _user_error(
        f"cannot read period '{text}': use a date (2026-10-01), 2026-10, 2026-Q3, 2026-W44 or 2026"
    )


def _user_error(message: str) -> UserError:
    return UserError([error(message, Location("kpi explain"))])


# --- reading the marts --------------------------------------------------------------------


def load_spec(project: Project) -> Spec:
    spec, issues = load(compiler.read_metric_files(project))
    if has_errors(issues):
        raise UserError(issues)
    return spec


def explain(
    project: Project,
    name: str,
    *,
    period: str | None = None,
    grain: str | None = None,
    vs: str = "previous",
    by: Sequence[str] = (),
    schema: str = PUBLISHED_SCHEMA,
) -> Explanation:
    """`kpi explain`: read the published marts and decompose the KPI's change."""
    import duckdb

    if grain is not None and grain not in GRAINS:
        raise _user_error(f"unknown grain '{grain}'{did_you_mean(grain, GRAINS)}; use one of {', '.join(GRAINS)}")
    if vs not in VS:
        raise _user_error(f"--vs '{vs}': use previous or last_year")
    spec = load_spec(project)
    if not project.warehouse.is_file():
        raise NoWarehouse(project.warehouse)
    grain, day = parse_period(period, grain) if period else (grain or "month", None)
    table = values_table(schema)
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        sql.execute(con, sql.setting("enable_progress_bar", False))
        known = [r[0] for r in sql.execute(con, sql.distinct(table, "kpi")).fetchall()]
        kpi = spec.kpi(name)
        if name not in known or kpi is None:
            raise _user_error(f"unknown KPI '{name}'{did_you_mean(name, known)}")
        grains = [
            r[0]
            for r in sql.execute(con, sql.distinct(table, "grain", sql.is_param("kpi")), [name]).fetchall()
        ]
        if grain not in grains:
            tracked = ", ".join(g for g in GRAINS if g in grains)
            raise _user_error(f"KPI '{name}' is not tracked by {grain} (grains: {tracked})")
        totals = exp.and_(
            sql.is_param("kpi"), sql.is_param("grain"),
            sql.column("dimension").eq(exp.Literal.string(TOTAL)),
        )
        periods = sql.execute(
            con, sql.ordered(table, ["period_start", "period_end"], ["period_start"], totals),
            [name, grain],
        ).fetchall()
        current = _holding(periods, day, name, grain)
        base = _base(con, periods, current, vs, grain, spec.config.week_start, name)
        dimensions = _dimensions(con, table, kpi, by)
        wanted = [name, *inputs_of(kpi, spec)]
        where = exp.and_(
            sql.is_param("grain"), sql.in_params("period_start", 2), sql.in_params("kpi", len(wanted))
        )
        result = sql.execute(con, sql.select(table, COLUMNS, where), [grain, current, base, *wanted])
        names = [d[0] for d in result.description]
        rows = Rows(dict(zip(names, row, strict=True)) for row in result.fetchall())
    try:
        return explain_period(spec, rows, kpi, period=current, base=base, vs=vs, dimensions=dimensions)
    except NoChange as exc:
        raise _user_error(str(exc)) from None


def _holding(periods: Sequence[tuple[date, date]], day: date | None, name: str, grain: str) -> date:
    if not periods:
        raise _user_error(f"KPI '{name}' has no {grain} periods in the marts")
    if day is None:
        return periods[-1][0]
    for start, end in periods:
        if start <= day <= end:
            return start
    raise _user_error(
        f"KPI '{name}' has no data for the {grain} holding {day} "
        f"(its {grain}s run from {periods[0][0]} to {periods[-1][0]})"
    )


def _base(
    con: Any,
    periods: Sequence[tuple[date, date]],
    current: date,
    vs: str,
    grain: str,
    week_start: str,
    name: str,
) -> date:
    starts = [start for start, _ in periods]
    if vs == "previous":
        index = starts.index(current)
        if index == 0:
            raise _user_error(f"KPI '{name}' has no {grain} before {current} to compare with")
        return starts[index - 1]
    day = exp.cast(exp.Literal.string(current.isoformat()), exp.DataType.build("date"))
    last_year = sql.execute(con, exp.select(calendar.last_year_start(grain, day, week_start))).fetchone()[0]
    if last_year is None:
        raise _user_error(f"the {grain} starting {current} has no same period last year")
    if last_year not in starts:
        raise _user_error(f"KPI '{name}' has no data for the same {grain} last year ({last_year})")
    return last_year


def _dimensions(con: Any, table: Relation, kpi: Kpi, by: Sequence[str]) -> list[str]:
    query = sql.distinct(table, "dimension", sql.is_param("kpi"))
    published = {r[0] for r in sql.execute(con, query, [kpi.name]).fetchall()} - {TOTAL}
    if by and kpi.kind == "derived":
        raise _user_error(
            f"KPI '{kpi.name}' is derived: it is explained by its inputs "
            f"({', '.join(graph.dependencies(kpi, 'postgres') or ())}), not by slices; explain an input --by a dimension"
        )
    for dimension in by:
        if dimension not in published:
            choices = ", ".join(sorted(published)) or "none"
            raise _user_error(
                f"KPI '{kpi.name}' is not sliced by '{dimension}'{did_you_mean(dimension, published)} (dimensions: {choices})"
            )
    if by:
        return list(dict.fromkeys(by))
    if kpi.kind == "derived":
        return []
    declared = [d.name for d in kpi.dimensions if d.name in published]
    return declared + sorted(published - set(declared))


def current_explanations(
    warehouse: Path, spec: Spec, *, schema: str = PUBLISHED_SCHEMA
) -> dict[tuple[str, str], Explanation]:
    """Per (KPI, grain): the latest period's change against the previous period, by the
    KPI's first dimension (and its inputs): the scorecard's drivers."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        sql.execute(con, sql.setting("enable_progress_bar", False))
        result = sql.execute(con, sql.latest_two(values_table(schema), COLUMNS))
        names = [d[0] for d in result.description]
        records = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    by_grain: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_grain.setdefault(record["grain"], []).append(record)
    out: dict[tuple[str, str], Explanation] = {}
    for grain, grain_records in by_grain.items():
        rows = Rows(grain_records)
        starts: dict[str, set[date]] = {}
        sliced: dict[str, set[str]] = {}
        for record in grain_records:
            if record["dimension"] == TOTAL:
                starts.setdefault(record["kpi"], set()).add(record["period_start"])
            else:
                sliced.setdefault(record["kpi"], set()).add(record["dimension"])
        for name, kpi_starts in starts.items():
            kpi = spec.kpi(name)
            if kpi is None or len(kpi_starts) < 2:
                continue
            base, period = sorted(kpi_starts)[-2:]
            first = next((d.name for d in kpi.dimensions if d.name in sliced.get(name, set())), None)
            dimensions = [first] if first and kpi.kind != "derived" else []
            try:
                out[(name, grain)] = explain_period(
                    spec, rows, kpi, period=period, base=base, dimensions=dimensions
                )
            except NoChange:
                continue
    return out
