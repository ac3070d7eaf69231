"""Every generated dbt model as a node of the plan: the one registry of what `kpi compile`
writes. The renderer writes one file per node (`pipeline/render/dbt.py`) and the models'
properties (descriptions, keys, tests) from the nodes alone.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from pipeline.plan.steps import MeasureGroup, Step
from pipeline.semantics.marts import SLICE_KEYS
from pipeline.spec.model import GRAINS, Activity, Kpi, Lifetime, Rows, Spec

KPI_FOLDER = PurePosixPath("models") / "kpi"

# the columns a generated model's rows are unique on, one place per kind of row
ROW_KEYS = ("grain", "period_start", *SLICE_KEYS)
VALUE_KEYS = ("kpi", *ROW_KEYS)
WINDOW_KEYS = ("window_name", *ROW_KEYS)
ACTIVITY_KEYS = (*ROW_KEYS, "entity")
TARGET_KEYS = ("kpi", "priority", "series_index")

COMPOSITE_VALUES = "kpi_values__composite"
COMPOSITE_KINDS = ("ratio", "derived")
WIDE_NAMES = {
    "day": "kpi_daily",
    "week": "kpi_weekly",
    "month": "kpi_monthly",
    "quarter": "kpi_quarterly",
    "year": "kpi_yearly",
}
assert tuple(WIDE_NAMES) == GRAINS
# the generated models BI tools read (the output contract); the rest stay in a run's schema
KPI_MARTS = ("kpi_values", "kpi_windows", "kpi_catalog", *WIDE_NAMES.values())


class NodeKind(StrEnum):
    MEASURES = "measures"  # one scan of a fact model for all its simple KPIs
    VALUES = "values"  # the long-table rows of a measure group's KPIs
    KIND_VALUES = "kind_values"  # the values of one entity- or time-aware KPI
    COMPOSITE = "composite"  # ratio and derived KPIs, from their inputs' values
    DISTINCT_WINDOWS = "distinct_windows"  # windows of a distinct count, recounted from rows
    ACTIVITY = "activity"  # active entities of retention and churn KPIs, by period
    ENTITIES = "entities"  # first days of lifetime KPIs' entities
    CATALOG = "catalog"
    OBSERVATIONS = "observations"  # every KPI's rows, from the values models
    TARGETS = "targets"  # the targets as data, one row per target (per period of a series)
    KPI_VALUES = "kpi_values"
    KPI_WINDOWS = "kpi_windows"
    WIDE = "wide"


FOLDERS = {
    NodeKind.MEASURES: "measures",
    NodeKind.VALUES: "values",
    NodeKind.KIND_VALUES: "values",
    NodeKind.COMPOSITE: "values",
    NodeKind.DISTINCT_WINDOWS: "windows",
    NodeKind.ACTIVITY: "activity",
    NodeKind.ENTITIES: "entities",
    NodeKind.WIDE: "wide",
}


@dataclass(frozen=True)
class ModelNode:
    """One generated model: what it is, what it is made of, how its rows are keyed."""

    name: str
    kind: NodeKind
    files: tuple[str, ...]  # the metric files it comes from
    summary: str  # the header comment of its SQL
    description: str  # its description in the models' YAML
    unique_key: tuple[str, ...]  # its rows are unique on these (a dbt test)
    not_null: tuple[str, ...] = ()  # more columns that are never NULL (a dbt test)
    references: tuple[tuple[str, str], ...] = ()  # (column, model): values found there
    grains: tuple[str, ...] = ()  # the values of its `grain` column (a dbt test)
    lookback_days: int | None = None  # incremental when set
    materialization: str = "table"  # when not incremental
    steps: tuple[Step, ...] = ()  # the KPIs it computes
    group: MeasureGroup | None = None
    grain: str | None = None  # a wide table's grain
    kpis: tuple[Kpi, ...] = ()  # the KPIs a wide table has a column for

    @property
    def path(self) -> str:
        folder = FOLDERS.get(self.kind)
        parent = KPI_FOLDER / folder if folder else KPI_FOLDER
        return str(parent / f"{self.name}.sql")


def composite_model(level: int) -> str:
    """The model of ratio and derived KPIs at `level`: 1 unless they read an offset of a
    ratio or derived KPI, whose values come after the model of that KPI."""
    return COMPOSITE_VALUES if level == 1 else f"{COMPOSITE_VALUES}_{level}"


def distinct_windows_model(kpi: str) -> str:
    return f"kpi_windows__{kpi}"


def nodes(
    spec: Spec,
    groups: Sequence[MeasureGroup],
    steps: Sequence[Step],
    lookback_for: Callable[[Sequence[str]], int | None],
) -> tuple[ModelNode, ...]:
    """Every generated model of the plan, in the order their files are written."""
    return (
        *_measured(groups, steps, lookback_for),
        *_kind_values(steps),
        *_distinct_windows(steps, lookback_for),
        *_entity_state(steps, spec.config.incremental_lookback_days),
        *_published(spec),
    )


def _measured(
    groups: Sequence[MeasureGroup],
    steps: Sequence[Step],
    lookback_for: Callable[[Sequence[str]], int | None],
) -> list[ModelNode]:
    """Per fact model and time column: its measures (one scan) and its KPIs' values."""
    out = []
    for group in groups:
        names = ", ".join(m.name for m in group.measures)
        group_steps = tuple(s for s in steps if s.group is not None and s.group.name == group.name)
        out.append(
            ModelNode(
                group.name,
                NodeKind.MEASURES,
                group.files,
                f"Measures over {group.model} by {group.time}: one scan for "
                f"{len(group.measures)} KPI(s).",
                f"Generated. Partial aggregates of {group.model} by {group.time} for {names}."
                " Every period between the data's first and last day, every slice.",
                ROW_KEYS,
                not_null=("period_end",),
                grains=group.grains,
                lookback_days=lookback_for(group.grains),
                steps=group_steps,
                group=group,
            )
        )
        summary = f"Values of the KPIs measured over {group.model}."
        out.append(_values(group.values_model, group_steps, summary, NodeKind.VALUES, group))
    return out


