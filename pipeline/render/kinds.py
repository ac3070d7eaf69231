"""SQL of the entity- and time-aware KPI kinds: one values model per KPI, with the columns
of the long table (see semantics.marts.VALUE_COLUMNS). Semantics are documented in docs/kinds.md.

Every kind follows the same frame: a `source` scan of its model (one row per model row,
days as DATE), `labelled` copies of it for the unsliced total and each dimension, the
data's `bounds`, a dense `days` series, the `periods` of each declared grain, the observed
`slices` and their product `spine`, which the kind's own CTEs are left-joined to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlglot import exp

from pipeline.plan.models import ACTIVITY_KEYS, NodeKind
from pipeline.plan.planner import TOTAL, Plan
from pipeline.plan.steps import Step
from pipeline.render import markers
from pipeline.render.builders import (
    DATE,
    VARCHAR,
    alias,
    and_,
    coalesce,
    col,
    divide,
    double,
    eq,
    in_,
    is_null,
    join,
    lit,
    not_null,
    on_keys,
    plus,
    ref_table,
    running_sum,
    select,
    union_all,
    with_,
    zero,
)
from pipeline.render.sql import KEYS, NULL_VALUE, days_from_bounds
from pipeline.semantics.calendar import offset_start, parse_offset, period_end, period_start
from pipeline.semantics.marts import SLICE_KEYS
from pipeline.spec import expressions
from pipeline.spec.model import (
    Activity,
    Conversion,
    Cumulative,
    KindParams,
    Lifetime,
    Offset,
    Rows,
    Snapshot,
)

EXACT_AMOUNT = exp.DataType.build("decimal(38, 6)")
P = TypeVar("P", bound=KindParams)
Ctes = list[tuple[str, exp.Expr]]


def values(step: Step, plan: Plan) -> exp.Expr:
    build = {
        "cumulative": _cumulative,
        "lifetime": _lifetime,
        "conversion": _conversion,
        "retention": _activity,
        "churn": _activity,
        "snapshot": _snapshot,
        "offset": _offset,
    }[step.kpi.kind]
    return build(step, plan)


# --- parts shared by the kinds ---------------------------------------------------------


def _params(step: Step, kind: type[P]) -> P:
    """The step's KPI's block, of the kind the caller renders."""
    params = step.kpi.params
    assert isinstance(params, kind)
    return params


def _parse(text: str, plan: Plan, what: str) -> exp.Expr:
    return expressions.parse(text, plan.dialect, what=what)


def _kept(rows: Rows, plan: Plan) -> exp.Expr:
    """TRUE for rows the filter keeps (a NULL filter result rejects the row)."""
    if rows.filter is None:
        return exp.true()
    return coalesce(_parse(rows.filter, plan, "filter"), exp.false())


def _day(column: str) -> exp.Expr:
    return exp.cast(col(column), DATE)


def _source(model: str, columns: dict[str, exp.Expr], present: str) -> exp.Select:
    """One row per model row whose `present` column is set; dimension columns as dim__<name>."""
    return (
        select(*(alias(e, name) for name, e in columns.items()))
        .from_(ref_table(model, model), copy=False)
        .where(not_null(col(present)), copy=False)
    )


def _dimension_columns(step: Step) -> dict[str, exp.Expr]:
    return {f"dim__{d.name}": col(d.column_name) for d in step.kpi.dimensions}


def _labelled(step: Step, columns: Sequence[str]) -> exp.Expr:
    """The source once for the total and once per dimension, with the slice as two columns."""
    branches = [select(alias(lit(TOTAL), "dimension"), alias(lit(TOTAL), "dimension_value"))]
    for dim in step.kpi.dimensions:
        label = coalesce(exp.cast(col(f"dim__{dim.name}"), VARCHAR), lit(NULL_VALUE))
        branches.append(
            select(alias(lit(dim.name), "dimension"), alias(label, "dimension_value"))
        )
    for branch in branches:
        branch.select(*(col(c) for c in columns), copy=False).from_("source", copy=False)
    return union_all(branches)


def _bounds(first: exp.Expr, last: exp.Expr, table: str = "source") -> exp.Select:
    return select(
        alias(exp.Min(this=first), "first_day"), alias(exp.Max(this=last), "last_day")
    ).from_(table, copy=False)


def _frame(step: Step, plan: Plan, *, previous: bool = False) -> Ctes:
    """days, periods (with `previous_start` when asked), slices and spine, from `bounds`."""
    days = days_from_bounds()
    branches = []
    for grain in step.kpi.grains:
        start = period_start(grain, col("date_day"), plan.week_start)
        columns = [
            alias(lit(grain), "grain"),
            alias(start, "period_start"),
            alias(period_end(grain, start.copy()), "period_end"),
        ]
        if previous:
            before = exp.Sub(this=start.copy(), expression=lit(1))
            columns.append(alias(period_start(grain, before, plan.week_start), "previous_start"))
        branches.append(select(*columns).distinct(copy=False).from_("days", copy=False))
    slices = select(*(col(k) for k in SLICE_KEYS)).distinct(copy=False).from_("labelled")
    spine = join(
        select(
            *(col(k, "periods") for k in ("grain", "period_start", "period_end")),
            *(col(k, "slices") for k in SLICE_KEYS),
        ).from_("periods", copy=False),
        exp.table_("slices"),
        kind="CROSS",
    )
    return [
        ("days", days),
        ("periods", union_all(branches)),
        ("slices", slices),
        ("spine", spine),
    ]


def _grain_branches(
    step: Step,
    plan: Plan,
    day: str,
    table: str,
    group: Sequence[str],
    aggregates: dict[str, exp.Expr],
    where: exp.Expr | None = None,
) -> exp.Expr:
    """For each grain: `aggregates` grouped by the period holding `day` and `group` columns."""
    branches = []
    for grain in step.kpi.grains:
        start = period_start(grain, col(day), plan.week_start)
        query = (
            select(
                alias(lit(grain), "grain"),
                alias(start, "period_start"),
                *(col(c) for c in group),
                *(alias(a.copy(), name) for name, a in aggregates.items()),
            )
            .from_(table, copy=False)
            .group_by(start.copy(), *(col(c) for c in group), copy=False)
        )
        branches.append(query.where(where.copy(), copy=False) if where is not None else query)
    return union_all(branches)


def _final(
    step: Step,
    ctes: Ctes,
    joined: Sequence[tuple[str, exp.Expr]],
    value: exp.Expr,
    numerator: exp.Expr,
    denominator: exp.Expr,
) -> exp.Expr:
    """The values model: the spine with the kind's CTEs left-joined to it."""
    query = select(
        alias(lit(step.kpi.name), "kpi"),
        *(col(k, "spine") for k in KEYS),
        alias(double(value), "value"),
        alias(double(numerator), "numerator"),
        alias(double(denominator), "denominator"),
    ).from_("spine", copy=False)
    for table, on in joined:
        query = join(query, exp.table_(table), side="LEFT", on=on)
    return with_(query, ctes)


