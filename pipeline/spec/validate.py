"""Validate: every rule over a loaded Spec and the dbt models' catalog; all issues collected.

Nothing here touches a warehouse: models and columns come from the YAML beside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlglot import exp

from pipeline import engines
from pipeline.catalog import Catalog, ModelInfo
from pipeline.errors import Issue, did_you_mean, error
from pipeline.semantics import calendar, graph
from pipeline.semantics.additivity import additivity, base_of, target_carry
from pipeline.semantics.marts import RESERVED_KPI_NAMES
from pipeline.spec import expressions, kinds
from pipeline.spec.model import (
    Dimension,
    Kpi,
    Lifetime,
    Offset,
    Relationship,
    Snapshot,
    Spec,
    Target,
)

RATIO_INPUT_AGGS = ("sum", "count", "count_distinct")
RESERVED_DIMENSIONS = ("total",)

Relations = Mapping[str, Mapping[str, Relationship]]  # from model → to model → relationship


def validate(spec: Spec, catalog: Catalog) -> list[Issue]:
    issues: list[Issue] = []
    relations = _relationships(spec, catalog, issues)
    for mart in spec.config.publish:  # a mart published beside the KPI marts
        if catalog.get(mart) is None and mart not in catalog.unlisted and spec.config.location:
            issues.append(error(f"config.publish: {catalog.unknown(mart)}", spec.config.location))
    for name in spec.config.engines:
        if name not in engines.ENGINES and spec.config.location:
            known = ", ".join(engines.ENGINES)
            issues.append(
                error(
                    f"config.engines: unknown engine '{name}' (known: {known})"
                    f"{did_you_mean(name, engines.ENGINES)}",
                    spec.config.location,
                )
            )
    names = _unique_names(spec, issues)
    for kpi in spec.kpis:
        where = f"kpi '{kpi.name}': "
        if kpi.kind == "simple":
            _simple(kpi, spec, catalog, relations, where, issues)
        elif kpi.kind in ("ratio", "derived"):
            _composite(kpi, spec, names, where, issues)
        else:
            issues += kinds.validate(kpi, spec, catalog, relations, names)
        _dimension_names(kpi, where, issues)
        if kpi.category not in spec.config.categories:
            choices = ", ".join(spec.config.categories)
            issues.append(
                error(
                    f"{where}category '{kpi.category}' is not one of config.categories:"
                    f" {choices}{did_you_mean(kpi.category, spec.config.categories)}",
                    kpi.at("category"),
                )
            )
        _name(kpi, spec.config.dialect, where, issues)
    deps = graph.dependency_map(spec)
    for cycle in graph.find_cycles(deps):
        kpi = names[cycle[0]]
        field = {"derived": "formula", "offset": "offset"}.get(kpi.kind, "ratio")
        issues.append(
            error(f"kpi '{kpi.name}': depends on itself: {' → '.join(cycle)}", kpi.at(field))
        )
    _composite_scope(spec, names, deps, issues)
    _tracking(spec, names, catalog, issues)
    return issues


def _name(kpi: Kpi, dialect: str, where: str, issues: list[Issue]) -> None:
    """A KPI's name is an unquoted column of the marts."""
    if kpi.name in RESERVED_KPI_NAMES:
        why = f"the KPI marts have a column of that name ({', '.join(sorted(RESERVED_KPI_NAMES))})"
    elif expressions.is_keyword(kpi.name, dialect):
        why = "it is a reserved SQL keyword"
    else:
        return
    issues.append(
        error(f"{where}name '{kpi.name}' is reserved: {why}; choose another", kpi.at("name"))
    )


