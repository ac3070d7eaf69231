"""The plan's steps: the measure groups (one scan of a fact model each) and the KPI steps
computed from them. The planner makes them; `plan/models.py` turns them into generated models.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.plan.measures import Measure
from pipeline.spec.model import Kpi


@dataclass(frozen=True)
class Join:
    """A many-to-one join from the group's model to `model`."""

    model: str
    on: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Slice:
    """A column the group slices by; `label` names it in the group's rows."""

    label: str
    table: str
    column: str


@dataclass(frozen=True)
class MeasureGroup:
    """All measures over one model and time column: one scan computes them all."""

    name: str
    model: str
    time: str
    joins: tuple[Join, ...]
    slices: tuple[Slice, ...]
    measures: tuple[Measure, ...]
    grains: tuple[str, ...]
    files: tuple[str, ...]

    @property
    def values_model(self) -> str:
        """The model holding the values of this group's KPIs."""
        return self.name.replace("kpi_measures__", "kpi_values__", 1)


@dataclass(frozen=True)
class Step:
    """How one KPI is computed: from its measure group (simple) or from other KPIs."""

    kpi: Kpi
    dimensions: tuple[tuple[str, str], ...]  # (published name, label in the measure group)
    values_model: str
    group: MeasureGroup | None = None
    inputs: tuple[str, ...] = ()
