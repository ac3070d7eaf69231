"""The metric language as frozen dataclasses: what the loader produces and later stages read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.errors import Location

AGGREGATIONS = ("sum", "count", "count_distinct", "average", "min", "max", "median")
GRAINS = ("day", "week", "month", "quarter", "year")
CATEGORIES = ("financial", "customer", "sales_marketing", "operational", "people")
FORMATS = ("number", "currency", "percent", "duration")

Kind = Literal["simple", "ratio", "derived"]


@dataclass(frozen=True)
class Dimension:
    """A column a KPI can be sliced by: `column` on the KPI's model or `model.column` of a
    model it relates to many-to-one; `name` is what the marts call it."""

    name: str
    column: str
    location: Location

    @property
    def model(self) -> str | None:
        return self.column.split(".")[0] if "." in self.column else None

    @property
    def column_name(self) -> str:
        return self.column.split(".")[-1]


@dataclass(frozen=True)
class Kpi:
    name: str
    label: str
    category: str
    kind: Kind
    file: str
    location: Location
    description: str = ""
    owner: str | None = None
    # simple KPIs: an aggregation of a row-level expression over a model
    agg: str | None = None
    expr: str | None = None
    model: str | None = None
    time: str | None = None
    filter: str | None = None
    # ratio KPIs: sum(numerator) / sum(denominator) at every grain and slice
    numerator: str | None = None
    denominator: str | None = None
    # derived KPIs: an expression over other KPIs, evaluated after aggregation
    formula: str | None = None
    dimensions: tuple[Dimension, ...] = ()
    grains: tuple[str, ...] = GRAINS
    format: str = "number"
    unit: str | None = None
    direction: Literal["higher", "lower"] = "higher"
    # where each field was written, for messages pointing at it
    locations: dict[str, Location] = field(default_factory=dict, compare=False, hash=False)

    def at(self, field_name: str) -> Location:
        return self.locations.get(field_name, self.location)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the KPIs this one is computed from (ratio and derived KPIs)."""
        if self.kind == "ratio":
            return tuple(n for n in (self.numerator, self.denominator) if n)
        return ()


@dataclass(frozen=True)
class Relationship:
    """A many-to-one join `from_model` → `to_model` on pairs of (from column, to column)."""

    from_model: str
    to_model: str
    on: tuple[tuple[str, str], ...]
    location: Location


@dataclass(frozen=True)
class Config:
    week_start: Literal["monday", "sunday", "saturday"] = "monday"
    dialect: str = "duckdb"
    location: Location | None = None


@dataclass(frozen=True)
class Spec:
    """Everything under metrics/, as loaded."""

    kpis: tuple[Kpi, ...] = ()
    relationships: tuple[Relationship, ...] = ()
    config: Config = Config()

    def kpi(self, name: str) -> Kpi | None:
        return next((k for k in self.kpis if k.name == name), None)