def _tracking(spec: Spec, names: Mapping[str, Kpi], catalog: Catalog, issues: list[Issue]) -> None:
    """Targets, windows and status thresholds."""
    for target in spec.targets:
        if target.kpi not in names and not spec.may_define(target.kpi or ""):
            hint = did_you_mean(target.kpi or "", names)
            issues.append(error(f"target for unknown kpi '{target.kpi}'{hint}", target.location))
    for kpi in spec.kpis:
        where = f"kpi '{kpi.name}': "
        carry = target_carry(kpi, names)
        never_negative = _never_negative(kpi, names, catalog, spec.config.dialect)
        for target in spec.targets_of(kpi):
            _target(kpi, target, carry, _described(kpi, names), spec.config.week_start, where, issues)
            values = [target.value] if target.value is not None else [v for _, v in target.series]
            negative = next((v for v in values if v < 0), None)
            if never_negative and negative is not None:
                issues.append(
                    error(
                        f"{where}target {negative:g} is negative, but the KPI cannot be: it is {never_negative}",
                        target.location,
                    )
                )
        _overlapping_growth(spec.targets_of(kpi), where, issues)
        kind = additivity(kpi, names)
        for window in kpi.windows:
            if isinstance(kpi.params, Offset):
                issues.append(
                    error(
                        f"{where}an offset KPI has no windows: its rows are its base's of other"
                        " periods, so its days do not add up to its months (March 29-31 a month"
                        f" before are all February's last day); give the windows to '{kpi.params.of}'",
                        kpi.at("windows"),
                    )
                )
                break
            if kind == "none" and not (kpi.kind == "simple" and kpi.agg == "count_distinct"):
                issues.append(
                    error(
                        f"{where}trailing windows need a sum, count, count_distinct, average or a ratio of sums and counts"
                        f" ({_described(kpi, names)} does not add up over periods)",
                        kpi.at("windows"),
                    )
                )
            elif window.grain not in kpi.grains:
                issues.append(
                    error(
                        f"{where}window '{window.name}' needs the KPI tracked by {window.grain}",
                        kpi.at("windows"),
                    )
                )
        thresholds = spec.thresholds_of(kpi)
        if thresholds.at_risk >= thresholds.on_track:
            issues.append(
                error(f"{where}status threshold at_risk must be below on_track", kpi.at("status"))
            )


def _described(kpi: Kpi, names: Mapping[str, Kpi]) -> str:
    """'a sum KPI', 'a ratio KPI', 'an offset of a median KPI': what messages call a KPI."""
    if kpi.kind == "offset":
        base = base_of(kpi, names)
        return "an offset KPI" if base is kpi else f"an offset of {_described(base, names)}"
    return f"a {kpi.agg or kpi.kind} KPI"


def _target(
    kpi: Kpi,
    target: Target,
    carry: str,
    described: str,
    week_start: str,
    where: str,
    issues: list[Issue],
) -> None:
    given = [
        k
        for k in ("value", "series", "growth")
        if (getattr(target, k) if k != "series" else target.series) not in (None, ())
    ]
    if len(given) != 1:
        issues.append(
            error(f"{where}a target has exactly one of value, series or growth", target.location)
        )
        return
    if target.kind != "growth" and target.per is None and carry != "level":
        issues.append(
            error(
                f"{where}a {target.kind} target of {described} needs 'per': the grain its numbers are for",
                target.location,
            )
        )
    if target.per not in (None, *kpi.grains):
        issues.append(
            error(
                f"{where}target per '{target.per}': the KPI is not tracked by {target.per}"
                f" (grains: {', '.join(kpi.grains)})",
                target.location,
            )
        )
    if target.where and target.where[0] not in {d.name for d in kpi.dimensions}:
        dims = {d.name for d in kpi.dimensions}
        hint = did_you_mean(target.where[0], dims)
        issues.append(
            error(
                f"{where}target for slice '{target.where[0]}', not a dimension of the KPI{hint}",
                target.location,
            )
        )
    bounds = []
    for label, text in (("from", target.valid_from), ("to", target.valid_to)):
        if text is not None:
            parsed = _date(text)
            if parsed is None:
                issues.append(
                    error(
                        f"{where}target '{label}' must be a date (YYYY-MM-DD), not '{text}'",
                        target.location,
                    )
                )
            bounds.append(parsed)
    if len(bounds) == 2 and None not in bounds and bounds[0] > bounds[1]:  # type: ignore[operator]
        issues.append(error(f"{where}target 'from' is after its 'to'", target.location))
    for key, _ in target.series:
        day = _date(f"{key}-01" if len(key) == 7 else key)
        if day is None:
            issues.append(
                error(
                    f"{where}series key '{key}' must be a period's first day (YYYY-MM-DD, or YYYY-MM for a month)",
                    target.location,
                )
            )
        elif target.per and not calendar.is_period_start(target.per, day, week_start):
            issues.append(
                error(f"{where}series key '{key}' does not start a {target.per}", target.location)
            )


def _overlapping_growth(targets: tuple[Target, ...], where: str, issues: list[Issue]) -> None:
    """Only the first growth target covering a period applies: a second one over the same
    periods and slice would never apply there."""
    growth = [t for t in targets if t.kind == "growth"]
    for i, later in enumerate(growth):
        for earlier in growth[:i]:
            if earlier.where == later.where and _overlap(earlier, later):
                issues.append(
                    error(
                        f"{where}two growth targets cover the same periods (the first, at"
                        f" {earlier.location}, applies); give them 'from' and 'to' dates that do not overlap",
                        later.location,
                    )
                )
                break