# --- cumulative -------------------------------------------------------------------------


def _cumulative(step: Step, plan: Plan) -> exp.Expr:
    """The input's values per period, summed over the periods of the same grain up to this
    one: the input is additive, so this is the sum of its days up to the period's end."""
    running = running_sum(
        col("value"), [col(c) for c in ("grain", *SLICE_KEYS)], col("period_start")
    )
    return _rows_of(
        _params(step, Cumulative).of,
        step,
        plan,
        alias(lit(step.kpi.name), "kpi"),
        *(col(k) for k in KEYS),
        alias(double(running), "value"),
        alias(double(exp.null()), "numerator"),
        alias(double(exp.null()), "denominator"),
    )


def _rows_of(name: str, step: Step, plan: Plan, *columns: exp.Expr) -> exp.Select:
    """`columns` of the rows of KPI `name` in its values model, at `step`'s grains and
    slices (the KPI `step` computes from them)."""
    dimensions = [TOTAL, *(d for d, _ in step.dimensions)]
    return (
        select(*columns)
        .from_(ref_table(plan.step(name).values_model), copy=False)
        .where(
            and_(
                eq(col("kpi"), lit(name)),
                in_("grain", step.kpi.grains),
                in_("dimension", dimensions),
            ),
            copy=False,
        )
    )


# --- offset -----------------------------------------------------------------------------

MEASURED = ("value", "numerator", "denominator")  # what an offset KPI takes from its base's row


def _offset(step: Step, plan: Plan) -> exp.Expr:
    """Each of the input's rows with the value, numerator and denominator of its row of the
    shifted period (same grain and slice; NULL when that period is outside the data)."""
    name, by = _params(step, Offset).of, _params(step, Offset).by
    parsed = parse_offset(by)
    assert parsed is not None  # validated
    base = _rows_of(name, step, plan, *(col(k) for k in KEYS), *(col(c) for c in MEASURED))
    by_start: dict[str, tuple[exp.Expr, list[str]]] = {}  # grains sharing one shift, once
    for grain in step.kpi.grains:
        start = offset_start(grain, col("period_start"), *parsed, plan.week_start)
        by_start.setdefault(start.sql(), (start, []))[1].append(grain)
    cases = list(by_start.values())
    shifted = (
        cases[0][0]
        if len(cases) == 1
        else exp.Case(ifs=[exp.If(this=in_("grain", grains), true=start) for start, grains in cases])
    )
    periods = select(*(col(k) for k in KEYS), alias(shifted, "shifted_start")).from_(
        "base", copy=False
    )
    on = and_(
        on_keys("earlier", "periods", ("grain", *SLICE_KEYS)),
        eq(col("period_start", "earlier"), col("shifted_start", "periods")),
    )
    query = select(
        alias(lit(step.kpi.name), "kpi"),
        *(col(k, "periods") for k in KEYS),
        *(alias(double(col(c, "earlier")), c) for c in MEASURED),
    ).from_(exp.table_("periods"), copy=False)
    query = join(query, exp.table_("base", alias="earlier"), side="LEFT", on=on)
    return with_(query, [("base", base), ("periods", periods)])


