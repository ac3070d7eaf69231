"""SQL shapes for each plan node, built as sqlglot trees (the one place deciding them).

The small builders and the placeholders they use are in render/builders.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from pipeline.plan.measures import Measure, first_seen_column
from pipeline.plan.models import ROW_KEYS
from pipeline.plan.planner import TOTAL, Plan
from pipeline.plan.steps import MeasureGroup, Slice, Step
from pipeline.render.builders import (
    BIGINT,
    BOOLEAN,
    DATE,
    DOUBLE,
    INCREMENTAL_PREFIX,
    INTEGER,
    RECOMPUTE_FROM,
    THIS,
    TIMESTAMP,
    VARCHAR,
    and_,
    coalesce,
    col,
    divide,
    double,
    eq,
    in_,
    join,
    lit,
    materialized,
    on_keys,
    ref_table,
    select,
    union_all,
    with_,
)
from pipeline.semantics.additivity import additivity
from pipeline.semantics.calendar import first_in_period, period_end, period_start
from pipeline.semantics.marts import VALUE_COLUMNS, WIDE_KEYS
from pipeline.spec import expressions
from pipeline.spec.model import Kpi, Spec

KEYS = ("grain", "period_start", "period_end", "dimension", "dimension_value")
NULL_VALUE = "(null)"  # a NULL dimension value, spelled so it can be a key
BOUND_PREFIX = "__bound__"
# the rows of a distinct windows model (kpi_windows__<kpi>)
WINDOW_ROW_COLUMNS = (
    ("window_name", VARCHAR),
    ("grain", VARCHAR),
    ("period_start", DATE),
    ("period_end", DATE),
    ("window_start", DATE),
    ("dimension", VARCHAR),
    ("dimension_value", VARCHAR),
    ("value", DOUBLE),
)


def _grouping(column: str) -> exp.Expr:
    return exp.EQ(this=exp.Grouping(expressions=[col(column)]), expression=lit(0))


def joined(query: exp.Select, group: MeasureGroup, models: set[str] | None = None) -> exp.Select:
    """The group's model left-joined to the models its dimensions and filters read
    (`models`: only those; all by default)."""
    for other in group.joins:
        if models is None or other.model in models:
            on = and_(*(eq(col(a, group.model), col(b, other.model)) for a, b in other.on))
            query = join(query, ref_table(other.model, other.model), side="LEFT", on=on)
    return query


def slice_alias(label: str) -> str:
    return "dim__" + label.replace(".", "__")


def _input_alias(measure: Measure) -> str:
    return f"in__{measure.name}"


def measure_group(
    group: MeasureGroup, week_start: str, lookback_days: int | None = None
) -> exp.Expr:
    """One scan of the model: day partials for measures that roll up, every grain for the rest
    (holistic measures such as medians, one aggregate per grain over rows read once).

    A distinct count's day partials are, for each coarser grain, the entities first seen in
    their period that day: an entity's sightings (distinct day, slice, entity) sorted once,
    each with the one before it (see `first_seen`).

    With `lookback_days` the model is incremental (see `incremental_blocks`): a run over a
    stored table recomputes the days from its last day minus the lookback, and the coarser
    periods holding them, from those periods' rows only (measures roll up from the stored
    day partials; distinct counts read, before the recomputed days, only the sightings of
    the entities seen again; holistic ones read the coarser periods' rows in a second,
    narrow scan); without it the query recomputes everything.
    """
    q = _MeasureQuery(group, week_start, incremental=lookback_days is not None)
    # day rows with every day partial; a distinct count's first sightings are joined to
    # the day aggregates
    day_aggregates = "day_aggregates" if q.distinct else "grouped"
    source = q.scan(group.measures, [])
    if q.incremental:
        source = source.where(since(q.day.copy()), copy=False)
    non_distinct = [m for m in group.measures if m not in q.distinct]
    ctes: list[tuple[str, exp.Expr]] = [
        ("source", materialized(source) if q.coarse or q.distinct else source),
        (day_aggregates, q.grouped_by("day", non_distinct, "source")),
        *q.first_sightings(day_aggregates),
    ]
    if q.coarse:
        ctes.append(("holistic_rows", materialized(q.holistic_rows())))
    if q.incremental:
        stored = exp.table_(INCREMENTAL_PREFIX + "days", alias="stored")
        ctes.append(("stored_days", select(exp.Star()).from_(stored, copy=False)))
    if q.rolling:  # `grouped` and `day_partials` hold day rows only
        ctes += q.rolled_up()
    if q.holistic:
        ctes.append(("recomputed", q.recomputed()))
    ctes += q.spine()
    query = with_(q.final(), ctes)
    if q.incremental:
        query = with_bounds(query, _recompute(q.direct_grains, group.grains, week_start))
    return query


class _MeasureQuery:
    """The steps of one measure group's query (`measure_group`), each a CTE or a few."""

    def __init__(self, group: MeasureGroup, week_start: str, *, incremental: bool) -> None:
        self.group, self.week_start, self.incremental = group, week_start, incremental
        self.holistic = [m for m in group.measures if not m.rolls_up]
        self.rolling = [m for m in group.measures if m.rolls_up]
        self.direct_grains = ["day", *(g for g in group.grains if g != "day" and self.holistic)]
        self.coarse = self.direct_grains[1:]  # grains whose holistic measures are recomputed from rows
        self.coarser = [g for g in group.grains if g != "day"]
        self.distinct = [m for m in self.rolling if m.counts_distinct] if self.coarser else []
        self.seen_columns = [
            first_seen_column(m.name, g) for m in self.distinct for g in self.coarser
        ]
        self.day = exp.cast(col(group.time, group.model), DATE)

    def scan(self, measures: Sequence[Measure], grains: Sequence[str]) -> exp.Select:
        """The model's rows: their day, its periods at `grains`, slices, measure inputs."""
        group, day = self.group, self.day
        query = select(
            exp.alias_(day.copy(), "date_day", copy=False),
            *(
                exp.alias_(period_start(g, day.copy(), self.week_start), f"{g}_start", copy=False)
                for g in grains
            ),
            *(
                exp.alias_(col(s.column, s.table), slice_alias(s.label), copy=False)
                for s in group.slices
            ),
            *(exp.alias_(m.row_value(), _input_alias(m), copy=False) for m in measures),
        ).from_(ref_table(group.model, group.model), copy=False)
        present = exp.Not(this=exp.Is(this=col(group.time, group.model), expression=exp.Null()))
        return joined(query, group).where(present, copy=False)

    def grouped_by(self, grain: str, measures: Sequence[Measure], rows: str) -> exp.Select:
        """The measures at one grain, for the period alone and by each slice: its own
        aggregate (count distinct over several grains' grouping sets at once runs out of
        memory at scale), over the rows of the periods recomputed."""
        group = self.group
        key = "date_day" if grain == "day" else f"{grain}_start"
        sets: list[exp.Expr] = [exp.Paren(this=col(key))]
        sets += [
            exp.Tuple(expressions=[col(key), col(slice_alias(s.label))]) for s in group.slices
        ]
        query = select(
            exp.alias_(lit(grain), "grain", copy=False),
            exp.alias_(col(key), "period_start", copy=False),
            exp.alias_(_slice_case(group, lambda s: lit(s.label)), "dimension", copy=False),
            exp.alias_(
                _slice_case(
                    group,
                    lambda s: coalesce(
                        exp.cast(col(slice_alias(s.label)), VARCHAR), lit(NULL_VALUE)
                    ),
                ),
                "dimension_value",
                copy=False,
            ),
            *(
                exp.alias_(aggregate, name, copy=False)
                for m in measures
                for name, aggregate in m.aggregate(col(_input_alias(m))).items()
            ),
        ).from_(exp.table_(rows), copy=False)
        if self.incremental:
            bound = "recompute_from" if grain == "day" else f"{grain}_from"
            query = query.where(since(col("date_day"), bound), copy=False)
        return query.group_by(exp.GroupingSets(expressions=sets), copy=False)

    def first_sightings(self, day_aggregates: str) -> list[tuple[str, exp.Expr]]:
        """Per distinct count, its first sightings by day; then `grouped`: the day
        aggregates with them joined (nothing without distinct counts)."""
        group, day = self.group, self.day
        ctes: list[tuple[str, exp.Expr]] = []
        for m in self.distinct:
            recomputed_rows = select(
                col("date_day"),
                *(col(slice_alias(s.label)) for s in group.slices),
                col(_input_alias(m)),
            ).from_(exp.table_("source"), copy=False)
            read: exp.Expr = recomputed_rows
            if self.incremental:  # and the earlier sightings, in the periods, of entities seen again
                seen_again = select(col(_input_alias(m))).from_(exp.table_("source"), copy=False)
                earlier = self.scan([m], []).where(
                    and_(
                        since(day.copy(), "rollup_from"),
                        exp.LT(this=day.copy(), expression=recompute_column("recompute_from")),
                        exp.In(this=m.row_value(), query=exp.Subquery(this=seen_again)),
                    ),
                    copy=False,
                )
                read = union_all([recomputed_rows, earlier])
            seen = first_seen(group, m, read, self.coarser, self.week_start)
            if self.incremental:
                seen = seen.where(since(col("date_day")), copy=False)
            ctes.append((f"first_seen__{m.name}", seen))
        if not self.distinct:
            return ctes
        grouped = select(
            *(col(k, day_aggregates) for k in ROW_KEYS),
            *(
                col(c, f"first_seen__{m.name}" if m in self.distinct else day_aggregates)
                for m in group.measures
                for c in m.partial_columns
            ),
            *(
                col(first_seen_column(m.name, g), f"first_seen__{m.name}")
                for m in self.distinct
                for g in self.coarser
            ),
        ).from_(exp.table_(day_aggregates), copy=False)
        for m in self.distinct:
            grouped = join(
                grouped,
                exp.table_(f"first_seen__{m.name}"),
                side="LEFT",
                on=on_keys(day_aggregates, f"first_seen__{m.name}", ROW_KEYS[1:]),
            )
        ctes.append(("grouped", grouped))
        return ctes

    def holistic_rows(self) -> exp.Expr:
        """The rows of the coarser periods, with only what holistic measures read (computed
        once): the source's on a full build; on an incremental run, whose source holds the
        recomputed days alone, a scan of their periods' rows."""
        from_source = select(
            col("date_day"),
            *(
                exp.alias_(
                    period_start(g, col("date_day"), self.week_start), f"{g}_start", copy=False
                )
                for g in self.coarse
            ),
            *(col(slice_alias(s.label)) for s in self.group.slices),
            *(col(_input_alias(m)) for m in self.holistic),
        ).from_(exp.table_("source"), copy=False)
        if not self.incremental:
            return from_source
        first = recompute_column("recompute_from")
        return union_all(
            [
                from_source.where(exp.Is(this=first, expression=exp.Null()), copy=False),
                self.scan(self.holistic, self.coarse)
                .where(exp.Not(this=exp.Is(this=first.copy(), expression=exp.Null())))
                .where(since(self.day.copy(), "scan_from"), copy=False),
            ]
        )

    def rolled_up(self) -> list[tuple[str, exp.Expr]]:
        """The day partials (on an incremental run: the new ones from the rows read, the
        stored ones before the recomputed days), and `rolled_up`: them and every coarser
        period rolled up from them."""
        partials = [c for m in self.rolling for c in m.partial_columns]
        keep = [*(col(k) for k in ROW_KEYS), *(col(c) for c in (*partials, *self.seen_columns))]
        ctes: list[tuple[str, exp.Expr]] = []
        days_from = "grouped"
        if self.incremental:
            days_from = "day_partials"
            recompute_from = recompute_column("recompute_from")
            stored = (
                select(*(c.copy() for c in keep))
                .from_(exp.table_("stored_days"), copy=False)
                .where(
                    and_(
                        exp.GTE(
                            this=col("period_start"), expression=recompute_column("rollup_from")
                        ),
                        exp.LT(this=col("period_start"), expression=recompute_from),
                    ),
                    copy=False,
                )
            )
            new = select(*(c.copy() for c in keep)).from_(exp.table_("grouped"), copy=False)
            ctes.append((days_from, union_all([new, stored])))
        branches: list[exp.Select] = [select(*keep).from_(exp.table_(days_from), copy=False)]
        for grain in self.coarser:
            start_expr = period_start(grain, col("period_start"), self.week_start)
            branch = select(
                exp.alias_(lit(grain), "grain", copy=False),
                exp.alias_(start_expr, "period_start", copy=False),
                col("dimension"),
                col("dimension_value"),
                *(
                    exp.alias_(m.roll_up(c, grain), c, copy=False)
                    for m in self.rolling
                    for c in m.partial_columns
                ),
                # a coarser period keeps no first sightings
                *(
                    exp.alias_(exp.cast(exp.null(), BIGINT), c, copy=False)
                    for c in self.seen_columns
                ),
            ).from_(exp.table_(days_from), copy=False)
            if self.incremental:  # only the periods holding recomputed days
                branch = branch.where(
                    since(col("period_start"), f"{grain}_from"), append=True, copy=False
                )
            branches.append(
                branch.group_by(
                    start_expr.copy(), col("dimension"), col("dimension_value"), copy=False
                )
            )
        ctes.append(("rolled_up", union_all(branches)))
        return ctes

    def recomputed(self) -> exp.Expr:
        """Holistic measures: the day rows' and each coarser grain's from its rows."""
        days = select(*(col(k) for k in ROW_KEYS), *(col(m.name) for m in self.holistic))
        return union_all(
            [
                days.from_(exp.table_("grouped"), copy=False),
                *(self.grouped_by(g, self.holistic, "holistic_rows") for g in self.coarse),
            ]
        )

    def spine(self) -> list[tuple[str, exp.Expr]]:
        """Every period of every grain between the data's first and last day, by every
        slice: empty periods exist."""
        group = self.group
        first_day: exp.Expr = exp.Min(this=col("period_start"))
        if self.incremental:  # recomputed days only; no rows read: no spine, nothing replaced
            first_day = coalesce(recompute_column("recompute_from"), first_day)
        bounds = select(
            exp.alias_(first_day, "first_day", copy=False),
            exp.alias_(exp.Max(this=col("period_start")), "last_day", copy=False),
        ).from_(exp.table_("grouped"), copy=False)
        periods = union_all(
            [
                select(
                    exp.alias_(lit(grain), "grain", copy=False),
                    exp.alias_(
                        period_start(grain, col("date_day"), self.week_start),
                        "period_start",
                        copy=False,
                    ),
                )
                .distinct(copy=False)
                .from_(exp.table_("days"), copy=False)
                for grain in group.grains
            ]
        )
        slices: exp.Expr = (
            select(col("dimension"), col("dimension_value"))
            .distinct(copy=False)
            .from_(exp.table_("grouped"), copy=False)
        )
        if self.incremental:  # every slice stored keeps its rows in the recomputed periods
            slices = exp.union(
                slices,
                select(col("dimension"), col("dimension_value")).from_(
                    exp.table_("stored_days"), copy=False
                ),
                distinct=True,
                copy=False,
            )
        spine = select(
            col("grain", "periods"),
            col("period_start", "periods"),
            exp.alias_(_period_end_case(group.grains), "period_end", copy=False),
            col("dimension", "slices"),
            col("dimension_value", "slices"),
        ).from_(exp.table_("periods"), copy=False)
        spine = join(spine, exp.table_("slices"), kind="CROSS")
        return [
            ("bounds", bounds),
            ("days", days_from_bounds()),
            ("periods", periods),
            ("slices", slices),
            ("spine", spine),
        ]

    def final(self) -> exp.Select:
        """The spine with each measure's partials, filled where a period has no rows."""
        final = select(
            *(col(k, "spine") for k in KEYS),
            *(
                exp.alias_(
                    m.filled(col(c, "rolled_up" if m.rolls_up else "recomputed"), c), c, copy=False
                )
                for m in self.group.measures
                for c in m.partial_columns
            ),
            *(col(c, "rolled_up") for c in self.seen_columns),
        ).from_(exp.table_("spine"), copy=False)
        if self.rolling:
            final = join(
                final, exp.table_("rolled_up"), side="LEFT", on=on_keys("spine", "rolled_up", ROW_KEYS)
            )
        if self.holistic:
            final = join(
                final,
                exp.table_("recomputed"),
                side="LEFT",
                on=on_keys("spine", "recomputed", ROW_KEYS),
            )
        return final


