"""Measures: how each aggregation behaves across grains (the one place deciding additivity).

- additive (sum, count): day partials are summed into coarser periods;
- extreme (min, max): day partials re-aggregate with the same function;
- average: day partials keep sum and count, the value is sum / count at every grain;
- distinct (count_distinct): each day also keeps, per coarser grain, the entities first
  seen in that period on that day; a period's count is their sum;
- holistic (median): no partial is exact, so it is recomputed from rows at each grain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp

from pipeline.spec.model import Kpi

ADDITIVE = ("sum", "count")
EXTREME = ("min", "max")
HOLISTIC = ("median",)
ZERO_WHEN_EMPTY = ("sum", "count", "count_distinct")  # other aggregations are NULL over no rows


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


def base_of(kpi: Kpi, kpis: Mapping[str, Kpi]) -> Kpi:
    """The KPI an offset KPI shifts (through offsets of offsets); any other KPI itself.
    An offset KPI's rows are its base's rows of other periods: its slices combine the same way."""
    seen = {kpi.name}
    while kpi.kind == "offset":
        base = kpis.get(str(kpi.params["of"]))
        if base is None or base.name in seen:  # unknown or a cycle: reported by validation
            return kpi
        seen.add(base.name)
        kpi = base
    return kpi


def additivity(kpi: Kpi, kpis: Mapping[str, Kpi]) -> str:
    """How a KPI's period values combine over several periods (windows, period-to-date,
    target spreading): 'additive' values sum; 'ratio' values are Σ numerator / Σ denominator;
    'none' must be recomputed from rows. An offset KPI is 'none': its rows are its base's of
    other periods, so its days do not add up to its months (month ends repeat or skip days)."""
    if kpi.kind == "simple":
        return "additive" if kpi.agg in ADDITIVE else "ratio" if kpi.agg == "average" else "none"
    if kpi.kind == "ratio":
        inputs = [kpis.get(kpi.numerator or ""), kpis.get(kpi.denominator or "")]
        if all(i is not None and i.kind == "simple" and i.agg in ADDITIVE for i in inputs):
            return "ratio"
    return "none"


def target_carry(kpi: Kpi, kpis: Mapping[str, Kpi]) -> str:
    """How a target stated at one grain carries to the others: 'sum' (spread over days and
    summed: amounts, counts), 'exact' (only at the grain it is stated at: distinct counts),
    'level' (the same value at every grain: rates, averages, levels). An offset of an amount
    or count is 'exact': its value is a whole earlier period, even in the one running."""
    if additivity(kpi, kpis) == "additive":
        return "sum"
    if kpi.kind == "simple" and kpi.agg == "count_distinct":
        return "exact"
    base = base_of(kpi, kpis)
    if base is not kpi and target_carry(base, kpis) != "level":
        return "exact"
    return "level"