# --- lifetime value ---------------------------------------------------------------------


def entities(steps: Sequence[Step], plan: Plan, *, incremental: bool = False) -> exp.Expr:
    """One row per entity with kept rows: its first and last day and, for each KPI with a
    horizon, its amount over [first day, first day + horizon) (`within__<kpi>`, a double).
    That amount is the entity's total less its rows past the horizon: only those are
    grouped again after the join with the first days.

    `incremental`: only the entities with a row on or after the first recomputed day
    (`markers.recompute_from`; kept or not) or a stored last day there (a row since moved or
    gone, read from the stored table), each recomputed from all its rows. One left without kept
    rows comes out with no first day, for the model's post-hook to delete.
    """
    params = _params(steps[0], Lifetime)
    horizons: dict[str, int] = {}
    columns = {
        "date_day": _day(params.time),
        "entity": col(params.entity),
        "kept": _kept(params, plan),
    }
    for step in steps:
        lifetime = _params(step, Lifetime)
        if lifetime.horizon_days is not None:
            horizons[step.kpi.name] = lifetime.horizon_days
            columns[f"amount__{step.kpi.name}"] = _parse(lifetime.sum, plan, "sum expression")
    source = _source(params.model, columns, params.time)
    ctes: Ctes = []
    if incremental:
        ctes.append(("recomputed", _recomputed_entities(params)))
        recomputed = select(col("entity")).from_("recomputed", copy=False)
        source.where(
            exp.In(this=col(params.entity), query=exp.Subquery(this=recomputed)), copy=False
        )
    ctes += [("source", source), *_firsts([f"amount__{name}" for name in horizons])]
    keys = "recomputed" if incremental else "firsts"
    query = select(
        col("entity", keys),
        col("first_day", "firsts"),
        col("last_day", "firsts"),
        *(alias(_within(name), f"within__{name}") for name in horizons),
    ).from_(keys, copy=False)
    if incremental:
        query = join(query, exp.table_("firsts"), side="LEFT", on=on_keys(keys, "firsts", ["entity"]))
    if horizons:
        ctes.append(("late", _late(horizons)))
        query = join(query, exp.table_("late"), side="LEFT", on=on_keys(keys, "late", ["entity"]))
    return with_(query, ctes)


def _recomputed_entities(params: Lifetime) -> exp.Expr:
    """The entities with a row on or after the first recomputed day, or stored with a last
    day there."""
    day = markers.recompute_from()
    with_rows = (
        select(alias(col(params.entity), "entity"))
        .from_(ref_table(params.model, params.model), copy=False)
        .where(
            and_(exp.GTE(this=_day(params.time), expression=day), not_null(col(params.entity))),
            copy=False,
        )
    )
    stored = (
        select(col("entity"))
        .from_(exp.Table(this=markers.this()), copy=False)
        .where(exp.GTE(this=col("last_day"), expression=day.copy()), copy=False)
    )
    return exp.union(with_rows, stored, distinct=True)


def _firsts(amounts: Sequence[str]) -> Ctes:
    """rows (the kept rows of entities) and firsts (each entity's first and last day, and
    its total of each amount)."""
    rows = (
        select(col("date_day"), col("entity"), *(col(a) for a in amounts))
        .from_("source", copy=False)
        .where(and_(col("kept"), not_null(col("entity"))), copy=False)
    )
    firsts = (
        select(
            col("entity"),
            alias(exp.Min(this=col("date_day")), "first_day"),
            alias(exp.Max(this=col("date_day")), "last_day"),
            *(alias(exp.Sum(this=col(a)), a) for a in amounts),
        )
        .from_("rows", copy=False)
        .group_by(col("entity"), copy=False)
    )
    return [("rows", rows), ("firsts", firsts)]


def _within(name: str) -> exp.Expr:
    """An entity's amount within KPI `name`'s horizon: its total less its late rows."""
    return double(
        exp.Sub(
            this=zero(col(f"amount__{name}", "firsts")),
            expression=zero(col(f"amount__{name}", "late")),
        )
    )


def _late(horizons: dict[str, int]) -> exp.Expr:
    """Per entity, the amounts of its rows past each KPI's horizon: the rows past the
    shortest horizon, grouped once."""
    shortest = min(horizons.values())

    def past(name: str) -> exp.Expr:  # the row's amount when past the KPI's horizon
        amount = col(f"amount__{name}", "rows")
        if horizons[name] == shortest:
            return amount
        horizon_end = plus(col("first_day", "firsts"), horizons[name])
        beyond = exp.GTE(this=col("date_day", "rows"), expression=horizon_end)
        return exp.Case(ifs=[exp.If(this=beyond, true=amount)])

    late = select(
        col("entity", "rows"),
        *(alias(exp.Sum(this=past(name)), f"amount__{name}") for name in horizons),
    ).from_("rows", copy=False)
    return join(
        late,
        exp.table_("firsts"),
        kind="INNER",
        on=and_(
            eq(col("entity", "rows"), col("entity", "firsts")),
            exp.GTE(
                this=col("date_day", "rows"),
                expression=plus(col("first_day", "firsts"), shortest),
            ),
        ),
    ).group_by(col("entity", "rows"), copy=False)