def _kind_values(steps: Sequence[Step]) -> list[ModelNode]:
    """A values model per entity- or time-aware KPI and per offset KPI, one for the ratio
    and derived KPIs (two when some read an offset of another)."""
    out = [
        _values(
            step.values_model,
            (step,),
            f"Values of {step.kpi.name}, {_article(step.kpi.kind)} {step.kpi.kind} KPI.",
            NodeKind.KIND_VALUES,
        )
        for step in steps
        if step.kpi.kind not in ("simple", *COMPOSITE_KINDS)
    ]
    composites = [s for s in steps if s.kpi.kind in COMPOSITE_KINDS]
    for name in dict.fromkeys(s.values_model for s in composites):
        out.append(
            _values(
                name,
                tuple(s for s in composites if s.values_model == name),
                "Values of ratio and derived KPIs, computed from their inputs after aggregation.",
                NodeKind.COMPOSITE,
            )
        )
    return out


def _distinct_windows(
    steps: Sequence[Step], lookback_for: Callable[[Sequence[str]], int | None]
) -> list[ModelNode]:
    """Distinct counts with windows: each recounted from rows in a model of its own."""
    return [
        ModelNode(
            distinct_windows_model(step.kpi.name),
            NodeKind.DISTINCT_WINDOWS,
            (step.kpi.file,),
            f"Trailing windows and period to date of {step.kpi.name}, recounted from rows.",
            f"Generated. Trailing windows and period-to-date values of {step.kpi.name},"
            " each entity counted once per window.",
            WINDOW_KEYS,
            not_null=("period_end",),
            grains=step.kpi.grains,
            lookback_days=lookback_for(step.kpi.grains),
            steps=(step,),
        )
        for step in steps
        if step.kpi.kind == "simple" and step.kpi.agg == "count_distinct" and step.kpi.windows
    ]


def _entity_state(steps: Sequence[Step], lookback_days: int | None) -> list[ModelNode]:
    """The entities kept between runs: active entities (retention and churn over rows at a
    time) and first days (lifetime value), one model per KPIs over the same rows."""
    out = []
    for name, shared in _shared(steps, "kpi_activity__", _activity_key).items():
        kpi_names = ", ".join(s.kpi.name for s in shared)
        out.append(
            ModelNode(
                name,
                NodeKind.ACTIVITY,
                tuple(sorted({s.kpi.file for s in shared})),
                f"Active entities of {kpi_names}, by period, with their first day there.",
                f"Generated. The entities active in each period for {kpi_names}: the first day"
                " each was active there, and whether it was active in the period before.",
                ACTIVITY_KEYS,
                not_null=("first_day",),
                grains=shared[0].kpi.grains,
                lookback_days=lookback_days,
                steps=shared,
            )
        )
    for name, shared in _shared(steps, "kpi_entities__", _lifetime_key).items():
        kpi_names = ", ".join(s.kpi.name for s in shared)
        out.append(
            ModelNode(
                name,
                NodeKind.ENTITIES,
                tuple(sorted({s.kpi.file for s in shared})),
                f"First days of the entities of {kpi_names}, and their amounts within each"
                " horizon.",
                f"Generated. One row per entity of {kpi_names} with kept rows: its first and last"
                " day, and its amount within each KPI's horizon.",
                ("entity",),
                not_null=("first_day",),
                lookback_days=lookback_days,
                steps=shared,
            )
        )
    return out


