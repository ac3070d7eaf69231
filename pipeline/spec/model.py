"""The metric language as frozen dataclasses: what the loader produces and later stages read."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from pipeline.errors import Location

AGGREGATIONS = ("sum", "count", "count_distinct", "average", "min", "max", "median")
GRAINS = ("day", "week", "month", "quarter", "year")
CATEGORIES = ("financial", "customer", "sales_marketing", "operational", "people")
FORMATS = ("number", "currency", "percent", "duration")

# simple: an aggregation over a model; ratio and derived: computed from other KPIs;
# the rest are the entity- and time-aware kinds (see docs/metrics.md)
Kind = Literal[
    "simple",
    "ratio",
    "derived",
    "cumulative",
    "lifetime",
    "conversion",
    "retention",
    "churn",
    "snapshot",
    "offset",
]
ENTITY_KINDS = ("lifetime", "conversion", "retention", "churn", "snapshot")
WINDOW_UNITS = {"d": "day", "w": "week", "m": "month", "q": "quarter", "y": "year"}


@dataclass(frozen=True)
class Target:
    """A target: a constant `value` or a `series` per period of grain `per`, or `growth` on last year."""

    kind: Literal["value", "series", "growth"]
    location: Location
    kpi: str | None = None  # set when declared in a targets list apart from the KPI
    value: float | None = None
    series: tuple[tuple[str, float], ...] = ()
    growth: float | None = None
    per: str | None = None
    where: tuple[str, str] | None = None  # (dimension, value): a target for one slice
    valid_from: str | None = None
    valid_to: str | None = None

    @property
    def source(self) -> str:
        """Where the target came from, as shown in the marts."""
        if self.kind == "growth":
            what = f"{self.growth or 0:+.0%} on last year"
        elif self.kind == "series":
            what = f"series per {self.per}"
        else:
            what = f"{self.value or 0:g}" + (f" per {self.per}" if self.per else "")
        if self.where:
            what += f" for {self.where[0]} {self.where[1]}"
        return f"{self.location.file}:{self.location.line} ({what})"


@dataclass(frozen=True)
class Thresholds:
    """Attainment thresholds: on track at `on_track` or better, at risk from `at_risk`."""

    on_track: float = 1.0
    at_risk: float = 0.9


@dataclass(frozen=True)
class Deviation:
    """Flag a value outside the mean ± k standard deviations of the `periods` before it."""

    periods: int = 8
    k: float = 2.0


@dataclass(frozen=True)
class Window:
    """A trailing window of `count` periods of `grain` (7d, 28d, 3m…)."""

    count: int
    grain: str

    @property
    def name(self) -> str:
        return f"trailing_{self.count}_{self.grain}"


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


class _Block:
    """A kind's block of a metric file (the typed parameters of one KPI kind)."""

    def as_written(self) -> dict[str, object]:
        """The block's keys as a metric file writes them, those not set left out."""
        written: dict[str, object] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is not None:
                written[f.name] = value.as_written() if isinstance(value, _Block) else value
        return written


@dataclass(frozen=True, kw_only=True)
class Rows(_Block):
    """The rows of one model a kind reads: placed at `time`, or intervals from `start` to
    `end` (NULL end: still running); `entity` where the kind follows entities; `filter`
    keeps rows."""

    model: str
    time: str | None = None
    start: str | None = None
    end: str | None = None
    entity: str | None = None
    filter: str | None = None

    @property
    def placed_by(self) -> str:
        """The column placing a row in time (rows without it are not read)."""
        placed = self.time or self.start
        assert placed is not None  # validated: `time`, or `start` and `end`
        return placed


@dataclass(frozen=True, kw_only=True)
class Event(Rows):
    """conversion.base and conversion.event: an entity's rows at `time`."""

    time: str
    entity: str


@dataclass(frozen=True, kw_only=True)
class Activity(Rows):
    """retention and churn: the entities active in a period."""

    entity: str