def _lifetime(step: Step, plan: Plan) -> exp.Expr:
    """The data's bounds from the KPI's rows; the entities' first days (and amounts within
    the horizon) from its entities model (`entities` above)."""
    params = _params(step, Lifetime)
    horizon = params.horizon_days
    columns = {"date_day": _day(params.time)}
    if horizon is None:  # life to date also sums the rows by day
        columns["amount"] = _parse(params.sum, plan, "sum expression")
        columns["kept"] = and_(_kept(params, plan), not_null(col(params.entity)))
    ctes: Ctes = [
        ("source", _source(params.model, columns, params.time)),
        ("labelled", _labelled(step, ["date_day"])),
        ("bounds", _bounds(col("date_day"), col("date_day"))),
        *_frame(step, plan),
    ]
    entities = ref_table(plan.model_of(step, NodeKind.ENTITIES), "entities")
    if horizon is None:
        return _life_to_date(step, ctes, entities)
    return _cohorts(step, plan, ctes, entities, horizon)


def _life_to_date(step: Step, ctes: Ctes, entities: exp.Table) -> exp.Expr:
    """Running totals per day of the amount and of entities seen, read at each period's
    last day (or the data's last day, for the period still running)."""
    amounts = (
        select(col("date_day"), alias(exp.Sum(this=col("amount")), "amount"))
        .from_("source", copy=False)
        .where(col("kept"), copy=False)
        .group_by(col("date_day"), copy=False)
    )
    newcomers = (
        select(alias(col("first_day"), "date_day"), alias(exp.Count(this=exp.Star()), "entities"))
        .from_(entities, copy=False)
        .group_by(col("first_day"), copy=False)
    )
    running = select(
        col("date_day", "days"),
        alias(
            running_sum(zero(col("amount", "amounts")), (), col("date_day", "days")), "amount"
        ),
        alias(
            running_sum(zero(col("entities", "newcomers")), (), col("date_day", "days")),
            "entities",
        ),
    ).from_("days", copy=False)
    running = join(
        running, exp.table_("amounts"), side="LEFT", on=on_keys("days", "amounts", ["date_day"])
    )
    running = join(
        running, exp.table_("newcomers"), side="LEFT", on=on_keys("days", "newcomers", ["date_day"])
    )
    ctes += [("amounts", amounts), ("newcomers", newcomers), ("running", running)]
    read_on = exp.Least(this=col("period_end", "spine"), expressions=[col("last_day", "bounds")])
    return _final(
        step,
        ctes,
        [
            ("bounds", exp.true()),
            ("running", eq(col("date_day", "running"), read_on)),
        ],
        divide(double(col("amount", "running")), col("entities", "running")),
        col("amount", "running"),
        col("entities", "running"),
    )


def _cohorts(step: Step, plan: Plan, ctes: Ctes, entities: exp.Table, horizon: int) -> exp.Expr:
    """Entities by the period of their first row; each one's amount over [first day,
    first day + horizon); NULL until the horizon of the period's last entity has elapsed.
    The entities' amounts (doubles) add up as decimals to the micro-unit: a sum that does
    not depend on the order of the rows, so every run gives the same digits."""
    amount = exp.cast(col(f"within__{step.kpi.name}"), EXACT_AMOUNT)
    within = select(col("first_day"), alias(amount, "amount")).from_(entities, copy=False)
    cohorts = _grain_branches(
        step,
        plan,
        "first_day",
        "within",
        (),
        {"amount": exp.Sum(this=col("amount")), "entities": exp.Count(this=exp.Star())},
    )
    ctes += [("within", within), ("cohorts", cohorts)]
    elapsed = exp.LTE(
        this=plus(col("period_end", "spine"), horizon - 1), expression=col("last_day", "bounds")
    )
    return _final(
        step,
        ctes,
        [("bounds", exp.true()), ("cohorts", on_keys("spine", "cohorts", ["grain", "period_start"]))],
        exp.Case(
            ifs=[
                exp.If(
                    this=elapsed,
                    true=divide(double(col("amount", "cohorts")), col("entities", "cohorts")),
                )
            ]
        ),
        exp.Case(ifs=[exp.If(this=elapsed.copy(), true=zero(col("amount", "cohorts")))]),
        zero(col("entities", "cohorts")),
    )


