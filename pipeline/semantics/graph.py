"""KPI dependencies: which KPIs a ratio, derived, cumulative or offset KPI reads, cycles, and a build order."""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from pipeline.spec import expressions
from pipeline.spec.model import Kpi, Spec


def dependencies(kpi: Kpi, dialect: str) -> tuple[str, ...]:
    """The KPIs `kpi` is computed from, in order of first mention."""
    if kpi.kind in ("ratio", "cumulative", "offset"):
        return kpi.inputs
    if kpi.kind == "derived" and kpi.formula:
        try:
            tree = expressions.parse(kpi.formula, dialect, what="formula", row_level=False)
        except expressions.ExpressionError:
            return ()
        names = [c.name for c in tree.find_all(exp.Column)]
        return tuple(dict.fromkeys(names))
    return ()


def dependency_map(spec: Spec) -> dict[str, tuple[str, ...]]:
    return {k.name: dependencies(k, spec.config.dialect) for k in spec.kpis}


def find_cycles(deps: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Each cycle once, as the path a → b → … → a, starting from its first KPI by name."""
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 on the current path, 2 finished

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in deps.get(name, ()):
            if dep not in deps:
                continue
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    start = cycle.index(min(cycle[:-1]))
                    cycles.append(cycle[start:-1] + cycle[:start] + [cycle[start]])
            elif state.get(dep) is None:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in sorted(deps):
        if name not in state:
            visit(name, [name])
    return cycles


def build_order(deps: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Names so that every KPI comes after the KPIs it reads (acyclic input)."""
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        done.add(name)
        for dep in deps.get(name, ()):
            if dep in deps:
                visit(dep)
        order.append(name)

    for name in sorted(deps):
        visit(name)
    return order