def first_seen(
    group: MeasureGroup, measure: Measure, rows: exp.Expr, grains: Sequence[str], week_start: str
) -> exp.Select:
    """A distinct count's day partials from `rows` (day, slices, the measure's input): per
    day and slice, the entities seen that day (the day's count: those whose previous
    sighting is before the day, or none) and, at each of `grains`, those seen on no earlier
    day of its period, that is whose previous sighting is before the period's start."""
    entity = col(_input_alias(measure))
    seen = select(
        col("date_day"),
        *(col(slice_alias(s.label)) for s in group.slices),
        exp.alias_(entity, "entity", copy=False),
    ).from_(
        exp.Subquery(this=rows, alias=exp.TableAlias(this=exp.to_identifier("rows"))), copy=False
    )
    seen = seen.where(exp.Not(this=exp.Is(this=entity.copy(), expression=exp.Null())), copy=False)
    sighted = sightings(seen, [(s.label, slice_alias(s.label)) for s in group.slices], "date_day")
    previous = exp.Window(
        this=exp.Lag(this=col("date_day")),
        partition_by=[col("dimension"), col("dimension_value"), col("entity")],
        order=exp.Order(expressions=[exp.Ordered(this=col("date_day"))]),
    )
    lagged = select(
        col("date_day"),
        col("dimension"),
        col("dimension_value"),
        exp.alias_(previous, "previous_day", copy=False),
    ).from_(
        exp.Subquery(this=sighted, alias=exp.TableAlias(this=exp.to_identifier("sightings"))),
        copy=False,
    )

    def new_in(grain: str) -> exp.Expr:
        first = first_in_period(grain, col("date_day"), col("previous_day"), week_start)
        return exp.Count(this=exp.Case(ifs=[exp.If(this=first, true=lit(1))]))

    return (
        select(
            exp.alias_(col("date_day"), "period_start", copy=False),
            col("dimension"),
            col("dimension_value"),
            exp.alias_(new_in("day"), measure.name, copy=False),
            *(
                exp.alias_(new_in(g), first_seen_column(measure.name, g), copy=False)
                for g in grains
            ),
        )
        .from_(
            exp.Subquery(this=lagged, alias=exp.TableAlias(this=exp.to_identifier("lagged"))),
            copy=False,
        )
        .group_by(col("date_day"), col("dimension"), col("dimension_value"), copy=False)
    )


