"""Compare two sides: KPI definitions field by field, generated SQL file by file, and
kpi_values rows keyed by (kpi, grain, period_start, dimension, dimension_value)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.diff.report import (
    DiffReport,
    FieldChange,
    KpiChange,
    Move,
    Side,
    SqlChange,
    Status,
    ValueDiff,
)
from pipeline.diff.sides import VALUES_TABLE, Loaded
from pipeline.spec import expressions
from pipeline.spec.hygiene import definition_key
from pipeline.spec.model import GRAINS, Kpi, Spec
from pipeline.warehouse import sql

TOLERANCE = 1e-9  # relative: float sums in another order are not a move


def _written(text: str | None, dialect: str, *, row_level: bool = True) -> str | None:
    """An expression as sqlglot writes it (case and spacing normalised), for display."""
    if text is None:
        return None
    try:
        return expressions.parse(text, dialect, what="expression", row_level=row_level).sql(dialect=dialect)
    except (expressions.ExpressionError, ValueError):
        return " ".join(text.split())


def definition(kpi: Kpi, spec: Spec) -> dict[str, str]:
    """A KPI's definition as comparable text per field (expressions normalised)."""
    dialect = spec.config.dialect

    def text(value: Any) -> str:
        if value is None or value == () or value == {}:
            return ""
        if isinstance(value, tuple | list):
            return ", ".join(text(v) for v in value)
        return str(value)

    targets = [_target_text(t) for t in spec.targets_of(kpi)]
    fields: dict[str, str] = {
        "kind": (kpi.agg or "") if kpi.kind == "simple" else kpi.kind,
        "expression": text(kpi.expr if kpi.expr == "*" else _written(kpi.expr, dialect)),
        "model": text(kpi.model),
        "time": text(kpi.time),
        "filter": text(_written(kpi.filter, dialect)),
        "numerator": text(kpi.numerator),
        "denominator": text(kpi.denominator),
        "formula": text(_written(kpi.formula, dialect, row_level=False)),
        "params": json.dumps(kpi.block, sort_keys=True, default=str) if kpi.block else "",
        "dimensions": ", ".join(
            d.column if d.name == d.column.split(".")[-1] else f"{d.name}={d.column}"
            for d in kpi.dimensions
        ),
        "grains": ", ".join(kpi.grains),
        "label": kpi.label,
        "description": " ".join(kpi.description.split()),
        "category": kpi.category,
        "owner": text(kpi.owner),
        "format": kpi.format,
        "unit": text(kpi.unit),
        "direction": kpi.direction,
        "strategic": "yes" if kpi.strategic else "",
        "targets": "; ".join(targets),
        "status": _thresholds_text(spec, kpi),
        "windows": ", ".join(w.name for w in kpi.windows),
        "deviation": (
            f"periods {kpi.deviation.periods}, k {kpi.deviation.k:g}" if kpi.deviation else ""
        ),
    }
    return fields


def _target_text(target: Any) -> str:
    parts = [f"{target.kind}"]
    if target.value is not None:
        parts.append(f"{target.value:g}")
    if target.series:
        parts.append(", ".join(f"{k}: {v:g}" for k, v in target.series))
    if target.growth is not None:
        parts.append(f"{target.growth:+g}")
    if target.per:
        parts.append(f"per {target.per}")
    if target.where:
        parts.append(f"where {target.where[0]}={target.where[1]}")
    if target.valid_from or target.valid_to:
        parts.append(f"{target.valid_from or ''}..{target.valid_to or ''}")
    return " ".join(parts)


def _thresholds_text(spec: Spec, kpi: Kpi) -> str:
    if kpi.thresholds is None:
        return ""
    return f"on_track {kpi.thresholds.on_track:g}, at_risk {kpi.thresholds.at_risk:g}"


def compare_definitions(base: Spec, head: Spec) -> list[KpiChange]:
    """Added, removed and redefined KPIs (a rename: same definition, new name)."""
    base_kpis = {k.name: k for k in base.kpis}
    head_kpis = {k.name: k for k in head.kpis}
    changes: list[KpiChange] = []
    removed = [n for n in base_kpis if n not in head_kpis]
    removed_by_key: dict[Any, list[str]] = {}
    for name in removed:
        key = definition_key(base_kpis[name], base.config.dialect)
        removed_by_key.setdefault(key, []).append(name)
    renamed: dict[str, str] = {}
    for name, kpi in head_kpis.items():
        if name in base_kpis:
            continue
        candidates = removed_by_key.get(definition_key(kpi, head.config.dialect), [])
        if candidates:
            renamed[name] = candidates.pop(0)
    for name, kpi in head_kpis.items():
        if name in base_kpis:
            before, after = definition(base_kpis[name], base), definition(kpi, head)
            fields = _field_changes(before, after)
            changes.append(KpiChange(name, "changed", kpi.label, kpi.file, definition=fields))
        else:
            old = renamed.get(name)
            fields = (
                _field_changes(definition(base_kpis[old], base), definition(kpi, head))
                if old
                else []
            )
            changes.append(
                KpiChange(name, "added", kpi.label, kpi.file, renamed_from=old, definition=fields)
            )
    for name in removed:
        kpi = base_kpis[name]
        changes.append(KpiChange(name, "removed", kpi.label, kpi.file))
    return changes


