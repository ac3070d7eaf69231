"""An independent oracle: KPI values computed in plain Python from raw rows.

It shares no code with the compiler: periods come from Python's calendar arithmetic,
row expressions and filters are Python functions written by each test.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

Row = dict[str, Any]
WEEKDAY = {"monday": 0, "sunday": 6, "saturday": 5}


def period_start(grain: str, day: dt.date, week_start: str = "monday") -> dt.date:
    if grain == "day":
        return day
    if grain == "week":
        return day - dt.timedelta(days=(day.weekday() - WEEKDAY[week_start]) % 7)
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return dt.date(day.year, 1, 1)


def periods(grain: str, first: dt.date, last: dt.date, week_start: str = "monday") -> list[dt.date]:
    out: list[dt.date] = []
    day = first
    while day <= last:
        start = period_start(grain, day, week_start)
        if not out or out[-1] != start:
            out.append(start)
        day += dt.timedelta(days=1)
    return out


@dataclass
class Simple:
    """A simple KPI in oracle terms: Python functions instead of SQL."""

    agg: str  # sum, count, count_distinct, average, min, max, median
    time: str
    value: Callable[[Row], Any] = lambda row: 1
    where: Callable[[Row], bool] = lambda row: True
    dimensions: dict[str, Callable[[Row], Any]] = field(default_factory=dict)


def aggregate(agg: str, values: Sequence[Any]) -> float | None:
    present = [v for v in values if v is not None]
    if agg == "sum":
        return float(sum(present))
    if agg == "count":
        return float(len(present))
    if agg == "count_distinct":
        return float(len(set(present)))
    if not present:
        return None
    if agg == "average":
        return sum(present) / len(present)
    if agg == "min":
        return float(min(present))
    if agg == "max":
        return float(max(present))
    return float(statistics.median(present))


def simple_values(
    rows: Iterable[Row],
    kpi: Simple,
    grain: str,
    dimension: str = "total",
    week_start: str = "monday",
) -> dict[tuple[dt.date, str], float | None]:
    """{(period_start, dimension_value): value}, dense over periods and observed slices."""
    rows = [r for r in rows if r[kpi.time] is not None]
    if not rows:
        return {}
    days = [_day(r[kpi.time]) for r in rows]

    def slice_of(row: Row) -> str:
        if dimension == "total":
            return "total"
        value = kpi.dimensions[dimension](row)
        return (
            "(null)"
            if value is None
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )

    slices = sorted({slice_of(r) for r in rows})
    buckets: dict[tuple[dt.date, str], list[Any]] = defaultdict(list)
    for row, day in zip(rows, days, strict=True):
        if kpi.where(row):
            buckets[(period_start(grain, day, week_start), slice_of(row))].append(kpi.value(row))
    return {
        (start, s): aggregate(kpi.agg, buckets.get((start, s), []))
        for start in periods(grain, min(days), max(days), week_start)
        for s in slices
    }


def ratio(numerator: dict, denominator: dict) -> dict[tuple[dt.date, str], float | None]:
    keys = set(numerator) | set(denominator)
    out = {}
    for key in keys:
        n, d = numerator.get(key), denominator.get(key)
        out[key] = None if n is None or not d else n / d
    return out


def _day(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def slice_label(value: Any) -> str:
    """How a dimension value is published: NULL as '(null)', booleans as 'true'/'false'."""
    if value is None:
        return "(null)"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def exact_aggregate(agg: str, values: Sequence[Any]) -> Fraction | None:
    """`aggregate` in exact arithmetic (ints, Decimals, Fractions in; a Fraction out), so that
    ratios and formulas over the results carry no rounding before the final comparison."""
    present = [v for v in values if v is not None]
    if agg in ("sum", "count", "count_distinct"):
        if agg == "count":
            return Fraction(len(present))
        if agg == "count_distinct":
            return Fraction(len(set(present)))
        return Fraction(sum(present))
    if not present:
        return None
    if agg == "average":
        return Fraction(sum(present)) / len(present)
    if agg == "min":
        return Fraction(min(present))
    if agg == "max":
        return Fraction(max(present))
    ordered = sorted(present)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Fraction(ordered[middle])
    return (Fraction(ordered[middle - 1]) + Fraction(ordered[middle])) / 2
