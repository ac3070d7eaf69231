"""Measures: the SQL of each aggregation inside a measure group (which aggregations add
up: pipeline/semantics/additivity.py).

- additive (sum, count): day partials are summed into coarser periods;
- extreme (min, max): day partials re-aggregate with the same function;
- average: day partials keep sum and count, the value is sum / count at every grain;
- distinct (count_distinct): each day also keeps, per coarser grain, the entities first
  seen in that period on that day; a period's count is their sum;
- holistic (median): no partial is exact, so it is recomputed from rows at each grain.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from pipeline.semantics.additivity import HOLISTIC, ZERO_WHEN_EMPTY


@dataclass(frozen=True)
class Measure:
    """One simple KPI's aggregation inside its model's measure group."""

    name: str
    agg: str
    expr: exp.Expr | None  # None: count(*)
    filter: exp.Expr | None

    @property
    def rolls_up(self) -> bool:
        return self.agg not in HOLISTIC

    @property
    def counts_distinct(self) -> bool:
        return self.agg == "count_distinct"

    @property
    def partial_columns(self) -> tuple[str, ...]:
        """Columns the measure group stores for this measure."""
        return (
            (f"{self.name}__sum", f"{self.name}__count") if self.agg == "average" else (self.name,)
        )

    def row_value(self) -> exp.Expr:
        """The per-row input: the expression, NULL where the filter rejects the row."""
        value = self.expr.copy() if self.expr is not None else exp.Literal.number(1)
        if self.filter is None:
            return value
        return exp.Case(ifs=[exp.If(this=self.filter.copy(), true=value)])

    def aggregate(self, column: exp.Expr) -> dict[str, exp.Expr]:
        """Aggregates over row values, keyed by partial column name."""
        if self.agg == "average":
            return {
                f"{self.name}__sum": exp.Sum(this=column.copy()),
                f"{self.name}__count": exp.Count(this=column.copy()),
            }
        aggregate: exp.Expr = {
            "sum": lambda c: exp.Sum(this=c),
            "count": lambda c: exp.Count(this=c),
            "count_distinct": lambda c: exp.Count(this=exp.Distinct(expressions=[c])),
            "min": lambda c: exp.Min(this=c),
            "max": lambda c: exp.Max(this=c),
            # ordered as a double: over a DECIMAL(12,2) column the midpoint of two values
            # would keep two decimals (159.435 → 159.43)
            "median": lambda c: exp.WithinGroup(
                this=exp.PercentileCont(this=exp.Literal.number("0.5")),
                expression=exp.Order(expressions=[exp.Ordered(this=exp.cast(c, "double"))]),
            ),
        }[self.agg](column.copy())
        return {self.name: aggregate}

    def roll_up(self, column: str, grain: str) -> exp.Expr:
        """Aggregate of day partials into a coarser period (only for measures that roll up)."""
        if self.counts_distinct:
            return exp.Sum(this=exp.column(first_seen_column(column, grain)))
        ref = exp.column(column)
        return (
            exp.Min(this=ref)
            if self.agg == "min"
            else exp.Max(this=ref)
            if self.agg == "max"
            else exp.Sum(this=ref)
        )

    def filled(self, column: exp.Expr, partial: str) -> exp.Expr:
        """The partial as published: 0 over no rows for sums and counts, NULL otherwise."""
        zero = self.agg in ZERO_WHEN_EMPTY or partial.endswith(("__sum", "__count"))
        return exp.Coalesce(this=column, expressions=[exp.Literal.number(0)]) if zero else column


def first_seen_column(name: str, grain: str) -> str:
    """The day partial of a distinct count: the entities seen that day and on no earlier day
    of its period at `grain` (a period's distinct count is the sum over its days)."""
    return f"{name}__new_in_{grain}"
