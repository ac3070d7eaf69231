"""Decomposing the change of a KPI between two periods: pure functions, no warehouse.

- additive values (sums, counts, levels): each slice's change is its contribution;
- ratios and averages (Σ numerator / Σ denominator): a mix effect and a rate effect per slice;
- formulas over other KPIs: Shapley values of the inputs;
- anything else (distinct counts whose slices overlap, medians, extremes): each slice's own
  change, which does not add up to the total's.

Every exact decomposition sums to the total change up to floating-point rounding; the
formulas are in docs/explain.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations

from sqlglot import exp

MAX_SHAPLEY_INPUTS = 10  # 2**n formula evaluations
TOLERANCE = 1e-9  # relative: what "sums exactly" means for doubles


class NotDecomposable(ValueError):
    """The numbers do not allow an exact decomposition; the message says why."""


@dataclass(frozen=True)
class Ratio:
    """A slice's numerator and denominator in one period."""

    numerator: float
    denominator: float

    @property
    def rate(self) -> float | None:
        return None if self.denominator == 0 else self.numerator / self.denominator


@dataclass(frozen=True)
class Driver:
    """One slice or input KPI: its value in each period and its part of the total change."""

    name: str
    value: float | None  # in the period explained (a slice's rate for ratios)
    base: float | None  # in the period compared with
    contribution: float | None  # None: not part of an exact decomposition
    mix: float | None = None  # ratios: the effect of the slice's share of the denominator
    rate: float | None = None  # ratios: the effect of the slice's own rate
    share: float | None = None  # ratios: the slice's share of the denominator in the period
    base_share: float | None = None

    @property
    def change(self) -> float | None:
        return None if self.value is None or self.base is None else self.value - self.base


def close(a: float, b: float, scale: float = 0.0) -> bool:
    """Equal up to rounding, relative to the larger of a, b and `scale`."""
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE * max(abs(scale), 1e-300))


def adds_up(parts: Iterable[float | None], total: float | None) -> bool:
    """Whether the parts sum to the total (the slices partition it)."""
    if total is None:
        return False
    values = [p or 0.0 for p in parts]
    return close(math.fsum(values), total, max([abs(total), *map(abs, values)]))


def additive(current: Mapping[str, float | None], base: Mapping[str, float | None]) -> list[Driver]:
    """Each slice's change; a slice missing on one side is 0 there. Exact when the slices
    partition the total in both periods (check with `adds_up`)."""
    drivers = []
    for name in _names(current, base):
        now, then = current.get(name) or 0.0, base.get(name) or 0.0
        drivers.append(Driver(name, now, then, now - then))
    return ranked(drivers)


def mix_rate(current: Mapping[str, Ratio], base: Mapping[str, Ratio]) -> list[Driver]:
    """The change of R = Σn/Σd split per slice i, with shares s = d/Σd, rates r = n/d, the
    primed values in the period explained and R̄ = (R + R')/2:

        mix_i  = (s'_i - s_i) · ((r_i + r'_i)/2 - R̄)
        rate_i = (r'_i - r_i) · (s_i + s'_i)/2

    Σ (mix_i + rate_i) = Σ (s'_i r'_i - s_i r_i) = R' - R, since Σ s = Σ s' = 1. A slice
    with no denominator on one side takes its other side's rate there (its share there is
    0): all its change is mix.
    """
    total_now = math.fsum(r.denominator for r in current.values())
    total_then = math.fsum(r.denominator for r in base.values())
    if total_now == 0 or total_then == 0:
        raise NotDecomposable("the denominator is 0 in one of the periods: the ratio has no value")
    for side in (current, base):
        for name, ratio in side.items():
            if ratio.denominator == 0 and ratio.numerator != 0:
                raise NotDecomposable(
                    f"slice '{name}' has a numerator ({ratio.numerator:g}) but no denominator"
                )
    level_now = math.fsum(r.numerator for r in current.values()) / total_now
    level_then = math.fsum(r.numerator for r in base.values()) / total_then
    mean_level = (level_now + level_then) / 2
    empty = Ratio(0.0, 0.0)
    drivers = []
    for name in _names(current, base):
        now, then = current.get(name, empty), base.get(name, empty)
        rate_now, rate_then = now.rate, then.rate
        if rate_now is None and rate_then is None:
            continue  # no denominator on either side: no part in either rate
        r1 = rate_now if rate_now is not None else rate_then
        r0 = rate_then if rate_then is not None else rate_now
        assert r0 is not None and r1 is not None
        s1, s0 = now.denominator / total_now, then.denominator / total_then
        mix = (s1 - s0) * ((r0 + r1) / 2 - mean_level)
        rate = (r1 - r0) * (s0 + s1) / 2
        drivers.append(Driver(name, rate_now, rate_then, mix + rate, mix, rate, s1, s0))
    return ranked(drivers)