def _field_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[FieldChange]:
    return [
        FieldChange(name, before.get(name, ""), after.get(name, ""))
        for name in after
        if before.get(name, "") != after.get(name, "")
    ]


def compare_sql(base: Mapping[str, str], head: Mapping[str, str]) -> list[SqlChange]:
    """Per generated file: added, removed or changed, with line counts and a unified diff."""
    changes: list[SqlChange] = []
    for path in sorted({*base, *head}):
        old, new = base.get(path), head.get(path)
        if old == new:
            continue
        lines = list(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"base/{path}",
                tofile=f"head/{path}",
                n=2,
            )
        )
        added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
        removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
        status: Status = "added" if old is None else "removed" if new is None else "changed"
        changes.append(SqlChange(path, status, added, removed, "".join(lines)))
    return changes


def compare_values(
    base_warehouse: Path,
    head_warehouse: Path,
    pairs: Mapping[str, str],
    top: int = 10,
) -> tuple[dict[str, ValueDiff], dict[str, int], dict[str, int]]:
    """Compare kpi_values of the two warehouses for `pairs` (head name → base name).

    Returns each pair's ValueDiff (keyed by head name) and the row counts of every KPI on
    each side (base, head), for KPIs added or removed.
    """
    import duckdb

    with duckdb.connect(":memory:") as con:
        sides = {}
        for side, warehouse in (("base", base_warehouse), ("head", head_warehouse)):
            sql.execute(con, sql.attach(warehouse, side))
            sides[side] = VALUES_TABLE.node(catalog=side)
        base_counts = dict(sql.execute(con, sql.counts_by_kpi(sides["base"])).fetchall())
        head_counts = dict(sql.execute(con, sql.counts_by_kpi(sides["head"])).fetchall())
        sql.execute(con, sql.fill(sql.PAIRS_TABLE))
        if pairs:
            sql.executemany(con, sql.fill(sql.INSERT_PAIR), list(pairs.items()))
        sql.execute(con, sql.joined(sides["base"], sides["head"], TOLERANCE))
        diffs: dict[str, ValueDiff] = {name: ValueDiff() for name in pairs}
        for kpi, compared, moved, only_base, only_head in sql.execute(
            con, sql.fill(sql.MOVED_PER_KPI)
        ).fetchall():
            diffs[kpi] = ValueDiff(compared, moved, only_base, only_head)
        for kpi, grain, moved in sql.execute(con, sql.fill(sql.MOVED_PER_GRAIN)).fetchall():
            diffs[kpi].moved_by_grain[grain] = moved
        for kpi, diff in diffs.items():
            order = {g: i for i, g in enumerate(GRAINS)}
            diff.moved_by_grain = dict(
                sorted(diff.moved_by_grain.items(), key=lambda item: order.get(item[0], 99))
            )
            del kpi
        for row in sql.execute(con, sql.fill(sql.TOP_MOVES), [top]).fetchall():
            diffs[row[0]].moves.append(Move(*row[1:]))
    return diffs, base_counts, head_counts


def compare(
    base: Loaded,
    head: Loaded,
    base_side: Side,
    head_side: Side,
    base_warehouse: Path | None,
    head_warehouse: Path | None,
    top: int = 10,
) -> DiffReport:
    """Definitions, SQL and (when both warehouses hold kpi_values) values, in one report."""
    report = DiffReport(base_side, head_side, top=top)
    base_side.kpis, head_side.kpis = len(base.spec.kpis), len(head.spec.kpis)
    changes = compare_definitions(base.spec, head.spec)
    report.sql = compare_sql(base.sql, head.sql)
    if base_warehouse is not None and head_warehouse is not None:
        pairs = {
            c.name: c.renamed_from or c.name
            for c in changes
            if c.status == "changed" or c.renamed_from
        }
        diffs, base_counts, head_counts = compare_values(base_warehouse, head_warehouse, pairs, top)
        for change in changes:
            if change.name in diffs:
                change.values = diffs[change.name]
            elif change.status == "added":
                change.rows = head_counts.get(change.name, 0)
            else:
                change.rows = base_counts.get(change.name, 0)
    for change in changes:
        moved = change.values is not None and change.values.changed
        if change.status == "changed" and not change.definition and not moved:
            report.unchanged.append(change.name)
        else:
            report.kpis.append(change)
    order = {"added": 0, "removed": 1, "changed": 2}
    report.kpis.sort(key=lambda c: (order[c.status], c.name))
    report.unchanged.sort()
    return report