def sightings(
    seen: exp.Select, dimensions: Sequence[tuple[str, str]], day: str = "day"
) -> exp.Select:
    """Each row of `seen` (a query of `day`, `entity` and the columns of `dimensions`, pairs
    of a slice's name and its column) in each slice: `day`, `dimension` (the total, then each
    name), `dimension_value` (the row's value as text, '(null)' for NULL, 'total' for the
    total) and `entity`.

    `seen` is made DISTINCT before the slices multiply its rows: the distinct set holds a
    row per day, entity and values, not per slice (at 10M orders, DuckDB failed to grow a
    hash table of every slice's rows). An entity seen on one day with two values of a
    dimension is twice in the slices where the values agree; with the one before it, the
    second sighting's previous day is the same day, so it is never first in a period.
    """
    names = [TOTAL, *(name for name, _ in dimensions)]
    slices = exp.Subquery(
        this=typed_values((("dimension", VARCHAR),), [[n] for n in names], "names"),
        alias=exp.TableAlias(this=exp.to_identifier("slices")),
    )
    value = (
        exp.Case(
            this=col("dimension", "slices"),
            ifs=[
                exp.If(
                    this=lit(name),
                    true=coalesce(exp.cast(col(column, "seen"), VARCHAR), lit(NULL_VALUE)),
                )
                for name, column in dimensions
            ],
            default=lit(TOTAL),
        )
        if dimensions
        else lit(TOTAL)
    )
    rows = select(
        col(day, "seen"),
        col("dimension", "slices"),
        exp.alias_(value, "dimension_value", copy=False),
        col("entity", "seen"),
    ).from_(
        exp.Subquery(
            this=seen.distinct(copy=False), alias=exp.TableAlias(this=exp.to_identifier("seen"))
        ),
        copy=False,
    )
    return join(rows, slices, kind="CROSS")