def _published(spec: Spec) -> list[ModelNode]:
    """The KPI marts BI tools read: catalog, long tables, one wide table per grain."""
    every_file = tuple(sorted({k.file for k in spec.kpis}))
    out = [
        ModelNode(
            "kpi_catalog",
            NodeKind.CATALOG,
            every_file,
            "One row per KPI definition.",
            "Generated. One row per KPI: label, description, category, owner, format, grains,"
            " dimensions, metric file.",
            ("kpi",),
        ),
        ModelNode(
            "kpi_observations",
            NodeKind.OBSERVATIONS,
            every_file,
            "Every KPI's rows, from the values models.",
            "Generated. Every KPI's values: one row per KPI, grain, period and slice.",
            VALUE_KEYS,
            materialization="view",
        ),
        ModelNode(
            "kpi_targets",
            NodeKind.TARGETS,
            tuple(sorted({t.location.file for k in spec.kpis for t in spec.targets_of(k)}))
            or every_file,
            "One row per target (per period of a series), in the order they apply.",
            "Generated. The targets: one row per target and period of a series; the first"
            " (lowest priority) that applies to a period wins.",
            TARGET_KEYS,
        ),
        ModelNode(
            "kpi_values",
            NodeKind.KPI_VALUES,
            every_file,
            "Every KPI at every grain and slice, with comparisons, target and status (long"
            " table).",
            "Generated. The long KPI table: one row per KPI, grain, period and slice; dimension"
            " 'total' is the unsliced value.",
            VALUE_KEYS,
            not_null=("period_end",),
            grains=GRAINS,
            references=(("kpi", "kpi_catalog"),),
        ),
        ModelNode(
            "kpi_windows",
            NodeKind.KPI_WINDOWS,
            every_file,
            "Trailing windows and period-to-date values of KPIs that add up over periods.",
            "Generated. Trailing windows and period-to-date values: one row per KPI, window,"
            " grain, period and slice.",
            ("kpi", *WINDOW_KEYS),
            not_null=("period_end",),
            grains=GRAINS,
        ),
    ]
    for grain, name in WIDE_NAMES.items():
        kpis = tuple(k for k in spec.kpis if grain in k.grains)
        if kpis:
            out.append(
                ModelNode(
                    name,
                    NodeKind.WIDE,
                    tuple(sorted({k.file for k in kpis})),
                    f"One row per {grain}, one column per KPI (totals).",
                    f"Generated. One row per {grain}, one column per KPI tracked by {grain}"
                    " (totals only).",
                    ("period_start",),
                    not_null=("period_end",),
                    grain=grain,
                    kpis=kpis,
                )
            )
    return out


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _values(
    name: str,
    steps: tuple[Step, ...],
    summary: str,
    kind: NodeKind,
    group: MeasureGroup | None = None,
) -> ModelNode:
    return ModelNode(
        name,
        kind,
        tuple(sorted({s.kpi.file for s in steps})) if group is None else group.files,
        summary,
        "Generated. Rows of the long KPI table for " + ", ".join(s.kpi.name for s in steps) + ".",
        VALUE_KEYS,
        not_null=("period_end",),
        grains=GRAINS,
        steps=steps,
        group=group,
    )


def _shared(
    steps: Sequence[Step], prefix: str, key: Callable[[Step], Hashable | None]
) -> dict[str, tuple[Step, ...]]:
    """KPIs grouped by `key` (None: not wanted), one generated model per group, named after
    the first of its KPIs."""
    shared: dict[Hashable, list[Step]] = {}
    for step in sorted(steps, key=lambda s: s.kpi.name):
        found = key(step)
        if found is not None:
            shared.setdefault(found, []).append(step)
    return {f"{prefix}{group[0].kpi.name}": tuple(group) for group in shared.values()}


def _rows_key(rows: Rows) -> tuple[str | None, ...]:
    return (rows.model, rows.time, rows.entity, rows.filter)


def _activity_key(step: Step) -> Hashable | None:
    """Retention and churn over rows at a time with the same rows, entity, slices and grains
    share one activity model."""
    kpi = step.kpi
    if not isinstance(kpi.params, Activity) or kpi.params.time is None:
        return None
    return (*_rows_key(kpi.params), tuple((d.name, d.column) for d in kpi.dimensions), kpi.grains)


def _lifetime_key(step: Step) -> Hashable | None:
    """Lifetime KPIs over the same rows, entity and filter share one entities model."""
    return _rows_key(step.kpi.params) if isinstance(step.kpi.params, Lifetime) else None