def _conversion(step: Step, plan: Plan) -> exp.Expr:
    """Base rows of the period, and those of them followed by an event of the same entity
    on the base's day or up to `within_days` days later."""
    conversion = _params(step, Conversion)
    base, event, within = conversion.base, conversion.event, conversion.within_days
    source = _source(
        base.model,
        {
            "date_day": _day(base.time),
            "entity": col(base.entity),
            "kept": _kept(base, plan),
            **_dimension_columns(step),
        },
        base.time,
    )
    events = (
        select(alias(col(event.entity), "entity"), alias(_day(event.time), "date_day"))
        .distinct(copy=False)
        .from_(ref_table(event.model, event.model), copy=False)
        .where(
            and_(
                not_null(col(event.time)),
                not_null(col(event.entity)),
                _kept(event, plan),
            ),
            copy=False,
        )
    )
    converted = (
        select(col("entity", "source"), col("date_day", "source"))
        .distinct(copy=False)
        .from_("source", copy=False)
        .where(col("kept", "source"), copy=False)
    )
    converted = join(
        converted,
        exp.table_("events"),
        kind="INNER",
        on=and_(
            eq(col("entity", "events"), col("entity", "source")),
            exp.GTE(this=col("date_day", "events"), expression=col("date_day", "source")),
            exp.LTE(
                this=col("date_day", "events"), expression=plus(col("date_day", "source"), within)
            ),
        ),
    )
    flagged = select(
        *(col(c, "labelled") for c in ("date_day", *SLICE_KEYS)),
        alias(col("entity", "converted"), "converted_entity"),
    ).from_("labelled", copy=False)
    flagged = join(
        flagged,
        exp.table_("converted"),
        side="LEFT",
        on=on_keys("labelled", "converted", ["entity", "date_day"]),
    ).where(col("kept", "labelled"), copy=False)
    counts = _grain_branches(
        step,
        plan,
        "date_day",
        "flagged",
        SLICE_KEYS,
        {
            "base_rows": exp.Count(this=exp.Star()),
            "converted_rows": exp.Count(this=col("converted_entity")),
        },
    )
    ctes: Ctes = [
        ("source", source),
        ("labelled", _labelled(step, ["date_day", "entity", "kept"])),
        ("bounds", _bounds(col("date_day"), col("date_day"))),
        *_frame(step, plan),
        ("events", events),
        ("converted", converted),
        ("flagged", flagged),
        ("counts", counts),
    ]
    return _final(
        step,
        ctes,
        [("counts", on_keys("spine", "counts", ["grain", "period_start", *SLICE_KEYS]))],
        divide(double(col("converted_rows", "counts")), col("base_rows", "counts")),
        zero(col("converted_rows", "counts")),
        zero(col("base_rows", "counts")),
    )


# --- retention and churn ----------------------------------------------------------------


def _activity_source(step: Step, plan: Plan, params: Activity | Snapshot) -> Ctes:
    """source and labelled rows of an activity or snapshot block, and the data's bounds:
    rows at `time`, or intervals from `start` to `end` (NULL end: still running)."""
    extra: dict[str, exp.Expr] = {}
    if isinstance(params, Activity):
        extra["entity"] = col(params.entity)
    else:
        extra["amount"] = _amount(params, plan)
    columns = {**extra, "kept": _kept(params, plan), **_dimension_columns(step)}
    if params.time is not None:
        source = _source(params.model, {"date_day": _day(params.time), **columns}, params.time)
        bounds = _bounds(col("date_day"), col("date_day"))
        carried = ["date_day", *extra, "kept"]
    else:
        assert params.start is not None and params.end is not None  # validated
        source = _source(
            params.model,
            {"start_day": _day(params.start), "end_day": _day(params.end), **columns},
            params.start,
        )
        last = exp.Greatest(
            this=col("start_day"), expressions=[coalesce(col("end_day"), col("start_day"))]
        )
        bounds = _bounds(col("start_day"), last)
        carried = ["start_day", "end_day", *extra, "kept"]
    return [("source", source), ("labelled", _labelled(step, carried)), ("bounds", bounds)]


def _amount(snapshot: Snapshot, plan: Plan) -> exp.Expr:
    """What a row adds to a level: its sum expression, or 1 when counted."""
    if snapshot.sum is not None:
        return _parse(snapshot.sum, plan, "sum expression")
    assert snapshot.count is not None  # validated: a sum or a count
    if snapshot.count == "*":
        return lit(1)
    counted = _parse(snapshot.count, plan, "count expression")
    return exp.Case(ifs=[exp.If(this=not_null(counted), true=lit(1))], default=lit(0))


def _stored_activity(step: Step, plan: Plan, *, incremental: bool) -> exp.Select:
    """The stored rows a run keeps: none on a full build, those of `_kept_activity` on a
    daily run."""
    none = select(exp.Star()).from_("sightings", copy=False).where(exp.false(), copy=False)
    rows = (
        markers.choice(_kept_activity(step, plan), none, "kept")
        if incremental
        else exp.Subquery(this=none, alias=exp.TableAlias(this=exp.to_identifier("kept")))
    )
    return select(*(col(c) for c in (*ACTIVITY_KEYS, "first_day"))).from_(rows, copy=False)


