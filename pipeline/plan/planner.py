"""Plan: a validated Spec → measure groups (one scan per fact model), KPI steps and the
generated models (`plan/models.py`, the one registry of what is written).

A KPI is computed exactly at the grains and dimensions it declares: validation makes sure
a ratio or derived KPI only asks its inputs for grains and dimensions they declare.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from sqlglot import exp

from pipeline.plan.measures import Measure
from pipeline.plan.models import COMPOSITE_KINDS, ModelNode, NodeKind, composite_model, nodes
from pipeline.plan.steps import Join, MeasureGroup, Slice, Step
from pipeline.semantics import graph
from pipeline.spec import expressions
from pipeline.spec.model import GRAINS, Dimension, Kpi, Spec

TOTAL = "total"


@dataclass(frozen=True)
class Plan:
    groups: tuple[MeasureGroup, ...]
    steps: tuple[Step, ...]  # every KPI after the KPIs it reads
    week_start: str
    dialect: str
    lookback_days: int | None = None  # measure models are incremental when set
    models: tuple[ModelNode, ...] = field(default=())  # every generated model

    def lookback_for(self, grains: Sequence[str]) -> int | None:
        """The lookback of a model tracked at `grains`: incremental only with day rows,
        from which a run finds the newest stored day."""
        return self.lookback_days if "day" in grains else None

    @cached_property
    def _by_name(self) -> dict[str, Step]:
        return {s.kpi.name: s for s in self.steps}

    def step(self, name: str) -> Step:
        return self._by_name[name]

    def of_kind(self, kind: NodeKind) -> list[ModelNode]:
        return [m for m in self.models if m.kind is kind]

    def model_of(self, step: Step, kind: NodeKind) -> str:
        """The model of `kind` that computes `step` (a shared activity or entities model)."""
        return next(m.name for m in self.models if m.kind is kind and step in m.steps)


def plan(spec: Spec) -> Plan:
    deps = graph.dependency_map(spec)
    order = graph.build_order(deps)
    kpis = {k.name: k for k in spec.kpis}
    relations = {(r.from_model, r.to_model): r for r in spec.relationships}

    members: dict[tuple[str, str], list[Kpi]] = defaultdict(list)
    for name in order:
        kpi = kpis[name]
        if kpi.kind == "simple":
            assert kpi.model and kpi.time
            members[(kpi.model, kpi.time)].append(kpi)
    times_per_model: dict[str, int] = defaultdict(int)
    for model, _ in members:
        times_per_model[model] += 1

    groups: dict[str, MeasureGroup] = {}
    labels: dict[str, tuple[tuple[str, str], ...]] = {}
    group_of: dict[str, str] = {}
    for (model, time), group_kpis in sorted(members.items()):
        name = f"kpi_measures__{model}" + (f"__{time}" if times_per_model[model] > 1 else "")
        slices: dict[str, Slice] = {}
        joined: set[str] = set()
        measures = []
        for kpi in group_kpis:
            group_of[kpi.name] = name
            pairs = []
            for dim in kpi.dimensions:
                s = _slice(dim, model)
                slices.setdefault(s.label, s)
                pairs.append((dim.name, s.label))
                if s.table != model:
                    joined.add(s.table)
            labels[kpi.name] = tuple(pairs)
            measure = _measure(kpi, spec.config.dialect)
            for tree in (measure.expr, measure.filter):
                if tree is not None:
                    joined.update(
                        c.table for c in expressions.columns(tree) if c.table and c.table != model
                    )
                    _qualify(tree, model)
            measures.append(measure)
        groups[name] = MeasureGroup(
            name=name,
            model=model,
            time=time,
            joins=tuple(Join(m, relations[(model, m)].on) for m in sorted(joined)),
            slices=tuple(sorted(slices.values(), key=lambda s: s.label)),
            measures=tuple(measures),
            grains=tuple(g for g in GRAINS if any(g in k.grains for k in group_kpis)),
            files=tuple(sorted({k.file for k in group_kpis})),
        )

    steps = []
    after: dict[str, int] = {}  # the composite model a KPI's values are computed after
    for name in order:
        kpi = kpis[name]
        dims = tuple((d.name, d.name) for d in kpi.dimensions)
        if kpi.kind == "simple":
            group = groups[group_of[name]]
            steps.append(Step(kpi, labels[name], group.values_model, group))
        elif kpi.kind in COMPOSITE_KINDS:
            # in the model of the composites it reads, after those the offsets it reads read
            reads = [
                after[i] + (kpis[i].kind not in COMPOSITE_KINDS) for i in deps[name] if i in after
            ]
            level = max([1, *reads])
            after[name] = level
            steps.append(Step(kpi, dims, composite_model(level), inputs=deps[name]))
        else:  # entity- and time-aware kinds: a values model of their own (pipeline/render/kinds.py)
            after[name] = max((after.get(i, 0) for i in deps[name]), default=0)
            steps.append(Step(kpi, dims, f"kpi_values__{name}", inputs=deps[name]))
    partial = Plan(
        tuple(groups.values()),
        tuple(steps),
        spec.config.week_start,
        spec.config.dialect,
        spec.config.incremental_lookback_days,
    )
    return replace(partial, models=nodes(spec, partial.groups, partial.steps, partial.lookback_for))


def _slice(dim: Dimension, model: str) -> Slice:
    table = dim.model if dim.model and dim.model != model else model
    label = dim.column_name if table == model else f"{table}.{dim.column_name}"
    return Slice(label, table, dim.column_name)


def _measure(kpi: Kpi, dialect: str) -> Measure:
    assert kpi.agg is not None
    expr = None
    if not (kpi.agg == "count" and kpi.expr == "*"):
        assert kpi.expr is not None
        expr = expressions.parse(kpi.expr, dialect, what="expression")
    condition = expressions.parse(kpi.filter, dialect, what="filter") if kpi.filter else None
    return Measure(kpi.name, kpi.agg, expr, condition)


def _qualify(tree: exp.Expr, model: str) -> None:
    """Give unqualified columns the group's model as table, so joins cannot make them ambiguous."""
    for column in tree.find_all(exp.Column):
        if not column.table:
            column.set("table", exp.to_identifier(model))
