"""Validation of the entity- and time-aware KPI kinds: cumulative, lifetime value,
conversion, retention, churn, snapshot and offset (their SQL lives in pipeline/render/kinds.py)."""

from __future__ import annotations

from collections.abc import Mapping

from pipeline import engines
from pipeline.catalog import Catalog, ModelInfo
from pipeline.errors import Issue, Location, did_you_mean, error
from pipeline.semantics import calendar
from pipeline.semantics.additivity import ADDITIVE
from pipeline.spec import expressions
from pipeline.spec.model import (
    Activity,
    Conversion,
    Cumulative,
    Kpi,
    Lifetime,
    Offset,
    Relationship,
    Rows,
    Snapshot,
    Spec,
)

BLOCK_KEY = {  # kind → the KPI key holding its block
    "cumulative": "cumulative",
    "lifetime": "lifetime_value",
    "conversion": "conversion",
    "retention": "retention",
    "churn": "churn",
    "snapshot": "snapshot",
    "offset": "offset",
}
# simple KPIs' fields, which these kinds take inside their block
TOP_LEVEL = ("model", "time", "filter")


def validate(
    kpi: Kpi,
    spec: Spec,
    catalog: Catalog,
    relations: Mapping[str, Mapping[str, Relationship]],
    names: Mapping[str, Kpi],
) -> list[Issue]:
    """Every problem of the KPI's block; these kinds read one model each (no relationships)."""
    check = _Check(kpi, spec, catalog)
    key = BLOCK_KEY[kpi.kind]
    for field in TOP_LEVEL:
        if getattr(kpi, field) is not None:
            article = "an" if kpi.kind == "offset" else "a"
            check.fail(f"{article} {kpi.kind} KPI takes no '{field}'; set it inside '{key}'", field)
    params = kpi.params
    if isinstance(params, Cumulative):
        check.cumulative(params, names)
    elif isinstance(params, Offset):
        check.offset(params, names)
    elif isinstance(params, Conversion):
        base = check.block("conversion.base", params.base)
        check.block("conversion.event", params.event)
        check.dimensions(base, "conversion.base")
    elif isinstance(params, Lifetime):
        check.block(key, params, {"sum": params.sum})
        for dim in kpi.dimensions:
            check.fail(
                f"dimension '{dim.name}': a lifetime KPI takes no dimensions (an entity's value"
                " spans its rows); define one KPI per segment with a filter",
                location=dim.location,
            )
    elif isinstance(params, Activity | Snapshot):
        amounts = {"sum": params.sum, "count": params.count} if isinstance(params, Snapshot) else {}
        if check.span(key, params):
            model = check.block(key, params, amounts)
            check.dimensions(model, key)
        if isinstance(params, Snapshot):
            given = [k for k, text in amounts.items() if text is not None]
            if len(given) == 2:
                check.fail(
                    "a snapshot sums or counts its rows: 'sum' and 'count' both given; keep one",
                    f"{key}.count",
                )
            elif not given:
                check.fail(
                    "a snapshot needs 'sum' or 'count': what each row adds to the daily level", key
                )
    return check.issues