def _kept_activity(step: Step, plan: Plan) -> exp.Select:
    """The stored rows a daily run keeps (read from the stored table): those first seen
    before the first recomputed day (the later ones were deleted), of the entities seen on
    the recomputed days (a semi-join probing the stored rows, rather than hash tables of
    them all; 25M rows at 10M orders) and, at each grain, of the periods from the one
    before the period holding that day, which decide what is new and what was active before."""
    day = markers.recompute_from()
    seen = select(col("entity")).from_("sightings", copy=False)
    periods = exp.GTE(
        this=col("period_start"),
        expression=exp.Case(
            ifs=[
                exp.If(
                    this=eq(col("grain"), lit(grain)),
                    true=period_start(
                        grain,
                        exp.Sub(
                            this=period_start(grain, day.copy(), plan.week_start),
                            expression=lit(1),
                        ),
                        plan.week_start,
                    ),
                )
                for grain in step.kpi.grains
            ]
        ),
    )
    return (
        select(exp.Star())
        .from_(exp.Table(this=markers.this()), copy=False)
        .where(
            and_(
                exp.LT(this=col("first_day"), expression=day.copy()),
                exp.In(this=col("entity"), query=exp.Subquery(this=seen)),
                periods,
            ),
            copy=False,
        )
    )


def activity(step: Step, plan: Plan, *, incremental: bool = False) -> exp.Expr:
    """One row per grain, period, slice and entity active in that period: the first day it
    was (`first_day`) and whether it was active in the period before (`was_active_before`).

    Kept by first day, so that a daily run reads only the rows of the recomputed days: it
    deletes the stored rows whose first day is recomputed (a pre-hook), then appends the
    entities first seen in their period on those days (an entity seen earlier in the period
    stays as stored). An entity's `was_active_before` cannot change once stored: a period
    whose previous one holds a recomputed day starts after that day, so all its rows are
    recomputed (`incremental`: the query of such a model).
    """
    params = _params(step, Activity)
    assert params.time is not None  # activity models are of rows at a time
    ctes = _activity_source(step, plan, params)[:2]  # source, labelled
    source = ctes[0][1]
    assert isinstance(source, exp.Select)
    if incremental:  # the rows of recomputed days
        source.where(markers.recomputed_days(params.time), copy=False)
    branches = []
    for grain in step.kpi.grains:
        start = period_start(grain, col("date_day"), plan.week_start)
        before = exp.Sub(this=start.copy(), expression=lit(1))
        branches.append(
            select(
                alias(lit(grain), "grain"),
                alias(start, "period_start"),
                alias(period_start(grain, before, plan.week_start), "previous_start"),
                *(col(c) for c in (*SLICE_KEYS, "entity")),
                alias(exp.Min(this=col("date_day")), "first_day"),
            )
            .from_("labelled", copy=False)
            .where(and_(col("kept"), not_null(col("entity"))), copy=False)
            .group_by(start.copy(), *(col(c) for c in (*SLICE_KEYS, "entity")), copy=False)
        )
    stored = _stored_activity(step, plan, incremental=incremental)
    first_seen = join(
        select(
            *(col(c, "sightings") for c in ("previous_start", *ACTIVITY_KEYS, "first_day"))
        ).from_("sightings", copy=False),
        exp.table_("stored"),
        side="LEFT",
        on=on_keys("sightings", "stored", ACTIVITY_KEYS),
    ).where(is_null(col("entity", "stored")), copy=False)
    active = union_all(
        [
            select(*(col(c) for c in ACTIVITY_KEYS)).from_("stored", copy=False),
            select(*(col(c) for c in ACTIVITY_KEYS)).from_("first_seen", copy=False),
        ]
    )
    query = join(
        select(
            *(col(c, "first_seen") for c in (*ACTIVITY_KEYS, "first_day")),
            alias(not_null(col("entity", "previous")), "was_active_before"),
        ).from_("first_seen", copy=False),
        exp.table_("active", alias="previous"),
        side="LEFT",
        on=and_(
            eq(col("grain", "previous"), col("grain", "first_seen")),
            eq(col("period_start", "previous"), col("previous_start", "first_seen")),
            *(eq(col(c, "previous"), col(c, "first_seen")) for c in (*SLICE_KEYS, "entity")),
        ),
    )
    ctes += [
        ("sightings", union_all(branches)),
        ("stored", stored),
        ("first_seen", first_seen),
        ("active", active),
    ]
    return with_(query, ctes)


