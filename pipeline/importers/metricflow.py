"""`kpi import metricflow`: a dbt Semantic Layer project's `semantic_models:` and
`metrics:` (the YAML of dbt 1.6 to 1.11) written as our metric files.

Semantic models give the KPIs' models, time columns (`agg_time_dimension`), dimensions and
relationships (a foreign entity joined to the model where that entity is primary);
measures and metrics give the KPIs. What has no faithful equivalent is not converted, and
said so at its file:line:col with the reason (docs/metricflow.md lists the cases).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlglot import exp

from pipeline.errors import Issue, Location, warning
from pipeline.importers.metricflow_filters import GRAINS, FilterError, Resolver, at_grain, translate
from pipeline.semantics.calendar import offset_problem, parse_offset
from pipeline.spec import located_yaml
from pipeline.spec.expressions import ExpressionError, parse
from pipeline.spec.located_yaml import LocatedDocument
from pipeline.spec.model import CATEGORIES

_REF = re.compile(r"""\s*ref\(\s*(['"])(?P<name>[A-Za-z_][A-Za-z0-9_]*)\1\s*\)\s*""")
_COLUMN = re.compile(r"[a-z][a-z0-9_]*")
_WINDOW = re.compile(r"\s*(?P<n>[1-9][0-9]*)\s+(?P<unit>day|week|month|quarter|year)s?\s*", re.I)
_AGGS = {
    "sum": "sum",
    "count": "count",
    "count_distinct": "count_distinct",
    "average": "average",
    "min": "min",
    "max": "max",
    "median": "median",
}
_SKIPPED_DIRS = {"target", "dbt_packages", "logs", "node_modules"}
OUT_FOLDER = "metricflow"  # imported files go to <out>/metricflow/<path in the dbt project>


class NotConverted(Exception):
    def __init__(self, reason: str, location: Location | None = None):
        super().__init__(reason)
        self.reason = reason
        self.location = location


@dataclass(frozen=True)
class _Entity:
    name: str
    type: str
    expr: str
    location: Location

    @property
    def column(self) -> str | None:
        return self.expr if _COLUMN.fullmatch(self.expr) else None


@dataclass(frozen=True)
class _Dim:
    name: str
    type: str
    expr: str
    granularity: str | None

    @property
    def column(self) -> str | None:
        return self.expr if _COLUMN.fullmatch(self.expr) else None


@dataclass
class _SemanticModel:
    name: str
    model: str
    file: str
    location: Location
    entities: dict[str, _Entity] = field(default_factory=dict)
    dims: dict[str, _Dim] = field(default_factory=dict)
    default_time: str | None = None

    def keyed_by(self, entity: str) -> bool:
        """One row per value of the entity (primary or unique)."""
        found = self.entities.get(entity)
        return found is not None and found.type in ("primary", "unique")


@dataclass(frozen=True)
class _Measure:
    name: str
    raw: dict[str, Any]
    owner: _SemanticModel
    location: Location

    @property
    def agg(self) -> str:
        return str(self.raw.get("agg", "")).lower()

    @property
    def expr(self) -> str:
        return _text(self.raw.get("expr", self.name))


@dataclass(frozen=True)
class _Metric:
    name: str
    raw: dict[str, Any]
    file: str
    location: Location
    doc: LocatedDocument | None = None
    path: tuple[str | int, ...] = ()

    def at(self, *keys: str | int) -> Location:
        return self.doc.key_at((*self.path, *keys)) if self.doc else self.location


@dataclass(frozen=True)
class _Simple:
    """A converted simple metric: its measure and MetricFlow filters, to filter again."""

    measure: _Measure
    filters: tuple[str, ...]


@dataclass
class Imported:
    files: dict[str, str]  # output path (relative to the out folder) -> text
    issues: list[Issue]
    converted: list[str]
    not_converted: list[str]


def read(root: Path) -> tuple[list[tuple[str, LocatedDocument]], list[Issue]]:
    """The YAML files under root (or root itself) holding semantic_models or metrics."""
    paths = [root] if root.is_file() else sorted(_yaml_files(root))
    base = root.parent if root.is_file() else root
    docs: list[tuple[str, LocatedDocument]] = []
    issues: list[Issue] = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if "semantic_models" not in text and "metrics" not in text:
            continue
        rel = path.relative_to(base).as_posix()
        doc, problems = located_yaml.load(text, str(path))
        issues += problems
        value = doc.value if doc else None
        if doc and isinstance(value, dict) and ("semantic_models" in value or "metrics" in value):
            docs.append((rel, doc))
    return docs, issues


def _yaml_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if any(p in _SKIPPED_DIRS or p.startswith(".") for p in parts[:-1]):
            continue
        if path.suffix in (".yml", ".yaml") and path.is_file():
            yield path


def import_project(
    docs: list[tuple[str, LocatedDocument]], dialect: str, category: str = "operational"
) -> Imported:
    """Our metric files for the MetricFlow definitions in docs (from `read`)."""
    return _Converter(docs, dialect, category).run()


class _Converter:
    def __init__(self, docs: list[tuple[str, LocatedDocument]], dialect: str, category: str):
        self.dialect = dialect
        self.category = category
        self.issues: list[Issue] = []
        self.models: dict[str, _SemanticModel] = {}
        self.measures: dict[str, _Measure] = {}
        self.metrics: dict[str, _Metric] = {}
        self.kpis: dict[str, dict[str, Any]] = {}  # in the order written
        self.kpi_file: dict[str, str] = {}
        self.kpi_place: dict[str, tuple[int, int]] = {}  # (line of its metric, sequence)
        self.window_only: set[str] = set()  # values in kpi_windows, not kpi_values
        self.simple: dict[str, _Simple] = {}
        self.agg_of: dict[str, str] = {}  # KPI -> its aggregation (simple KPIs)
        self.done: dict[str, str | NotConverted] = {}
        self.relationships: dict[str, list[dict[str, Any]]] = {}
        self.unread: dict[str, str] = {}  # measures of semantic models not converted -> why
        for rel, doc in docs:
            self._read_semantic_models(rel, doc)
        for rel, doc in docs:
            self._read_metrics(rel, doc)

    # reading ---------------------------------------------------------------------------

    def _read_semantic_models(self, rel: str, doc: LocatedDocument) -> None:
        for i, raw in enumerate(doc.value.get("semantic_models") or []):
            path: tuple[str | int, ...] = ("semantic_models", i)
            if not isinstance(raw, dict) or not raw.get("name"):
                continue
            name, loc = str(raw["name"]), doc.at(path)
            ref = _REF.fullmatch(_text(raw.get("model", "")))
            if ref is None:
                why = f"semantic model '{name}': not converted: model must be ref('a_model')"
                self.issues.append(warning(why, doc.key_at((*path, "model"))))
                for m in raw.get("measures") or []:
                    if isinstance(m, dict) and m.get("name"):
                        self.unread[str(m["name"])] = f"its {why}"
                continue
            sm = _SemanticModel(name, ref["name"], rel, loc)
            sm.default_time = (raw.get("defaults") or {}).get("agg_time_dimension")
            for j, e in enumerate(raw.get("entities") or []):
                if isinstance(e, dict) and e.get("name"):
                    expr = _text(e.get("expr", e["name"]))
                    where = doc.at((*path, "entities", j))
                    sm.entities[e["name"]] = _Entity(
                        e["name"], str(e.get("type", "")).lower(), expr, where
                    )
            if raw.get("primary_entity") and raw["primary_entity"] not in sm.entities:
                sm.entities[raw["primary_entity"]] = _Entity(
                    raw["primary_entity"], "primary", "", loc
                )
            for d in raw.get("dimensions") or []:
                if isinstance(d, dict) and d.get("name"):
                    params = d.get("type_params") or {}
                    granularity = params.get("time_granularity")
                    sm.dims[d["name"]] = _Dim(
                        d["name"],
                        str(d.get("type", "")).lower(),
                        _text(d.get("expr", d["name"])),
                        str(granularity).lower() if granularity else None,
                    )
            self.models[name] = sm
            for j, m in enumerate(raw.get("measures") or []):
                if isinstance(m, dict) and m.get("name"):
                    where = doc.at((*path, "measures", j))
                    self.measures[m["name"]] = _Measure(m["name"], m, sm, where)
                    if m.get("create_metric"):
                        self.metrics.setdefault(
                            m["name"],
                            _Metric(
                                m["name"],
                                {
                                    "name": m["name"],
                                    "type": "simple",
                                    "label": m.get("create_metric_display_name") or m.get("label"),
                                    "description": m.get("description"),
                                    "type_params": {"measure": m["name"]},
                                },
                                rel,
                                where,
                            ),
                        )

    def _read_metrics(self, rel: str, doc: LocatedDocument) -> None:
        for i, raw in enumerate(doc.value.get("metrics") or []):
            path: tuple[str | int, ...] = ("metrics", i)
            if isinstance(raw, dict) and raw.get("name"):
                name = str(raw["name"])
                self.metrics[name] = _Metric(name, raw, rel, doc.at(path), doc, path)

    # the run ---------------------------------------------------------------------------

    def run(self) -> Imported:
        for sm in self.models.values():
            self._relate(sm)
        converted, skipped = [], []
        simple_first = sorted(
            self.metrics, key=lambda n: self.metrics[n].raw.get("type") != "simple"
        )
        for name in simple_first:
            self._convert(name)
        for name, metric in self.metrics.items():
            result = self._convert(name)
            if isinstance(result, NotConverted):
                skipped.append(name)
                self.issues.append(
                    warning(
                        f"metric '{name}': not converted: {result.reason}",
                        result.location or metric.location,
                    )
                )
            else:
                converted.append(name)
        return Imported(self._files(), self.issues, converted, skipped)

    def _convert(self, name: str) -> str | NotConverted:
        if name in self.done:
            return self.done[name]
        metric = self.metrics.get(name)
        if metric is None:
            return NotConverted(f"no metric '{name}'")
        self.done[name] = NotConverted("it depends on itself", metric.location)
        before = set(self.kpis)
        try:
            kind = str(metric.raw.get("type", "")).lower()
            convert = {
                "simple": self._simple,
                "ratio": self._ratio,
                "derived": self._derived,
                "cumulative": self._cumulative,
                "conversion": self._conversion,
            }.get(kind)
            if convert is None:
                raise NotConverted(f"unknown metric type '{kind}'", metric.at("type"))
            entry = convert(metric)
        except NotConverted as exc:
            self.done[name] = exc
            self._drop_helpers(set(self.kpis) - before)
            return exc
        self._add(entry, metric)
        self.done[name] = entry["name"]
        return entry["name"]

    def _drop_helpers(self, added: set[str]) -> None:
        """The input KPIs a metric that failed to convert had made, unless another uses them."""
        helpers = {n for n in added if n not in self.metrics}
        used = set().union(*(self._uses(k) for n, k in self.kpis.items() if n not in helpers))
        for name in helpers - used:
            for table in (self.kpis, self.kpi_file, self.kpi_place, self.simple, self.agg_of):
                table.pop(name, None)

    def _uses(self, entry: dict[str, Any]) -> set[str]:
        used = set((entry.get("ratio") or {}).values()) | {entry.get("cumulative")}
        if "derived" in entry:
            formula = parse(entry["derived"], self.dialect, what="derived", row_level=False)
            used |= {c.name for c in formula.find_all(exp.Column)}
        return {n for n in used if n}

    def _add(self, entry: dict[str, Any], metric: _Metric) -> None:
        self.kpis[entry["name"]] = entry
        self.kpi_file[entry["name"]] = metric.file
        self.kpi_place[entry["name"]] = (metric.location.line, len(self.kpis))

    def _input(self, name: str, metric: _Metric, key: str | int) -> str:
        result = self._convert(name)
        if isinstance(result, NotConverted):
            reason = f"input metric '{name}' is not converted: {result.reason}"
            if name not in self.metrics:
                reason = f"no metric '{name}'"
            raise NotConverted(reason, metric.at("type_params", key))
        if result in self.window_only:
            raise NotConverted(
                f"input metric '{name}' is a cumulative metric over a window (its values are "
                "in kpi_windows)",
                metric.at("type_params", key),
            )
        return result

    # metric types ----------------------------------------------------------------------

    def _simple(self, metric: _Metric) -> dict[str, Any]:
        params = metric.raw.get("type_params") or {}
        measure, filters = self._measure_input(params.get("measure"), metric)
        return self._measure_kpi(metric, metric.name, measure, (*filters, *_filters(metric.raw)))

    def _measure_input(self, ref: Any, metric: _Metric) -> tuple[_Measure, tuple[str, ...]]:
        raw = ref if isinstance(ref, dict) else {"name": ref}
        name = _text(raw.get("name", ""))
        measure = self.measures.get(name)
        if measure is None:
            why = self.unread.get(name, f"no measure '{name}'")
            raise NotConverted(
                f"measure '{name}': {why}" if name in self.unread else why, metric.location
            )
        fill = raw.get("fill_nulls_with")
        if fill is not None and not (
            fill == 0 and measure.agg in ("sum", "count", "count_distinct")
        ):
            raise NotConverted(
                f"fill_nulls_with: {fill} on a {measure.agg} measure (empty periods are "
                "0 for sums and counts, NULL otherwise)",
                metric.location,
            )
        return measure, _filters(raw)

    def _measure_kpi(
        self,
        metric: _Metric,
        name: str,
        measure: _Measure,
        filters: tuple[str, ...],
        helper_of: str | None = None,
    ) -> dict[str, Any]:
        """The KPI of a measure; `helper_of` names the metric a helper KPI is an input of."""
        sm, raw = measure.owner, measure.raw
        if raw.get("non_additive_dimension"):
            raise NotConverted(
                f"measure '{measure.name}' has a non_additive_dimension (a semi-additive "
                "measure); write it as a snapshot KPI",
                measure.location,
            )
        agg, expr = (
            measure.agg,
            self._sql(measure.expr, f"measure '{measure.name}'", measure.location),
        )
        if agg == "sum_boolean":
            agg, expr = "sum", exp.cast(expr, "int")
        elif agg == "percentile":
            agg = self._percentile(measure)
        elif agg not in _AGGS:
            raise NotConverted(f"aggregation '{agg}' of measure '{measure.name}'", measure.location)
        time, grains = self._time(measure)
        entry = self._head(metric, name)
        if helper_of:
            entry = {"name": name, "description": helper_of, "category": entry["category"]}
        entry |= {"model": sm.model, "time": time, agg: expr.sql(self.dialect)}
        if filters:
            entry["filter"] = self._filter(filters, sm, time, metric, own_only=False)
        if dims := self._dimensions(sm, joined=True):
            entry["dimensions"] = dims
        if grains != GRAINS:
            entry["grains"] = list(grains)
        self.simple[name] = _Simple(measure, filters)
        self.agg_of[name] = agg
        return entry

    def _percentile(self, measure: _Measure) -> str:
        params = measure.raw.get("agg_params") or {}
        exact = not params.get("use_discrete_percentile") and not params.get(
            "use_approximate_percentile"
        )
        if params.get("percentile") == 0.5 and exact:
            return "median"
        raise NotConverted(
            f"measure '{measure.name}' is a percentile other than the continuous, exact 50th "
            "(the median); there is no percentile KPI",
            measure.location,
        )

    def _ratio(self, metric: _Metric) -> dict[str, Any]:
        params = metric.raw.get("type_params") or {}
        shared = _filters(metric.raw)
        numerator = self._metric_input(params.get("numerator"), metric, "numerator", shared)
        denominator = self._metric_input(params.get("denominator"), metric, "denominator", shared)
        entry = self._head(metric, metric.name)
        additive = ("sum", "count", "count_distinct")
        if self.agg_of.get(numerator) in additive and self.agg_of.get(denominator) in additive:
            entry["ratio"] = {"numerator": numerator, "denominator": denominator}
        else:  # MetricFlow divides the two values; a derived KPI does too (x / 0 is NULL)
            entry["derived"] = exp.Div(
                this=exp.column(numerator), expression=exp.column(denominator), typed=True
            ).sql(self.dialect)
        return entry | self._shared_slicing([numerator, denominator])

    def _metric_input(
        self, ref: Any, metric: _Metric, key: str | int, extra: tuple[str, ...]
    ) -> str:
        """The KPI standing for one input of a ratio or derived metric, with its filters."""
        raw = ref if isinstance(ref, dict) else {"name": ref}
        if raw.get("offset_to_grain"):
            raise NotConverted(
                "offset_to_grain (the value at the start of an earlier period) has no equivalent",
                metric.at("type_params", key),
            )
        kpi = self._filtered_input(raw, metric, key, extra)
        if raw.get("offset_window"):
            return self._offset(kpi, _text(raw["offset_window"]), raw, metric, key)
        return kpi

    def _offset(
        self, kpi: str, window: str, raw: dict[str, Any], metric: _Metric, key: str | int
    ) -> str:
        """An offset KPI of `kpi` by the input's `offset_window`, at the grains it fits."""
        parsed = parse_offset(window)
        if parsed is None or parsed[1] == "period":
            raise NotConverted(f"offset_window '{window}'", metric.at("type_params", key))
        base = self.kpis[kpi]
        grains = [
            g for g in base.get("grains", GRAINS) if offset_problem(g, *parsed) is None
        ]
        count, unit = parsed
        name = f"{metric.name}__{raw.get('alias') or kpi}"
        entry = {
            "name": name,
            "description": f"Input '{raw.get('name')}' of '{metric.name}', {window} earlier"
            " (imported from MetricFlow).",
            "category": base["category"],
            "offset": {"of": kpi, "by": f"{count} {unit}{'s' if count > 1 else ''}"},
        }
        if base.get("dimensions"):
            entry["dimensions"] = base["dimensions"]
        if tuple(grains) != tuple(base.get("grains", GRAINS)):
            entry["grains"] = grains
        self._add(entry, metric)
        return name

    def _filtered_input(
        self, raw: dict[str, Any], metric: _Metric, key: str | int, extra: tuple[str, ...]
    ) -> str:
        """The KPI of an input metric with the input's filters (a helper KPI when filtered)."""
        name = _text(raw.get("name", ""))
        kpi = self._input(name, metric, key)
        filters = (*_filters(raw), *extra)
        if not filters:
            return kpi
        simple = self.simple.get(kpi)
        if simple is None:
            raise NotConverted(
                f"a filter on input '{name}', which is not a simple metric",
                metric.at("type_params", key),
            )
        return self._helper(
            metric,
            f"{metric.name}__{raw.get('alias') or name}",
            simple.measure,
            (*simple.filters, *filters),
            f"Input '{name}' of '{metric.name}', filtered (imported from MetricFlow).",
        )

    def _helper(
        self, metric: _Metric, name: str, measure: _Measure, filters: tuple[str, ...], what: str
    ) -> str:
        """An input KPI of a metric: a simple metric's KPI of the same definition, or a new one."""
        for kpi, simple in self.simple.items():
            same = simple.measure.name == measure.name and simple.filters == filters
            if same and kpi not in self.window_only and "grains" not in self.kpis.get(kpi, {}):
                return kpi
        self._add(self._measure_kpi(metric, name, measure, filters, helper_of=what), metric)
        return name

    def _derived(self, metric: _Metric) -> dict[str, Any]:
        params = metric.raw.get("type_params") or {}
        shared = _filters(metric.raw)
        names: dict[str, str] = {}
        for ref in params.get("metrics") or []:
            raw = ref if isinstance(ref, dict) else {"name": ref}
            alias = _text(raw.get("alias") or raw.get("name", ""))
            names[alias] = self._metric_input(ref, metric, "metrics", shared)
        formula = self._sql(
            _text(params.get("expr", "")), "expr", metric.at("type_params", "expr"), row_level=False
        )
        for column in formula.find_all(exp.Column):
            if column.table or column.name not in names:
                raise NotConverted(
                    f"expr names '{column.sql(self.dialect)}', which is not one of its input metrics",
                    metric.at("type_params", "expr"),
                )
        formula = formula.transform(
            lambda n: exp.column(names[n.name]) if isinstance(n, exp.Column) else n
        )
        entry = self._head(metric, metric.name) | {"derived": formula.sql(self.dialect)}
        return entry | self._shared_slicing(list(dict.fromkeys(names.values())))

    def _cumulative(self, metric: _Metric) -> dict[str, Any]:
        params = metric.raw.get("type_params") or {}
        nested = params.get("cumulative_type_params") or {}
        window = nested.get("window", params.get("window"))
        to_date = nested.get("grain_to_date", params.get("grain_to_date"))
        period_agg = str(nested.get("period_agg", "first")).lower()
        measure, filters = self._measure_input(params.get("measure"), metric)
        filters = (*filters, *_filters(metric.raw))
        if window:
            match = _WINDOW.fullmatch(_text(window))
            unit = match["unit"].lower() if match else ""
            if unit not in ("day", "week"):
                raise NotConverted(
                    f"window '{window}': only windows of days or weeks have an equivalent "
                    "(a trailing window of N days ending on each day)",
                    metric.at("type_params"),
                )
            self._windowed(measure, metric)
            days = int(match["n"]) * (7 if unit == "week" else 1) if match else 0
            entry = self._measure_kpi(metric, metric.name, measure, filters)
            entry |= {"windows": [f"{days}d"], "grains": ["day"]}
            self.window_only.add(metric.name)
            return self._described(entry, f"kpi_windows, window_name trailing_{days}_day")
        if to_date:
            grain = str(to_date).lower()
            if grain not in GRAINS[1:]:
                raise NotConverted(
                    f"grain_to_date '{to_date}' (week, month, quarter or year convert)",
                    metric.at("type_params"),
                )
            self._windowed(measure, metric)
            entry = self._measure_kpi(metric, metric.name, measure, filters) | {"grains": ["day"]}
            self.window_only.add(metric.name)
            return self._described(entry, f"kpi_windows, window_name {grain}_to_date")
        if measure.agg not in ("sum", "count", "sum_boolean"):
            raise NotConverted(
                f"a running total of measure '{measure.name}' ({measure.agg}): sums and counts convert",
                metric.location,
            )
        helper = self._helper(
            metric,
            f"{metric.name}__input",
            measure,
            filters,
            f"Input of the running total '{metric.name}' (imported from MetricFlow).",
        )
        base = self.kpis[helper]
        entry = self._head(metric, metric.name) | {"cumulative": helper}
        if "dimensions" in base:
            entry["dimensions"] = base["dimensions"]
        if period_agg != "last":
            # MetricFlow's value of a coarser period is its first (or average) day's
            entry["grains"] = ["day"]
        elif "grains" in base:
            entry["grains"] = base["grains"]
        return entry

    def _windowed(self, measure: _Measure, metric: _Metric) -> None:
        if measure.agg not in ("sum", "count", "count_distinct", "average", "sum_boolean"):
            raise NotConverted(
                f"a window over measure '{measure.name}' ({measure.agg}): sums, counts, "
                "distinct counts and averages convert",
                metric.location,
            )

    def _described(self, entry: dict[str, Any], where: str) -> dict[str, Any]:
        note = f"MetricFlow cumulative metric: its values are in {where} (grain day)."
        entry["description"] = (
            f"{entry['description']} {note}" if entry.get("description") else note
        )
        return entry

    def _conversion(self, metric: _Metric) -> dict[str, Any]:
        params = (metric.raw.get("type_params") or {}).get("conversion_type_params") or {}
        at = metric.at("type_params", "conversion_type_params")
        if str(params.get("calculation", "conversion_rate")).lower() != "conversion_rate":
            raise NotConverted(
                "calculation: conversions (a conversion KPI's value is the rate; its "
                "numerator column holds the count)",
                at,
            )
        if params.get("constant_properties"):
            raise NotConverted("constant_properties have no equivalent", at)
        if _filters(metric.raw):
            raise NotConverted("a filter on the conversion metric itself", metric.at("filter"))
        match = _WINDOW.fullmatch(_text(params.get("window", "")))
        if match is None or match["unit"].lower() not in ("day", "week"):
            raise NotConverted(
                "the window must be N days or weeks (within_days counts whole days)", at
            )
        days = int(match["n"]) * (7 if match["unit"].lower() == "week" else 1)
        entity = _text(params.get("entity", ""))
        base, base_filters = self._measure_input(params.get("base_measure"), metric)
        event, event_filters = self._measure_input(params.get("conversion_measure"), metric)
        # ours: the share of base rows followed by an event; MetricFlow's: events linked
        # to their nearest base row, counted by the conversion measure. They agree when an
        # entity has one base row and each converted one counts once.
        if not base.owner.keyed_by(entity):
            raise NotConverted(
                f"entity '{entity}' is not the primary entity of the base measure's semantic "
                f"model '{base.owner.name}' (one base row per entity is needed)",
                at,
            )
        base_counts_rows = (
            base.agg in ("count", "count_distinct") and base.expr == _column_of(base.owner, entity)
        ) or (base.agg in ("count", "sum") and base.expr == "1")
        if not base_counts_rows:
            raise NotConverted(
                f"base measure '{base.name}' must count the base rows (count of the entity, or sum of 1)",
                at,
            )
        event_entity = _column_of(event.owner, entity)
        counts_once = (event.agg == "count_distinct" and event.expr == event_entity) or (
            event.owner.keyed_by(entity)
            and event.agg in ("count", "sum")
            and event.expr in ("1", event_entity)
        )
        if event_entity is None or not counts_once:
            raise NotConverted(
                f"conversion measure '{event.name}' must count distinct '{entity}' (each converted "
                "base row counts once)",
                at,
            )
        sides = []
        for measure, filters in ((base, base_filters), (event, event_filters)):
            time, _ = self._time(measure, day_only=True)
            side: dict[str, Any] = {
                "model": measure.owner.model,
                "time": time,
                "entity": _column_of(measure.owner, entity),
            }
            if filters:
                side["filter"] = self._filter(filters, measure.owner, time, metric, own_only=True)
            sides.append(side)
        entry = self._head(metric, metric.name)
        entry["conversion"] = {"base": sides[0], "event": sides[1], "within_days": days - 1}
        if dims := self._dimensions(base.owner, joined=False):
            entry["dimensions"] = dims
        entry.setdefault("format", "percent")
        return entry

    # pieces ----------------------------------------------------------------------------

    def _head(self, metric: _Metric, name: str) -> dict[str, Any]:
        raw = metric.raw
        meta = (raw.get("config") or {}).get("meta") or raw.get("meta") or {}
        entry: dict[str, Any] = {"name": name}
        if raw.get("label"):
            entry["label"] = _text(raw["label"])
        if raw.get("description"):
            entry["description"] = " ".join(_text(raw["description"]).split())
        category = meta.get("category")
        entry["category"] = category if category in CATEGORIES else self.category
        if meta.get("owner"):
            entry["owner"] = _text(meta["owner"])
        return entry

    def _time(self, measure: _Measure, day_only: bool = False) -> tuple[str, tuple[str, ...]]:
        sm = measure.owner
        name = measure.raw.get("agg_time_dimension") or sm.default_time
        dim = sm.dims.get(str(name)) if name else None
        if dim is None or dim.type != "time":
            raise NotConverted(
                f"measure '{measure.name}' has no agg_time_dimension (nor the semantic model a default)",
                measure.location,
            )
        if dim.column is None:
            raise NotConverted(
                f"time dimension '{dim.name}' is an expression ('{dim.expr}'), not a column",
                measure.location,
            )
        granularity = dim.granularity or "day"
        if granularity not in GRAINS:  # finer than a day: periods are days
            granularity = "day"
        if day_only and granularity != "day":
            raise NotConverted(
                f"time dimension '{dim.name}' is not at day granularity", measure.location
            )
        return dim.column, GRAINS[GRAINS.index(granularity) :]

    def _dimensions(self, sm: _SemanticModel, joined: bool) -> list[Any]:
        dims: list[Any] = []
        for dim in sm.dims.values():
            if dim.type == "categorical" and dim.column:
                dims.append(
                    dim.column
                    if dim.name == dim.column
                    else {"name": dim.name, "column": dim.column}
                )
        if joined:
            for entity in sm.entities.values():
                target = self._target(sm, entity)
                if target is None:
                    continue
                for dim in target.dims.values():
                    if dim.type == "categorical" and dim.column:
                        dims.append(
                            {
                                "name": f"{entity.name}__{dim.name}",
                                "column": f"{target.model}.{dim.column}",
                            }
                        )
        return dims

    def _target(self, sm: _SemanticModel, entity: _Entity) -> _SemanticModel | None:
        """The semantic model a foreign entity joins to (where it is primary or unique)."""
        if entity.type != "foreign" or entity.column is None:
            return None
        found = [m for m in self.models.values() if m is not sm and m.keyed_by(entity.name)]
        target = found[0] if len(found) == 1 else None
        if target is None or _column_of(target, entity.name) is None:
            return None
        return target

    def _relate(self, sm: _SemanticModel) -> None:
        for entity in sm.entities.values():
            target = self._target(sm, entity)
            if target is None:
                continue
            to_column = _column_of(target, entity.name)
            on: Any = entity.column if entity.column == to_column else {entity.column: to_column}
            rel = {"from": sm.model, "to": target.model, "on": on}
            if rel not in self.relationships.setdefault(sm.file, []):
                self.relationships[sm.file].append(rel)

    def _filter(
        self,
        filters: tuple[str, ...],
        sm: _SemanticModel,
        time: str,
        metric: _Metric,
        own_only: bool,
    ) -> str:
        resolve = self._resolver(sm, time, own_only)
        try:
            trees = [translate(f, self.dialect, resolve) for f in filters]
        except FilterError as exc:
            where = metric.at("filter") if "filter" in metric.raw else metric.at("type_params")
            raise NotConverted(f"filter: {exc}", where) from None
        return exp.and_(*trees).sql(self.dialect) if len(trees) > 1 else trees[0].sql(self.dialect)

    def _resolver(self, sm: _SemanticModel, time: str, own_only: bool) -> Resolver:
        def resolve(kind: str, name: str, grain: str | None) -> exp.Expr:
            if kind == "Entity":
                found = sm.entities.get(name)
                if found is None or not found.expr:
                    raise FilterError(f"semantic model '{sm.name}' has no entity '{name}'")
                return self._expr(found.expr, None)
            if name == "metric_time":
                if grain is None:
                    raise FilterError("Dimension('metric_time') needs TimeDimension and a grain")
                return at_grain(exp.column(time), grain)
            entity, sep, dim_name = name.partition("__")
            if not sep or "__" in dim_name:
                raise FilterError(f"'{name}' must be written entity__dimension (one join at most)")
            owner, dim = self._find_dim(sm, entity, dim_name)
            if own_only and owner is not sm:
                raise FilterError(
                    f"'{name}' is a column of '{owner.model}'; this KPI kind reads its own model only"
                )
            if kind == "TimeDimension":
                if dim.type != "time":
                    raise FilterError(f"'{name}' is not a time dimension")
                return at_grain(self._expr(dim.expr, None), grain or "day")
            return self._expr(dim.expr, None if owner is sm else owner.model)

        return resolve

    def _find_dim(self, sm: _SemanticModel, entity: str, dim: str) -> tuple[_SemanticModel, _Dim]:
        if entity in sm.entities and sm.keyed_by(entity) and dim in sm.dims:
            return sm, sm.dims[dim]
        link = sm.entities.get(entity)
        target = self._target(sm, link) if link else None
        if target is not None and dim in target.dims:
            return target, target.dims[dim]
        raise FilterError(
            f"no dimension '{dim}' reachable through entity '{entity}' from semantic model '{sm.name}'"
        )

    def _expr(self, text: str, table: str | None) -> exp.Expr:
        try:
            tree = parse(text, self.dialect, what="expression")
        except ExpressionError as exc:
            raise FilterError(str(exc)) from None
        if table:
            for column in tree.find_all(exp.Column):
                column.set("table", exp.to_identifier(table))
        return tree

    def _sql(self, text: str, what: str, where: Location, row_level: bool = True) -> exp.Expr:
        try:
            return parse(text, self.dialect, what=what, row_level=row_level)
        except ExpressionError as exc:
            raise NotConverted(str(exc), where) from None

    def _shared_slicing(self, inputs: list[str]) -> dict[str, Any]:
        """Dimensions and grains every input has: a ratio or derived KPI is tracked at those."""
        out: dict[str, Any] = {}
        dims = [
            d
            for d in self.kpis[inputs[0]].get("dimensions", [])
            if all(d in self.kpis[i].get("dimensions", []) for i in inputs[1:])
        ]
        if dims:
            out["dimensions"] = dims
        grains = [g for g in GRAINS if all(g in self.kpis[i].get("grains", GRAINS) for i in inputs)]
        if tuple(grains) != GRAINS:
            if not grains:
                raise NotConverted("its inputs share no grain")
            out["grains"] = grains
        return out

    # writing ---------------------------------------------------------------------------

    def _files(self) -> dict[str, str]:
        sources = sorted({*self.kpi_file.values(), *self.relationships})
        files: dict[str, str] = {}
        for source in sources:
            body: dict[str, Any] = {"version": 1}
            if self.relationships.get(source):
                body["relationships"] = self.relationships[source]
            places = sorted((self.kpi_place[n], n) for n in self.kpis if self.kpi_file[n] == source)
            kpis = [self.kpis[n] for _, n in places]
            if kpis:
                body["kpis"] = kpis
            text = yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
            header = (
                f"# Imported from MetricFlow definitions in {source} by `kpi import metricflow`.\n"
            )
            files[f"{OUT_FOLDER}/{source}"] = header + text
        return files


class _Dumper(yaml.SafeDumper):
    """Every value written out in full: shared lists are not anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _column_of(sm: _SemanticModel, entity: str) -> str | None:
    found = sm.entities.get(entity)
    return found.column if found else None


def _filters(raw: dict[str, Any]) -> tuple[str, ...]:
    value = raw.get("filter")
    if value is None:
        return ()
    return tuple(_text(v) for v in value) if isinstance(value, list) else (_text(value),)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def conflicts(files: dict[str, str], out: Path) -> list[str]:
    """Output files that exist already (overwritten only with --force)."""
    return sorted(str(out / p) for p in files if (out / p).exists())


def write(files: dict[str, str], out: Path) -> list[Path]:
    written = []
    for rel, text in sorted(files.items()):
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