def _slice_case(group: MeasureGroup, then: Callable[[Slice], exp.Expr]) -> exp.Expr:
    """`then(slice)` for the slice a grouping set groups by, 'total' for the period alone."""
    if not group.slices:
        return lit(TOTAL)
    return exp.Case(
        ifs=[exp.If(this=_grouping(slice_alias(s.label)), true=then(s)) for s in group.slices],
        default=lit(TOTAL),
    )


def recompute_column(name: str) -> exp.Expr:
    """A bound of an incremental run by name, filled in by `with_bounds`."""
    return exp.column(BOUND_PREFIX + name)


def since(value: exp.Expr, bound: str = "recompute_from") -> exp.Expr:
    """`value` on or after a bound of the run; true on full builds (the bound is NULL)."""
    return coalesce(exp.GTE(this=value, expression=recompute_column(bound)), exp.Boolean(this=True))


def with_bounds(query: exp.Expr, bounds: dict[str, exp.Expr]) -> exp.Expr:
    """The bounds' expressions in place of their names: expressions of the run's first
    recomputed day alone, which the engine folds to constants, so that a scan skips the
    rows of earlier days by its column's statistics (a scalar subquery hides the bound from
    the scan: the sessions measures at 10M orders read 402M rows instead of 3.8M)."""
    bounds = {"recompute_from": col(RECOMPUTE_FROM), **bounds}

    def fill(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name.startswith(BOUND_PREFIX):
            return bounds[node.name.removeprefix(BOUND_PREFIX)].copy()
        return node

    return query.transform(fill, copy=False)


def _recompute(
    direct_grains: Sequence[str], grains: Sequence[str], week_start: str
) -> dict[str, exp.Expr]:
    """The bounds of an incremental measure model, NULL on a full build: <grain>_from, the
    first period of each grain recomputed; scan_from, the first day of rows read (periods
    of measures recomputed at every grain); rollup_from, the first stored day partial
    needed by the coarser grains."""
    day = col(RECOMPUTE_FROM)
    starts = {g: period_start(g, day, week_start) for g in dict.fromkeys(["day", *grains])}

    def least(names: Sequence[str]) -> exp.Expr:
        exprs = [starts[g].copy() for g in names] or [day.copy()]
        return exprs[0] if len(exprs) == 1 else exp.Least(this=exprs[0], expressions=exprs[1:])

    return {
        **{f"{g}_from": starts[g] for g in grains if g != "day"},
        "scan_from": least(direct_grains),
        "rollup_from": least([g for g in grains if g != "day"]),
    }


def incremental_blocks() -> dict[str, tuple[exp.Expr, exp.Expr]]:
    """The derived tables standing for a placeholder of an incremental measure model:
    (query on an incremental run, query on a full build), both as sqlglot trees."""
    is_day = exp.EQ(this=col("grain"), expression=lit("day"))
    days_incremental = (
        select(exp.Star()).from_(exp.table_(THIS), copy=False).where(is_day, copy=False)
    )
    days_full = (
        select(exp.Star()).from_(exp.table_("grouped"), copy=False).where(exp.false(), copy=False)
    )
    return {
        "days": (days_incremental, days_full),
        "stored_windows": (
            select(exp.Star()).from_(exp.table_(THIS), copy=False),
            typed_values(WINDOW_ROW_COLUMNS, [], "stored"),
        ),
    }


def days_from_bounds() -> exp.Select:
    """Every day from `bounds.first_day` to `bounds.last_day` (a CTE named bounds)."""
    series = exp.Lateral(
        this=exp.ExplodingGenerateSeries(
            start=exp.cast(col("first_day", "bounds"), TIMESTAMP),
            end=exp.cast(col("last_day", "bounds"), TIMESTAMP),
            step=exp.Interval(this=lit("1"), unit=exp.var("day")),
        ),
        alias=exp.TableAlias(this=exp.to_identifier("series"), columns=[exp.to_identifier("day")]),
    )
    days = select(exp.alias_(exp.cast(col("day", "series"), DATE), "date_day", copy=False))
    return join(days.from_(exp.table_("bounds"), copy=False), series, kind="CROSS")


def _period_end_case(grains: Sequence[str]) -> exp.Expr:
    start = col("period_start", "periods")
    if len(grains) == 1:
        return period_end(grains[0], start)
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.EQ(this=col("grain", "periods"), expression=lit(g)),
                true=period_end(g, start.copy()),
            )
            for g in grains
        ]
    )