def _overlap(a: Target, b: Target) -> bool:
    spans = [_span(t) for t in (a, b)]
    if spans[0] is None or spans[1] is None:
        return False  # a bad date: reported on its own
    return spans[0][0] <= spans[1][1] and spans[1][0] <= spans[0][1]


def _span(target: Target) -> tuple[date, date] | None:
    start = _date(target.valid_from) if target.valid_from else date.min
    end = _date(target.valid_to) if target.valid_to else date.max
    return (start, end) if start and end else None


def _never_negative(
    kpi: Kpi,
    names: Mapping[str, Kpi],
    catalog: Catalog,
    dialect: str,
    seen: frozenset[str] = frozenset(),
) -> str | None:
    """Why the KPI is never negative (a count, a rate…), or None when that is not known."""
    if kpi.kind == "simple" and kpi.agg in ("count", "count_distinct"):
        return "a count" if kpi.agg == "count" else "a distinct count"
    if kpi.kind in ("conversion", "retention", "churn"):
        return f"a {kpi.kind} rate"
    if isinstance(kpi.params, Snapshot) and kpi.params.count is not None:
        return "a count"
    if kpi.kind == "offset":
        base = base_of(kpi, names)
        why = base is not kpi and _never_negative(base, names, catalog, dialect, seen)
        return f"{why}, shifted in time" if why else None
    if kpi.kind in ("ratio", "cumulative"):
        inputs = [names.get(n) for n in kpi.inputs]
        if kpi.name in seen or not all(
            other and _never_negative(other, names, catalog, dialect, seen | {kpi.name})
            for other in inputs
        ):
            return None
        return (
            "a ratio of non-negative KPIs"
            if kpi.kind == "ratio"
            else "a running total of a non-negative KPI"
        )
    if kpi.kind == "simple":
        agg, model, text = kpi.agg, catalog.get(str(kpi.model)), kpi.expr
    elif isinstance(kpi.params, Snapshot | Lifetime):  # these sum inside their block
        agg, model, text = "sum", catalog.get(kpi.params.model), kpi.params.sum
    else:
        return None
    if model is None or not isinstance(text, str):
        return None
    try:
        tree = expressions.parse(text, dialect, what="expression")
    except expressions.ExpressionError:
        return None
    column = tree.name if isinstance(tree, exp.Column) and tree.table in ("", model.name) else ""
    if column in model.non_negative_columns:
        return f"the {agg} of {model.name}.{column} (its accepted_range test keeps it >= 0)"
    return None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _unique_names(spec: Spec, issues: list[Issue]) -> dict[str, Kpi]:
    names: dict[str, Kpi] = {}
    for kpi in spec.kpis:
        if kpi.name in names:
            first = names[kpi.name].at("name")
            issues.append(error(f"kpi '{kpi.name}' is already defined at {first}", kpi.at("name")))
        else:
            names[kpi.name] = kpi
    return names


def _relationships(
    spec: Spec, catalog: Catalog, issues: list[Issue]
) -> dict[str, dict[str, Relationship]]:
    relations: dict[str, dict[str, Relationship]] = {}
    for rel in spec.relationships:
        where = f"relationship {rel.from_model} → {rel.to_model}: "
        if rel.from_model == rel.to_model:
            issues.append(
                error(
                    f"{where}a model cannot relate to itself: its own columns need no"
                    " relationship, and a join to its own rows would repeat them",
                    rel.location,
                )
            )
            continue
        source, target = catalog.get(rel.from_model), catalog.get(rel.to_model)
        ok = True
        for name, info in ((rel.from_model, source), (rel.to_model, target)):
            if info is None:
                issues.append(
                    error(
                        f"{where}{catalog.unknown(name)}",
                        rel.location,
                    )
                )
                ok = False
        if source is None or target is None:
            continue
        for from_col, to_col in rel.on:
            for info, col in ((source, from_col), (target, to_col)):
                if col not in info.columns:
                    hint = did_you_mean(col, info.columns)
                    issues.append(
                        error(f"{where}unknown column '{col}' in {info.name}{hint}", rel.location)
                    )
                    ok = False
        to_columns = {to for _, to in rel.on}
        if ok and not to_columns & target.unique_columns:
            keys = ", ".join(sorted(to_columns))
            issues.append(
                error(
                    f"{where}the join could fan out: {target.name}.{keys} is not proven unique"
                    f" (add a 'unique' test on it in {target.location.file})",
                    rel.location,
                )
            )
            ok = False
        if rel.to_model in relations.get(rel.from_model, {}):
            first = relations[rel.from_model][rel.to_model].location
            issues.append(error(f"{where}already declared at {first}", rel.location))
        elif ok:
            relations.setdefault(rel.from_model, {})[rel.to_model] = rel
    return relations