def shapley(
    formula: Callable[[Mapping[str, float]], float | None],
    current: Mapping[str, float],
    base: Mapping[str, float],
) -> list[Driver]:
    """Each input's Shapley value in the change of `formula` from `base` to `current`: its
    marginal effect (moving it from base to current) averaged over every order of moving
    the inputs. The values sum to formula(current) - formula(base) for any formula."""
    names = sorted(current)
    n = len(names)
    if n > MAX_SHAPLEY_INPUTS:
        raise NotDecomposable(f"{n} inputs: more than {MAX_SHAPLEY_INPUTS} to weigh")
    worth: dict[frozenset[str], float] = {}
    for size in range(n + 1):
        for moved in combinations(names, size):
            point = {k: current[k] if k in moved else base[k] for k in names}
            value = formula(point)
            if value is None:
                raise NotDecomposable(
                    "the formula has no value with "
                    + (", ".join(moved) or "no input")
                    + " at the period's values and the others at the base's (a division by 0 or a NULL)"
                )
            worth[frozenset(moved)] = value
    drivers = []
    for name in names:
        others = [k for k in names if k != name]
        parts = []
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for moved in combinations(others, size):
                before = frozenset(moved)
                parts.append(weight * (worth[before | {name}] - worth[before]))
        drivers.append(Driver(name, current[name], base[name], math.fsum(parts)))
    return ranked(drivers)


def own_changes(current: Mapping[str, float | None], base: Mapping[str, float | None]) -> list[Driver]:
    """Each slice's own change, no contribution: for values that do not combine over slices."""
    return sorted(
        (Driver(name, current.get(name), base.get(name), None) for name in _names(current, base)),
        key=lambda d: (-abs(d.change) if d.change is not None else 0.0, d.name),
    )


def ranked(drivers: Iterable[Driver]) -> list[Driver]:
    """The largest |contribution| first, then by name."""
    return sorted(drivers, key=lambda d: (-abs(d.contribution or 0.0), d.name))


def _names(*sides: Mapping[str, object]) -> list[str]:
    return sorted({name for side in sides for name in side})


# --- formulas ---------------------------------------------------------------------------


def evaluate(tree: exp.Expr, values: Mapping[str, float | None]) -> float | None:
    """A derived KPI's formula over its inputs' values, as the generated SQL computes it:
    NULL propagates and a division by 0 is NULL. Only arithmetic and a few NULL-handling
    functions are understood; anything else raises NotDecomposable."""
    if isinstance(tree, exp.Paren):
        return evaluate(tree.this, values)
    if isinstance(tree, exp.Column):
        if tree.name not in values:
            raise NotDecomposable(f"no value for input '{tree.name}'")
        return values[tree.name]
    if isinstance(tree, exp.Literal) and not tree.is_string:
        return float(tree.this)
    if isinstance(tree, exp.Null):
        return None
    if isinstance(tree, exp.Neg):
        inner = evaluate(tree.this, values)
        return None if inner is None else -inner
    if isinstance(tree, exp.Cast) and tree.to.is_type(*exp.DataType.NUMERIC_TYPES):
        return evaluate(tree.this, values)
    if isinstance(tree, (exp.Add, exp.Sub, exp.Mul, exp.Div)):
        left, right = evaluate(tree.this, values), evaluate(tree.expression, values)
        if left is None or right is None:
            return None
        if isinstance(tree, exp.Add):
            return left + right
        if isinstance(tree, exp.Sub):
            return left - right
        if isinstance(tree, exp.Mul):
            return left * right
        return None if right == 0 else left / right
    if isinstance(tree, exp.Coalesce):
        for arg in [tree.this, *tree.expressions]:
            value = evaluate(arg, values)
            if value is not None:
                return value
        return None
    if isinstance(tree, exp.Nullif):
        left, right = evaluate(tree.this, values), evaluate(tree.expression, values)
        return None if left is None or left == right else left
    if isinstance(tree, exp.Abs):
        inner = evaluate(tree.this, values)
        return None if inner is None else abs(inner)
    if isinstance(tree, (exp.Greatest, exp.Least)):  # NULLs are ignored, as in PostgreSQL
        present = [v for v in (evaluate(a, values) for a in [tree.this, *tree.expressions]) if v is not None]
        if not present:
            return None
        return max(present) if isinstance(tree, exp.Greatest) else min(present)
    raise NotDecomposable(f"cannot evaluate '{tree.sql()}' of the formula")