def step_cte_name(name: str) -> str:
    return f"kpi__{name}"


def _scope(
    kpi: Kpi,
    available_grains: Sequence[str],
    available_dimensions: Sequence[str],
    labels: Sequence[str],
) -> exp.Expr | None:
    """The KPI's grains and dimensions among what its source holds; None when it is all of it."""
    conditions = []
    if set(available_grains) - set(kpi.grains):
        conditions.append(in_("grain", kpi.grains))
    if set(available_dimensions) - set(labels):
        conditions.append(in_("dimension", [TOTAL, *labels]))
    return and_(*conditions) if conditions else None


def simple_values(group: MeasureGroup, steps: Sequence[Step]) -> exp.Expr:
    """Values of the simple KPIs of one measure group, as rows of the long table."""
    measures = {m.name: m for m in group.measures}
    labels = [s.label for s in group.slices]
    branches = []
    for step in steps:
        kpi = step.kpi
        measure = measures[kpi.name]
        if measure.agg == "average":
            total, count = (col(c) for c in measure.partial_columns)
            value = divide(double(total), double(count))
            numerator, denominator = double(total.copy()), double(count.copy())
        else:
            value, numerator, denominator = (
                double(col(kpi.name)),
                double(exp.null()),
                double(exp.null()),
            )
        dimension: exp.Expr = col("dimension")
        renamed = [(name, label) for name, label in step.dimensions if name != label]
        if renamed:
            dimension = exp.Case(
                this=col("dimension"),
                ifs=[exp.If(this=lit(label), true=lit(name)) for name, label in renamed],
                default=col("dimension"),
            )
        query = select(
            exp.alias_(lit(kpi.name), "kpi", copy=False),
            col("grain"),
            col("period_start"),
            col("period_end"),
            exp.alias_(dimension, "dimension", copy=False),
            col("dimension_value"),
            exp.alias_(value, "value", copy=False),
            exp.alias_(numerator, "numerator", copy=False),
            exp.alias_(denominator, "denominator", copy=False),
        ).from_(ref_table(group.name), copy=False)
        scope = _scope(kpi, group.grains, labels, [label for _, label in step.dimensions])
        branches.append(query.where(scope, copy=False) if scope is not None else query)
    return union_all(branches)