def resolve_column(
    reference: str, model: ModelInfo, catalog: Catalog, relations: Relations, spec: Spec
) -> str | None:
    """None when `column` or `related_model.column` exists for a KPI on `model`, else why not
    (None too when the relationship may be declared in a file that did not parse)."""
    table, _, column = reference.rpartition(".")
    if table in ("", model.name):
        target = model
    elif table in relations.get(model.name, {}):
        related = catalog.get(table)
        if related is None:
            return catalog.unknown(table)
        target = related
    elif spec.unparsed:
        return None
    else:
        related_names = sorted(relations.get(model.name, {}))
        listed = f" (related models: {', '.join(related_names)})" if related_names else ""
        return f"no relationship from {model.name} to '{table}'{listed}; declare one under relationships:"
    if column not in target.columns:
        return f"unknown column '{column}' in {target.name}{did_you_mean(column, target.columns)}"
    return None


def _simple(
    kpi: Kpi, spec: Spec, catalog: Catalog, relations: Relations, where: str, issues: list[Issue]
) -> None:
    for field in ("model", "time"):
        if getattr(kpi, field) is None:
            issues.append(error(f"{where}a {kpi.agg} KPI needs '{field}'", kpi.location))
    if kpi.model is None:
        return
    model = catalog.get(kpi.model)
    if model is None:
        issues.append(error(f"{where}{catalog.unknown(kpi.model)}", kpi.at("model")))
        return
    if kpi.time is not None:
        if kpi.time not in model.columns:
            hint = did_you_mean(kpi.time, model.columns)
            issues.append(
                error(f"{where}unknown column '{kpi.time}' in {model.name}{hint}", kpi.at("time"))
            )
        elif model.columns[kpi.time] and not model.is_temporal(kpi.time):
            issues.append(
                error(
                    f"{where}time column '{kpi.time}' is {model.columns[kpi.time]}, not a date or timestamp",
                    kpi.at("time"),
                )
            )
    if not (kpi.agg == "count" and kpi.expr == "*"):
        _row_expression(kpi, "expr", kpi.expr, spec, model, catalog, relations, where, issues)
    _row_expression(kpi, "filter", kpi.filter, spec, model, catalog, relations, where, issues)
    for dim in kpi.dimensions:
        problem = resolve_column(dim.column, model, catalog, relations, spec)
        if problem:
            issues.append(error(f"{where}dimension '{dim.name}': {problem}", dim.location))


def _row_expression(
    kpi: Kpi,
    field: str,
    text: str | None,
    spec: Spec,
    model: ModelInfo,
    catalog: Catalog,
    relations: Relations,
    where: str,
    issues: list[Issue],
) -> None:
    if text is None:
        return
    what = "filter" if field == "filter" else f"{kpi.agg} expression"
    dialect = spec.config.dialect
    try:
        tree = expressions.parse(text, dialect, what=what)
    except expressions.ExpressionError as exc:
        issues.append(error(f"{where}{exc}", expressions.locate(kpi.at(field), text, exc.word)))
        return
    for engine, why in engines.problems(tree, spec.config.engines):
        issues.append(error(f"{where}{what} cannot run on {engine}: {why}", kpi.at(field)))
    resolved = True
    for column in expressions.columns(tree):
        reference = f"{column.table}.{column.name}" if column.table else column.name
        problem = resolve_column(reference, model, catalog, relations, spec)
        if problem:
            resolved = False
            issues.append(
                error(
                    f"{where}{what}: {problem}",
                    expressions.locate(kpi.at(field), text, column.name),
                )
            )
    if field == "filter" and resolved:

        def column_type(column: exp.Column) -> tuple[str | None, bool]:
            table = catalog.get(column.table) if column.table else model
            assert table is not None  # resolved above
            return table.columns[column.name], table.is_boolean(column.name)

        if wrong := expressions.filter_problem(tree, column_type, dialect):
            issues.append(
                error(
                    f"{where}{wrong[0]}",
                    expressions.locate(kpi.at(field), text, wrong[1]),
                )
            )


