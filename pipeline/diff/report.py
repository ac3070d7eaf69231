"""The diff's report: what changed in definitions, generated SQL and values, per KPI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pipeline.errors import UserError

Status = Literal["added", "removed", "changed"]


class DiffError(UserError):
    """The diff cannot start (not a git repository, unknown ref)."""


@dataclass(frozen=True)
class FieldChange:
    """One field of a KPI's definition, as written on each side ('' when absent)."""

    field: str
    base: str
    head: str


@dataclass(frozen=True)
class Move:
    """One kpi_values row whose value moved; change and relative are None when a side is NULL."""

    grain: str
    period_start: str
    dimension: str
    dimension_value: str
    base: float | None
    head: float | None
    change: float | None
    relative: float | None


@dataclass
class ValueDiff:
    """How a KPI's rows compare: counts, then the largest moves first."""

    compared: int = 0  # rows on both sides
    moved: int = 0
    only_base: int = 0  # periods or slices no longer there
    only_head: int = 0  # new periods or slices
    moved_by_grain: dict[str, int] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)  # the top N, largest |change| first

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.only_base or self.only_head)


@dataclass
class KpiChange:
    name: str
    status: Status
    label: str = ""
    file: str = ""  # where it is defined (head's file; base's when removed)
    renamed_from: str | None = None
    definition: list[FieldChange] = field(default_factory=list)
    values: ValueDiff | None = None  # None: not compared (added, removed or no values)
    rows: int = 0  # rows of an added or removed KPI


@dataclass(frozen=True)
class SqlChange:
    path: str
    status: Status
    added_lines: int
    removed_lines: int
    diff: str  # unified diff


@dataclass
class Side:
    """One side of the diff: where it came from and what went wrong there."""

    name: str  # the ref, or "working tree"
    commit: str | None = None
    kpis: int = 0
    issues: list[str] = field(default_factory=list)  # load/validate errors, as printed
    build_error: str | None = None
    warehouse: str | None = None  # the DuckDB file built (gone with a temporary workdir)
    values: bool = False  # kpi_values could be read
    notes: list[str] = field(default_factory=list)

    @property
    def compiles(self) -> bool:
        return not self.issues


@dataclass
class DiffReport:
    base: Side
    head: Side
    kpis: list[KpiChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    sql: list[SqlChange] = field(default_factory=list)
    top: int = 10

    def of(self, status: Status) -> list[KpiChange]:
        return [k for k in self.kpis if k.status == status]

    def kpi(self, name: str) -> KpiChange | None:
        return next((k for k in self.kpis if k.name == name), None)

    @property
    def values_compared(self) -> bool:
        return self.base.values and self.head.values

    @property
    def empty(self) -> bool:
        return not self.kpis and not self.sql

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["values_compared"] = self.values_compared
        return data


