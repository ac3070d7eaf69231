"""The small sqlglot builders every generated query is made of, and its placeholders.

Nodes are built directly: sqlglot's string builders would parse their arguments on every
call. The placeholders name what only dbt knows at run time; render/dbt.py turns them into
its Jinja (render/markers.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

# --- placeholders -----------------------------------------------------------------------

REF_PREFIX = "__ref__"  # a table `__ref__<model>`: dbt's `{{ ref('<model>') }}`
# Incremental models: placeholders render/dbt.py turns into `{% if is_incremental() %}`
# blocks (the stored table `{{ this }}` only exists on incremental runs).
INCREMENTAL_PREFIX = "__incremental__"
THIS = "__this__"
# The first day an incremental run recomputes: a constant of the run, which render/dbt.py
# turns into `{{ recompute_from }}` (a date literal, NULL on a full build).
RECOMPUTE_FROM = INCREMENTAL_PREFIX + "recompute_from"


def ref_table(model: str, alias: str | None = None) -> exp.Table:
    return exp.table_(f"{REF_PREFIX}{model}", alias=alias)


# --- types ------------------------------------------------------------------------------

# built once: exp.cast(x, "date") would parse the name on every call
BIGINT, BOOLEAN, DATE, DOUBLE, INTEGER, TIMESTAMP, VARCHAR = (
    exp.DataType.build(t) for t in ("bigint", "boolean", "date", "double", "int", "timestamp", "varchar")
)


# --- expressions ------------------------------------------------------------------------


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def lit(value: str | int) -> exp.Expr:
    return exp.Literal.string(value) if isinstance(value, str) else exp.Literal.number(value)


def alias(expression: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expression, name, copy=False)


def and_(*conditions: exp.Expr) -> exp.Expr:
    return exp.and_(*conditions, copy=False) if len(conditions) > 1 else conditions[0]


def eq(left: exp.Expr, right: exp.Expr) -> exp.Expr:
    return exp.EQ(this=left, expression=right)


def in_(column: str, values: Sequence[str]) -> exp.Expr:
    if len(values) == 1:
        return eq(col(column), lit(values[0]))
    return exp.In(this=col(column), expressions=[lit(v) for v in values])


def is_null(expression: exp.Expr) -> exp.Expr:
    return exp.Is(this=expression, expression=exp.Null())


def not_null(expression: exp.Expr) -> exp.Expr:
    return exp.Not(this=is_null(expression))


def on_keys(left: str, right: str, keys: Sequence[str]) -> exp.Expr:
    """`left.k = right.k AND …` for every key."""
    return and_(*(eq(col(k, left), col(k, right)) for k in keys))


def coalesce(first: exp.Expr, *rest: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=first, expressions=list(rest))


def zero(expression: exp.Expr) -> exp.Expr:
    """NULL as 0."""
    return coalesce(expression, lit(0))


def plus(day: exp.Expr, days: int) -> exp.Expr:
    return exp.Add(this=day, expression=lit(days)) if days else day


def days_between(start: exp.Expr, end: exp.Expr) -> exp.Expr:
    """Whole days from date `start` to date `end`: a subtraction in DuckDB and PostgreSQL,
    DATEDIFF in Spark (whose difference of two dates is an interval)."""
    return exp.DateDiff(this=end, expression=start, unit=exp.var("DAY"), date_part_boundary=True)


def double(expression: exp.Expr) -> exp.Expr:
    return exp.cast(expression, DOUBLE, copy=False)


def divide(numerator: exp.Expr, denominator: exp.Expr) -> exp.Expr:
    """The one division of generated SQL where the denominator can be 0: NULL there. Its
    operands are doubles (values are; cast counts with `double`), so no engine divides
    integers and the division is written as typed: `/` with no cast added by sqlglot."""
    if isinstance(numerator, exp.Binary) and not isinstance(numerator, exp.Dot):
        numerator = exp.paren(numerator, copy=False)
    return exp.Div(
        this=numerator, expression=exp.Nullif(this=denominator, expression=lit(0)), typed=True
    )


def running_sum(value: exp.Expr, partition: Sequence[exp.Expr], order: exp.Expr) -> exp.Expr:
    """Σ value over the rows up to this one (in `order`), per partition."""
    return exp.Window(
        this=exp.Sum(this=value),
        partition_by=list(partition) or None,
        order=exp.Order(expressions=[exp.Ordered(this=order)]),
        spec=exp.WindowSpec(
            kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
        ),
    )


# --- queries ----------------------------------------------------------------------------


def select(*columns: exp.Expr) -> exp.Select:
    """A SELECT of these columns (sqlglot's builder re-parses long lists)."""
    return exp.Select(expressions=list(columns))


def join(
    query: exp.Select,
    table: exp.Expr,
    *,
    side: str | None = None,
    kind: str | None = None,
    on: exp.Expr | None = None,
    using: Sequence[str] = (),
) -> exp.Select:
    """`query` with a join appended (the builder would parse its join type each time)."""
    using_ = [exp.to_identifier(c) for c in using] or None
    query.append("joins", exp.Join(this=table, side=side, kind=kind, on=on, using=using_))
    return query


def union_all(branches: Sequence[exp.Select]) -> exp.Expr:
    query: exp.Expr = branches[0]
    for branch in branches[1:]:
        query = exp.union(query, branch, distinct=False, copy=False)
    return query


def materialized(query: exp.Expr) -> exp.Expr:
    """A CTE body marked to be computed once (see `with_`)."""
    query.meta["materialized"] = True
    return query


def with_(query: exp.Expr, ctes: Sequence[tuple[str, exp.Expr]]) -> exp.Expr:
    """`query` with these named CTEs in front, in order."""
    # built in one go: appending CTEs one by one re-parents every earlier one
    query.set(
        "with_",
        exp.With(
            expressions=[
                exp.CTE(
                    this=body,
                    alias=exp.TableAlias(this=exp.to_identifier(name)),
                    materialized=body.meta.get("materialized") or None,
                )
                for name, body in ctes
            ]
        ),
    )
    return query