def _composite(
    kpi: Kpi, spec: Spec, names: Mapping[str, Kpi], where: str, issues: list[Issue]
) -> None:
    for field in ("model", "time", "filter"):
        if getattr(kpi, field) is not None:
            issues.append(
                error(
                    f"{where}a {kpi.kind} KPI takes no '{field}'; set it on the KPIs it is computed from",
                    kpi.at(field),
                )
            )
    if kpi.kind == "ratio":
        for field in ("numerator", "denominator"):
            name = getattr(kpi, field)
            other = names.get(name)
            if other is None and spec.may_define(name):
                continue  # its own errors are reported
            if other is None:
                hint = did_you_mean(name, names)
                issues.append(error(f"{where}{field} '{name}' is not a KPI{hint}", kpi.at(field)))
            elif (base := base_of(other, names)).kind != "simple" or base.agg not in RATIO_INPUT_AGGS:
                issues.append(
                    error(
                        f"{where}{field} '{name}' is {_described(other, names)}; a ratio reads sum, count or"
                        " count_distinct KPIs (use 'derived' to combine other kinds)",
                        kpi.at(field),
                    )
                )
        return
    assert kpi.formula is not None
    try:
        tree = expressions.parse(kpi.formula, spec.config.dialect, what="formula", row_level=False)
    except expressions.ExpressionError as exc:
        at = expressions.locate(kpi.at("formula"), kpi.formula, exc.word)
        issues.append(error(f"{where}{exc}", at))
        return
    for engine, why in engines.problems(tree, spec.config.engines):
        issues.append(error(f"{where}formula cannot run on {engine}: {why}", kpi.at("formula")))
    if agg := tree.find(exp.AggFunc):
        issues.append(
            error(
                f"{where}formula must not aggregate ({agg.sql()}): it combines KPIs already aggregated",
                kpi.at("formula"),
            )
        )
    for column in expressions.columns(tree):
        if column.table:
            issues.append(
                error(
                    f"{where}formula refers to '{column.sql()}'; name KPIs, not columns",
                    kpi.at("formula"),
                )
            )
        elif column.name not in names and not spec.may_define(column.name):
            hint = did_you_mean(column.name, names)
            issues.append(
                error(
                    f"{where}formula: '{column.name}' is not a KPI{hint}",
                    expressions.locate(kpi.at("formula"), kpi.formula, column.name),
                )
            )


def _dimension_names(kpi: Kpi, where: str, issues: list[Issue]) -> None:
    seen: dict[str, Dimension] = {}
    for dim in kpi.dimensions:
        if dim.name in RESERVED_DIMENSIONS:
            issues.append(
                error(
                    f"{where}'{dim.name}' is reserved for the unsliced row; rename the dimension",
                    dim.location,
                )
            )
        elif dim.name in seen:
            issues.append(
                error(
                    f"{where}two dimensions are named '{dim.name}'; give one a name: {{name, column}}",
                    dim.location,
                )
            )
        seen[dim.name] = dim


def _composite_scope(
    spec: Spec, names: Mapping[str, Kpi], deps: Mapping[str, tuple[str, ...]], issues: list[Issue]
) -> None:
    """A ratio or derived KPI is tracked only at grains and dimensions all its inputs declare."""
    for kpi in spec.kpis:
        for name in dict.fromkeys(deps.get(kpi.name, ())):
            other = names.get(name)
            if other is None:
                continue
            role = (
                "its input"
                if kpi.kind in ("cumulative", "offset")
                else {kpi.numerator: "its numerator", kpi.denominator: "its denominator"}.get(
                    name, "an input of its formula"
                )
            )
            missing = [g for g in kpi.grains if g not in other.grains]
            if missing:
                issues.append(
                    error(
                        f"kpi '{kpi.name}': '{name}' ({role}) is not tracked by {', '.join(missing)};"
                        f" add the grain there or list fewer grains here",
                        kpi.at("grains"),
                    )
                )
            declared = {d.name for d in other.dimensions}
            for dim in kpi.dimensions:
                if dim.name not in declared:
                    issues.append(
                        error(
                            f"kpi '{kpi.name}': dimension '{dim.name}' is not a dimension of '{name}' ({role}); add it there",
                            dim.location,
                        )
                    )