def composite_values(composites: Sequence[Step], plan: Plan) -> exp.Expr:
    """Ratios and derived KPIs, computed from their inputs' values after aggregation."""
    here = {s.kpi.name for s in composites}
    read = sorted({i for s in composites for i in s.inputs if i not in here})
    ctes: list[tuple[str, exp.Expr]] = [
        (
            step_cte_name(name),
            select(*(col(k) for k in KEYS), col("value"))
            .from_(ref_table(plan.step(name).values_model), copy=False)
            .where(exp.EQ(this=col("kpi"), expression=lit(name)), copy=False),
        )
        for name in read
    ]
    for step in composites:
        ctes.append((step_cte_name(step.kpi.name), _composite(step, plan)))
    branches = [
        select(
            exp.alias_(lit(s.kpi.name), "kpi", copy=False), *(col(c) for c in VALUE_COLUMNS[1:])
        ).from_(exp.table_(step_cte_name(s.kpi.name)), copy=False)
        for s in composites
    ]
    return with_(union_all(branches), ctes)


def _composite(step: Step, plan: Plan) -> exp.Select:
    kpi = step.kpi
    numerator: exp.Expr
    denominator: exp.Expr
    tables: list[tuple[str, str | None]]
    if kpi.kind == "ratio":
        assert kpi.numerator and kpi.denominator
        num, den = col("value", "numerator_kpi"), col("value", "denominator_kpi")
        value, numerator, denominator = divide(num, den), num.copy(), den.copy()
        tables = [
            (step_cte_name(kpi.numerator), "numerator_kpi"),
            (step_cte_name(kpi.denominator), "denominator_kpi"),
        ]
    else:
        value, numerator, denominator = _derived_value(kpi, plan.dialect), exp.null(), exp.null()
        tables = [(step_cte_name(name), None) for name in dict.fromkeys(step.inputs)]
    query = select(
        *(col(k) for k in KEYS),
        exp.alias_(value, "value", copy=False),
        exp.alias_(double(numerator), "numerator", copy=False),
        exp.alias_(double(denominator), "denominator", copy=False),
    ).from_(exp.table_(tables[0][0], alias=tables[0][1]), copy=False)
    for table, alias in tables[1:]:
        query = join(query, exp.table_(table, alias=alias), side="FULL", kind="OUTER", using=KEYS)
    inputs = [plan.step(name) for name in dict.fromkeys(step.inputs)]
    grains = sorted({g for i in inputs for g in i.kpi.grains})
    dimensions = sorted({name for i in inputs for name, _ in i.dimensions})
    scope = _scope(kpi, grains, dimensions, [name for name, _ in step.dimensions])
    return query.where(scope, copy=False) if scope is not None else query