def _activity(step: Step, plan: Plan) -> exp.Expr:
    """Entities active in the previous period of the grain, and how many of them are active
    in this one (retention) or not (churn)."""
    params = _params(step, Activity)
    ctes = _activity_source(step, plan, params)
    ctes += _frame(step, plan, previous=True)
    ctes += _activity_counts(step, plan) if params.time is not None else _interval_counts(step)
    previous = zero(col("previous_entities", "counts"))
    retained = zero(col("retained_entities", "counts"))
    numerator = (
        retained if step.kpi.kind == "retention" else exp.Sub(this=previous, expression=retained)
    )
    return _final(
        step,
        ctes,
        [("counts", on_keys("spine", "counts", ["grain", "period_start", *SLICE_KEYS]))],
        divide(double(numerator.copy()), previous.copy()),
        numerator,
        previous,
    )


def _activity_counts(step: Step, plan: Plan) -> Ctes:
    """counts from the KPI's activity model: the entities of the previous period, and those
    of this period that were active in it."""
    group = [col(c) for c in ("grain", "period_start", *SLICE_KEYS)]
    per_period = (
        select(
            *group,
            alias(exp.Count(this=exp.Star()), "entities"),
            alias(
                exp.Sum(
                    this=exp.Case(
                        ifs=[exp.If(this=col("was_active_before"), true=lit(1))], default=lit(0)
                    )
                ),
                "retained",
            ),
        )
        .from_(ref_table(plan.model_of(step, NodeKind.ACTIVITY), "activity"), copy=False)
        .group_by(*(c.copy() for c in group), copy=False)
    )
    counts = select(
        col("grain", "periods"),
        col("period_start", "periods"),
        *(col(c, "earlier") for c in SLICE_KEYS),
        alias(col("entities", "earlier"), "previous_entities"),
        alias(coalesce(col("retained", "later"), lit(0)), "retained_entities"),
    ).from_("periods", copy=False)
    counts = join(
        counts,
        exp.table_("per_period", alias="earlier"),
        kind="INNER",
        on=and_(
            eq(col("grain", "earlier"), col("grain", "periods")),
            eq(col("period_start", "earlier"), col("previous_start", "periods")),
        ),
    )
    counts = join(
        counts,
        exp.table_("per_period", alias="later"),
        side="LEFT",
        on=and_(
            eq(col("grain", "later"), col("grain", "periods")),
            eq(col("period_start", "later"), col("period_start", "periods")),
            *(eq(col(c, "later"), col(c, "earlier")) for c in SLICE_KEYS),
        ),
    )
    return [("per_period", per_period), ("counts", counts)]


def _interval_counts(step: Step) -> Ctes:
    """active (entities whose interval overlaps each period) and counts."""
    # an interval [start, end] overlaps the period (ignored when it ends before it starts)
    overlaps = and_(
        exp.LTE(this=col("start_day", "labelled"), expression=col("period_end", "periods")),
        exp.Or(
            this=is_null(col("end_day", "labelled")),
            expression=and_(
                exp.GTE(this=col("end_day", "labelled"), expression=col("period_start", "periods")),
                exp.GTE(this=col("end_day", "labelled"), expression=col("start_day", "labelled")),
            ),
        ),
    )
    active = join(
        select(
            col("grain", "periods"),
            col("period_start", "periods"),
            *(col(c, "labelled") for c in (*SLICE_KEYS, "entity")),
        )
        .distinct(copy=False)
        .from_("labelled", copy=False),
        exp.table_("periods"),
        kind="INNER",
        on=overlaps,
    ).where(and_(col("kept", "labelled"), not_null(col("entity", "labelled"))), copy=False)
    counts = (
        select(
            col("grain", "periods"),
            col("period_start", "periods"),
            *(col(c, "earlier") for c in SLICE_KEYS),
            alias(exp.Count(this=exp.Star()), "previous_entities"),
            alias(exp.Count(this=col("entity", "later")), "retained_entities"),
        )
        .from_("periods", copy=False)
        .group_by(
            col("grain", "periods"),
            col("period_start", "periods"),
            *(col(c, "earlier") for c in SLICE_KEYS),
            copy=False,
        )
    )
    counts = join(
        counts,
        exp.table_("active", alias="earlier"),
        kind="INNER",
        on=and_(
            eq(col("grain", "earlier"), col("grain", "periods")),
            eq(col("period_start", "earlier"), col("previous_start", "periods")),
        ),
    )
    counts = join(
        counts,
        exp.table_("active", alias="later"),
        side="LEFT",
        on=and_(
            eq(col("grain", "later"), col("grain", "periods")),
            eq(col("period_start", "later"), col("period_start", "periods")),
            *(eq(col(c, "later"), col(c, "earlier")) for c in (*SLICE_KEYS, "entity")),
        ),
    )
    return [("active", active), ("counts", counts)]


# --- snapshot ---------------------------------------------------------------------------


def _snapshot(step: Step, plan: Plan) -> exp.Expr:
    """A daily level per slice, then each period's level on its last day with data (or the
    average of its days' levels)."""
    params = _params(step, Snapshot)
    ctes = _activity_source(step, plan, params)
    ctes += _frame(step, plan)
    kept_amount = exp.Case(ifs=[exp.If(this=col("kept"), true=col("amount"))])
    if params.time is not None:
        ctes += _levels_of_rows(kept_amount)
    else:
        ctes += _levels_of_intervals(kept_amount)
    if params.take == "average":
        return _average_level(step, plan, ctes)
    snapshot_days = "data_days" if params.time is not None else "days"
    return _last_level(step, plan, ctes, snapshot_days)