class _Check:
    def __init__(self, kpi: Kpi, spec: Spec, catalog: Catalog) -> None:
        self.kpi = kpi
        self.spec = spec
        self.catalog = catalog
        self.issues: list[Issue] = []

    def fail(self, message: str, field: str = "", location: Location | None = None) -> None:
        where = location or self._at(field)
        self.issues.append(error(f"kpi '{self.kpi.name}': {message}", where))

    def _at(self, field: str) -> Location:
        """A sub-key's location, else its block's, else the KPI's."""
        while field:
            if field in self.kpi.locations:
                return self.kpi.locations[field]
            field = field.rpartition(".")[0]
        return self.kpi.location

    def cumulative(self, params: Cumulative, names: Mapping[str, Kpi]) -> None:
        name = params.of
        other = names.get(name)
        if other is None:
            if not self.spec.may_define(name):
                self.fail(
                    f"cumulative '{name}' is not a KPI{did_you_mean(name, names)}", "cumulative"
                )
            return
        if other.kind != "simple" or other.agg not in ADDITIVE:
            shown = other.agg if other.kind == "simple" else other.kind
            self.fail(
                f"cumulative '{name}' is a {shown} KPI; a running total reads a sum or count KPI",
                "cumulative",
            )

    def offset(self, params: Offset, names: Mapping[str, Kpi]) -> None:
        """`of` is a KPI; `by` is N periods or N calendar units, moving each grain tracked
        to a period of the same grain (grains and dimensions: see validate._composite_scope)."""
        name = params.of
        if name not in names and not self.spec.may_define(name):
            self.fail(f"offset of '{name}': not a KPI{did_you_mean(name, names)}", "offset.of")
        text = params.by
        parsed = calendar.parse_offset(text)
        if parsed is None:
            units = ", ".join(calendar.OFFSET_UNITS)
            self.fail(
                f"offset by '{text}': write a count (1 or more) and a unit ({units}), e.g. '1 month' or '1 period'",
                "offset.by",
            )
            return
        problems = {g: calendar.offset_problem(g, *parsed) for g in self.kpi.grains}
        refused = {g: p for g, p in problems.items() if p}
        if refused:
            fitting = [g for g in self.kpi.grains if g not in refused]
            track = f"track it by {', '.join(fitting)} only" if fitting else "choose another offset"
            grains = ", ".join(refused) + (" grains" if len(refused) > 1 else " grain")
            self.fail(
                f"offset by '{text}' does not fit the {grains}:"
                f" {'; '.join(dict.fromkeys(refused.values()))}; {track},"
                " or shift by periods ('1 period')",
                "grains" if "grains" in self.kpi.locations else "offset.by",
            )

    def span(self, key: str, rows: Rows) -> bool:
        """Rows at `time`, or intervals from `start` to `end`: exactly one of the two."""
        if rows.time is not None and (rows.start is not None or rows.end is not None):
            extra = "start" if rows.start is not None else "end"
            self.fail(
                f"'time' and '{extra}' both given: rows are placed by 'time' or by 'start' and 'end'",
                f"{key}.{extra}",
            )
            return False
        if (rows.start is None) != (rows.end is None):
            given, missing = ("start", "end") if rows.start is not None else ("end", "start")
            self.fail(
                f"'{given}' needs '{missing}': an interval runs from 'start' to 'end' (NULL end: still running)",
                f"{key}.{given}",
            )
            return False
        if rows.time is None and rows.start is None:
            self.fail(f"'{key}' needs 'time', or 'start' and 'end'", key)
            return False
        return True

    def block(
        self, at: str, rows: Rows, expression_keys: Mapping[str, str | None] = {}
    ) -> ModelInfo | None:
        """The block's model, its columns (dates where placing rows in time) and expressions
        (`expression_keys`: key → text, besides the filter)."""
        model = self.catalog.get(rows.model)
        if model is None:
            self.fail(self.catalog.unknown(rows.model), f"{at}.model")
            return None
        columns = {"time": rows.time, "start": rows.start, "end": rows.end, "entity": rows.entity}
        for key, column in columns.items():
            if column is None:
                continue
            if column not in model.columns:
                hint = did_you_mean(column, model.columns)
                self.fail(f"unknown column '{column}' in {rows.model}{hint}", f"{at}.{key}")
            elif key != "entity" and model.columns[column] and not model.is_temporal(column):
                self.fail(
                    f"{key} column '{column}' is {model.columns[column]}, not a date or timestamp",
                    f"{at}.{key}",
                )
        for key, text in {**expression_keys, "filter": rows.filter}.items():
            if text is not None and not (key == "count" and text == "*"):
                self.expression(
                    model, f"{at}.{key}", text, f"{key} expression" if key != "filter" else "filter"
                )
        return model

    def expression(self, model: ModelInfo, at: str, text: str, what: str) -> None:
        dialect = self.spec.config.dialect
        try:
            tree = expressions.parse(text, dialect, what=what)
        except expressions.ExpressionError as exc:
            self.fail(str(exc), location=expressions.locate(self._at(at), text, exc.word))
            return
        for engine, why in engines.problems(tree, self.spec.config.engines):
            self.fail(f"{what} cannot run on {engine}: {why}", location=self._at(at))
        resolved = True
        for column in expressions.columns(tree):
            if column.table and column.table != model.name:
                problem = f"'{column.table}.{column.name}': a {self.kpi.kind} KPI reads columns of {model.name} only"
            elif column.name not in model.columns:
                problem = f"unknown column '{column.name}' in {model.name}{did_you_mean(column.name, model.columns)}"
            else:
                continue
            resolved = False
            self.fail(
                f"{what}: {problem}", location=expressions.locate(self._at(at), text, column.name)
            )
        if what == "filter" and resolved:
            wrong = expressions.filter_problem(
                tree, lambda c: (model.columns[c.name], model.is_boolean(c.name)), dialect
            )
            if wrong:
                self.fail(
                    wrong[0],
                    location=expressions.locate(self._at(at), text, wrong[1]),
                )

    def dimensions(self, model: ModelInfo | None, at: str) -> None:
        """Dimensions are columns of the kind's own model (its rows carry them)."""
        if model is None:
            return
        for dim in self.kpi.dimensions:
            if dim.model not in (None, model.name):
                self.fail(
                    f"dimension '{dim.name}': a {self.kpi.kind} KPI slices by columns of {model.name} only",
                    location=dim.location,
                )
            elif dim.column_name not in model.columns:
                hint = did_you_mean(dim.column_name, model.columns)
                self.fail(
                    f"dimension '{dim.name}': unknown column '{dim.column_name}' in {model.name}{hint}",
                    location=dim.location,
                )