def _derived_value(kpi: Kpi, dialect: str) -> exp.Expr:
    """The formula over input KPIs' values (doubles); every division guarded against zero."""
    assert kpi.formula is not None
    tree = expressions.parse(kpi.formula, dialect, what="formula", row_level=False)
    if isinstance(tree, exp.Column):  # a lone KPI name: the tree itself is replaced
        return col("value", step_cte_name(tree.name))
    for column in list(tree.find_all(exp.Column)):
        column.replace(col("value", step_cte_name(column.name)))
    for division in list(tree.find_all(exp.Div)):
        guarded = divide(division.this, division.expression)
        tree = guarded if division is tree else tree
        division.replace(guarded)
    return tree


CATALOG_COLUMNS = (
    ("kpi", VARCHAR),
    ("label", VARCHAR),
    ("description", VARCHAR),
    ("category", VARCHAR),
    ("owner", VARCHAR),
    ("kind", VARCHAR),
    ("format", VARCHAR),
    ("unit", VARCHAR),
    ("direction", VARCHAR),
    ("strategic", BOOLEAN),
    ("grains", VARCHAR),
    ("dimensions", VARCHAR),
    ("additivity", VARCHAR),
    ("on_track", DOUBLE),
    ("at_risk", DOUBLE),
    ("deviation_periods", INTEGER),
    ("deviation_k", DOUBLE),
    ("metric_file", VARCHAR),
)