def _levels_of_rows(kept_amount: exp.Expr) -> Ctes:
    """data_days, sums and levels: days with rows are the snapshot days; a slice without
    rows that day is at 0."""
    data_days = select(col("date_day")).distinct(copy=False).from_("source", copy=False)
    sums = (
        select(
            *(col(c) for c in ("date_day", *SLICE_KEYS)),
            alias(exp.Sum(this=kept_amount), "level"),
        )
        .from_("labelled", copy=False)
        .group_by(*(col(c) for c in ("date_day", *SLICE_KEYS)), copy=False)
    )
    levels = _each_day_and_slice("data_days", "sums", zero(col("level", "sums")))
    return [("data_days", data_days), ("sums", sums), ("levels", levels)]


def _levels_of_intervals(kept_amount: exp.Expr) -> Ctes:
    """changes and levels: an interval adds its amount on its start day and takes it back
    the day after its end; a day's level is the running sum of the changes."""
    ended = exp.GTE(this=col("end_day"), expression=col("start_day"))
    valid = exp.Or(
        this=is_null(col("end_day")),
        expression=exp.GTE(this=col("end_day"), expression=col("start_day")),
    )
    starts = (
        select(
            alias(col("start_day"), "date_day"),
            *(col(c) for c in SLICE_KEYS),
            alias(kept_amount, "delta"),
        )
        .from_("labelled", copy=False)
        .where(valid, copy=False)
    )
    ends = (
        select(
            alias(plus(col("end_day"), 1), "date_day"),
            *(col(c) for c in SLICE_KEYS),
            alias(exp.Neg(this=kept_amount.copy()), "delta"),
        )
        .from_("labelled", copy=False)
        .where(ended, copy=False)
    )
    deltas = exp.Subquery(
        this=union_all([starts, ends]), alias=exp.TableAlias(this=exp.to_identifier("deltas"))
    )
    changes = (
        select(
            *(col(c) for c in ("date_day", *SLICE_KEYS)),
            alias(exp.Sum(this=col("delta")), "delta"),
        )
        .from_(deltas, copy=False)
        .group_by(*(col(c) for c in ("date_day", *SLICE_KEYS)), copy=False)
    )
    level = running_sum(
        zero(col("delta", "changes")),
        [col(c, "slices") for c in SLICE_KEYS],
        col("date_day", "days"),
    )
    levels = _each_day_and_slice("days", "changes", level)
    return [("changes", changes), ("levels", levels)]


def _each_day_and_slice(days: str, rows: str, level: exp.Expr) -> exp.Select:
    """`level` on every day of `days` for every slice, from the day's `rows` of the slice."""
    levels = join(
        select(
            col("date_day", days),
            *(col(c, "slices") for c in SLICE_KEYS),
            alias(level, "level"),
        ).from_(days, copy=False),
        exp.table_("slices"),
        kind="CROSS",
    )
    return join(
        levels,
        exp.table_(rows),
        side="LEFT",
        on=and_(
            eq(col("date_day", rows), col("date_day", days)),
            *(eq(col(c, rows), col(c, "slices")) for c in SLICE_KEYS),
        ),
    )


def _average_level(step: Step, plan: Plan, ctes: Ctes) -> exp.Expr:
    """Each period's average daily level: Σ levels / days, per slice."""
    averages = _grain_branches(
        step,
        plan,
        "date_day",
        "levels",
        SLICE_KEYS,
        {"total": exp.Sum(this=col("level")), "days": exp.Count(this=exp.Star())},
    )
    return _final(
        step,
        [*ctes, ("averages", averages)],
        [("averages", on_keys("spine", "averages", ["grain", "period_start", *SLICE_KEYS]))],
        divide(double(col("total", "averages")), col("days", "averages")),
        col("total", "averages"),
        col("days", "averages"),
    )


def _last_level(step: Step, plan: Plan, ctes: Ctes, snapshot_days: str) -> exp.Expr:
    """Each period's level on its last snapshot day (a day of `snapshot_days`)."""
    last_days = _grain_branches(
        step, plan, "date_day", snapshot_days, (), {"last_day": exp.Max(this=col("date_day"))}
    )
    slice_on = [eq(col(c, "levels"), col(c, "spine")) for c in SLICE_KEYS]
    return _final(
        step,
        [*ctes, ("last_days", last_days)],
        [
            ("last_days", on_keys("spine", "last_days", ["grain", "period_start"])),
            (
                "levels",
                and_(eq(col("date_day", "levels"), col("last_day", "last_days")), *slice_on),
            ),
        ],
        col("level", "levels"),
        exp.null(),
        exp.null(),
    )
