"""KPI hygiene: warnings, never errors, about what the KPI-tracking articles call for.

Every KPI has an owner who answers for it, a description saying what it measures, and a
target to judge it by; two KPIs never measure the same thing under two names; and only a
handful are strategic (`config.strategic_limit`, default 10). A project with warnings
still validates and compiles.
"""

from __future__ import annotations

import json
from collections.abc import Hashable

from pipeline.errors import Issue, warning
from pipeline.spec import expressions
from pipeline.spec.model import Kpi, Spec


def hygiene(spec: Spec) -> list[Issue]:
    """Warnings about ownership, documentation, targets, duplicates and strategic KPIs."""
    issues: list[Issue] = []
    for kpi in spec.kpis:
        where = f"kpi '{kpi.name}': "
        if not (kpi.owner or "").strip():
            issues.append(
                warning(f"{where}no owner: say who answers for it (owner:)", kpi.location)
            )
        if not kpi.description.strip():
            issues.append(
                warning(f"{where}no description: say what it measures (description:)", kpi.location)
            )
        if not spec.targets_of(kpi):
            issues.append(
                warning(
                    f"{where}no target: a KPI needs a target to be judged by (targets:)",
                    kpi.location,
                )
            )
    issues += _duplicates(spec)
    issues += _strategic(spec)
    return issues


def definition_key(kpi: Kpi, dialect: str) -> Hashable:
    """What a KPI computes, with expressions normalised: equal keys, same numbers.

    Names, labels, dimensions, grains, targets and presentation are not part of it.
    """
    if kpi.kind == "ratio":
        return ("ratio", kpi.numerator, kpi.denominator)
    if kpi.kind == "derived":
        return ("derived", normalise(kpi.formula, dialect, row_level=False))
    expr = kpi.expr if kpi.expr == "*" else normalise(kpi.expr, dialect)
    return (
        kpi.kind,
        kpi.agg,
        expr,
        kpi.model,
        kpi.time,
        normalise(kpi.filter, dialect),
        json.dumps(kpi.block, sort_keys=True, default=str),
    )


def normalise(text: str | None, dialect: str, *, row_level: bool = True) -> Hashable:
    """An expression's shape (case, spacing, redundant parentheses and the order of AND-ed
    terms do not matter); the text with its spacing collapsed when it does not parse
    (validate reports that)."""
    if text is None:
        return None
    try:
        return expressions.shape(text, dialect, row_level)
    except (expressions.ExpressionError, ValueError):
        return " ".join(text.split())


def _duplicates(spec: Spec) -> list[Issue]:
    issues: list[Issue] = []
    first: dict[Hashable, Kpi] = {}
    for kpi in spec.kpis:
        key = definition_key(kpi, spec.config.dialect)
        other = first.setdefault(key, kpi)
        if other is not kpi and other.name != kpi.name:  # same name twice is validate's error
            issues.append(
                warning(
                    f"kpi '{kpi.name}': same definition as '{other.name}' ({other.location});"
                    " keep one of them",
                    kpi.location,
                )
            )
    return issues


def _strategic(spec: Spec) -> list[Issue]:
    strategic = [k for k in spec.kpis if k.strategic]
    limit = spec.config.strategic_limit
    if len(strategic) <= limit:
        return []
    extra = strategic[limit]
    names = ", ".join(k.name for k in strategic)
    return [
        warning(
            f"{len(strategic)} KPIs are marked strategic, more than the limit of {limit}"
            f" (config.strategic_limit): {names}; steer by a handful",
            extra.at("strategic"),
        )
    ]