@dataclass(frozen=True, kw_only=True)
class Lifetime(Rows):
    """lifetime_value: Σ `sum` per entity, over its life to date or `horizon_days` from its
    first row."""

    time: str
    entity: str
    sum: str
    horizon_days: int | None = None


@dataclass(frozen=True, kw_only=True)
class Snapshot(Rows):
    """A level per day: Σ `sum`, or the count of rows (`count`: '*' or an expression counted
    where not NULL), taken on the period's last day or averaged over its days."""

    sum: str | None = None
    count: str | None = None
    take: Literal["last", "average"] | None = None  # None: last


@dataclass(frozen=True, kw_only=True)
class Conversion(_Block):
    """Base rows followed by an event of the same entity within `within_days` days."""

    base: Event
    event: Event
    within_days: int


@dataclass(frozen=True, kw_only=True)
class Cumulative(_Block):
    """The running total of the additive KPI `of`."""

    of: str


@dataclass(frozen=True, kw_only=True)
class Offset(_Block):
    """KPI `of` shifted back `by` N periods or calendar units ('1 period', '1 month')."""

    of: str
    by: str


KindParams = Cumulative | Offset | Lifetime | Conversion | Activity | Snapshot


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
    strategic: bool = False
    targets: tuple[Target, ...] = ()
    thresholds: Thresholds | None = None  # None: the project's
    windows: tuple[Window, ...] = ()
    deviation: Deviation | None = None  # None: the project's
    # the kind's own block (cumulative, lifetime, conversion, retention, churn, snapshot, offset)
    params: KindParams | None = field(default=None, compare=False, hash=False)
    # where each field was written, for messages pointing at it
    locations: dict[str, Location] = field(default_factory=dict, compare=False, hash=False)

    def at(self, field_name: str) -> Location:
        return self.locations.get(field_name, self.location)

    @property
    def block(self) -> dict[str, object]:
        """The kind's block as a metric file writes it ({} for simple, ratio and derived KPIs)."""
        return self.params.as_written() if self.params is not None else {}

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the KPIs this one is computed from (ratio, cumulative and offset KPIs)."""
        if self.kind == "ratio":
            return tuple(n for n in (self.numerator, self.denominator) if n)
        if isinstance(self.params, Cumulative | Offset):
            return (self.params.of,)
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
    engines: tuple[str, ...] = ()  # other engines the KPI models are rendered for (pipeline/engines.py)
    thresholds: Thresholds = Thresholds()
    deviation: Deviation = Deviation()
    strategic_limit: int = 10
    categories: tuple[str, ...] = CATEGORIES
    publish: tuple[str, ...] = ()  # the project's marts published beside the KPI marts
    # config.incremental.lookback_days; None: measure models are plain tables
    incremental_lookback_days: int | None = None
    location: Location | None = None


@dataclass(frozen=True)
class Spec:
    """Everything under metrics/, as loaded."""

    kpis: tuple[Kpi, ...] = ()
    relationships: tuple[Relationship, ...] = ()
    config: Config = Config()
    targets: tuple[Target, ...] = ()  # declared apart from their KPIs (each names its kpi)
    unloaded: frozenset[str] = frozenset()  # KPIs too broken to load: already reported
    unparsed: frozenset[str] = frozenset()  # files not read as metric files: contents unknown

    def may_define(self, name: str) -> bool:
        """Whether a KPI not loaded may exist: too broken to load, or in an unparsed file."""
        return name in self.unloaded or bool(self.unparsed)

    def kpi(self, name: str) -> Kpi | None:
        return next((k for k in self.kpis if k.name == name), None)

    def targets_of(self, kpi: Kpi) -> tuple[Target, ...]:
        """The KPI's own targets, then those of targets lists, in file order: first applicable wins."""
        return kpi.targets + tuple(t for t in self.targets if t.kpi == kpi.name)

    def thresholds_of(self, kpi: Kpi) -> Thresholds:
        return kpi.thresholds or self.config.thresholds

    def deviation_of(self, kpi: Kpi) -> Deviation:
        return kpi.deviation or self.config.deviation