def kpi_catalog(spec: Spec) -> exp.Expr:
    """One row per KPI: its definition's metadata, for BI tools and the tracking models."""
    kpis = {k.name: k for k in spec.kpis}
    rows = [
        [
            k.name,
            k.label,
            k.description,
            k.category,
            k.owner,
            k.kind,
            k.format,
            k.unit,
            k.direction,
            k.strategic,
            ",".join(k.grains),
            ",".join(d.name for d in k.dimensions),
            additivity(k, kpis),
            spec.thresholds_of(k).on_track,
            spec.thresholds_of(k).at_risk,
            spec.deviation_of(k).periods,
            spec.deviation_of(k).k,
            k.file,
        ]
        for k in sorted(spec.kpis, key=lambda k: k.name)
    ]
    return typed_values(CATALOG_COLUMNS, rows, "definitions")


def typed_values(
    columns: Sequence[tuple[str, exp.DataType]], rows: Sequence[Sequence[object]], alias: str
) -> exp.Expr:
    """A typed inline table: SELECT CAST(c AS type)… FROM (VALUES …); no rows gives an empty one."""

    def literal(value: object) -> exp.Expr:
        if value is None:
            return exp.null()
        if isinstance(value, bool):
            return exp.Boolean(this=value)
        if isinstance(value, int | float):
            return exp.Literal.number(repr(value) if isinstance(value, float) else value)
        return exp.Literal.string(str(value))

    names = [name for name, _ in columns]
    tuples = [exp.Tuple(expressions=[literal(v) for v in row]) for row in rows] or [
        exp.Tuple(expressions=[exp.null() for _ in names])
    ]
    table = exp.Values(
        expressions=tuples,
        alias=exp.TableAlias(
            this=exp.to_identifier(alias), columns=[exp.to_identifier(n) for n in names]
        ),
    )
    query = select(*(exp.alias_(exp.cast(col(n), t), n, copy=False) for n, t in columns)).from_(
        table, copy=False
    )
    return query if rows else query.where(exp.false(), copy=False)


def wide(grain: str, kpis: Sequence[Kpi]) -> exp.Select:
    """One row per period of `grain`, one column per KPI tracked at that grain (totals)."""
    columns = [
        exp.alias_(
            exp.Max(
                this=exp.Case(
                    ifs=[
                        exp.If(
                            this=exp.EQ(this=col("kpi"), expression=lit(k.name)), true=col("value")
                        )
                    ]
                )
            ),
            k.name,
            copy=False,
        )
        for k in sorted(kpis, key=lambda k: k.name)
    ]
    return (
        select(*(col(c) for c in WIDE_KEYS), *columns)
        .from_(ref_table("kpi_values"), copy=False)
        .where(
            and_(
                exp.EQ(this=col("grain"), expression=lit(grain)),
                exp.EQ(this=col("dimension"), expression=lit(TOTAL)),
            ),
            copy=False,
        )
        .group_by(*(col(c) for c in WIDE_KEYS), copy=False)
    )


