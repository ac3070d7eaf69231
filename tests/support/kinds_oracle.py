"""An independent oracle for the entity- and time-aware KPI kinds (docs/kinds.md), in plain
Python over lists of row dicts: naive loops over periods, days and entities, no SQL and no
code from pipeline/. Every function returns {(period_start, slice): value}, dense over the
periods of the data's range and the slices observed in its rows, like the values models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.oracle import period_start, periods, slice_label

Row = dict[str, Any]
Values = dict[tuple[dt.date, str], float | None]
ONE_DAY = dt.timedelta(days=1)


def day_of(value: Any) -> dt.date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, dt.datetime) else value


def period_end(grain: str, start: dt.date) -> dt.date:
    """The last day of the period starting on `start` (the day before the next one starts)."""
    if grain == "day":
        return start
    if grain == "week":
        return start + dt.timedelta(days=6)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    month = start.month - 1 + months
    return dt.date(start.year + month // 12, month % 12 + 1, 1) - ONE_DAY


@dataclass
class Rows:
    """Rows of one model as the oracle reads them: a time (or start and end), an entity,
    an amount, a filter and slicing functions, all plain Python."""

    rows: list[Row]
    time: str | None = None
    start: str | None = None
    end: str | None = None
    entity: str | None = None
    amount: Callable[[Row], Any] = lambda row: 1
    where: Callable[[Row], bool | None] = lambda row: True
    dimensions: dict[str, Callable[[Row], Any]] = field(default_factory=dict)
    week_start: str = "monday"

    def period(self, grain: str, day: dt.date) -> dt.date:
        return period_start(grain, day, self.week_start)

    def placed(self) -> list[Row]:
        """Rows that have a time (or a start): the data, filter or not."""
        column = self.time or self.start
        assert column is not None
        return [r for r in self.rows if r[column] is not None]

    def kept(self) -> list[Row]:
        return [r for r in self.placed() if self.where(r) is True]

    def day(self, row: Row) -> dt.date:
        column = self.time or self.start
        assert column is not None
        found = day_of(row[column])
        assert found is not None
        return found

    def end_day(self, row: Row) -> dt.date | None:
        assert self.end is not None
        return day_of(row[self.end])

    def range(self) -> tuple[dt.date, dt.date] | None:
        placed = self.placed()
        if not placed:
            return None
        days = [self.day(r) for r in placed]
        if self.end is not None:
            days += [d for d in (self.end_day(r) for r in placed) if d is not None]
        return min(days), max(days)

    def slice_of(self, row: Row, dimension: str) -> str:
        return "total" if dimension == "total" else slice_label(self.dimensions[dimension](row))

    def slices(self, dimension: str) -> list[str]:
        return sorted({self.slice_of(r, dimension) for r in self.placed()})


def _dense(
    source: Rows, grain: str, dimension: str, compute: Callable[[dt.date, str], float | None]
) -> Values:
    bounds = source.range()
    if bounds is None:
        return {}
    return {
        (start, s): compute(start, s)
        for start in periods(grain, bounds[0], bounds[1], source.week_start)
        for s in source.slices(dimension)
    }


def _div(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


# --- cumulative -------------------------------------------------------------------------


def cumulative(source: Rows, grain: str, dimension: str = "total") -> Values:
    """Σ of the kept rows' amounts from the first day to the period's last day."""

    kept = [
        (source.day(r), source.slice_of(r, dimension), source.amount(r) or 0) for r in source.kept()
    ]

    def compute(start: dt.date, s: str) -> float:
        last = period_end(grain, start)
        return float(sum(amount for day, label, amount in kept if day <= last and label == s))

    return _dense(source, grain, dimension, compute)


# --- lifetime value ---------------------------------------------------------------------


def lifetime(source: Rows, grain: str, horizon_days: int | None = None) -> Values:
    kept = [r for r in source.kept() if r[source.entity or ""] is not None]
    bounds = source.range()
    assert source.entity is not None
    entity = source.entity

    def life_to_date(start: dt.date, _: str) -> float | None:
        last = period_end(grain, start)
        seen = [r for r in kept if source.day(r) <= last]
        total = sum(source.amount(r) or 0 for r in seen)
        return _div(float(total), len({r[entity] for r in seen}))

    def cohort(start: dt.date, _: str) -> float | None:
        assert bounds is not None and horizon_days is not None
        if period_end(grain, start) + dt.timedelta(days=horizon_days - 1) > bounds[1]:
            return None  # the horizon of the period's last possible newcomer is not over
        firsts: dict[Any, dt.date] = {}
        for r in kept:
            day = source.day(r)
            firsts[r[entity]] = min(day, firsts.get(r[entity], day))
        members = [e for e, f in firsts.items() if source.period(grain, f) == start]
        total = sum(
            source.amount(r) or 0
            for r in kept
            if r[entity] in members
            and firsts[r[entity]]
            <= source.day(r)
            < firsts[r[entity]] + dt.timedelta(days=horizon_days)
        )
        return _div(float(total), len(members))

    return _dense(source, grain, "total", life_to_date if horizon_days is None else cohort)


# --- conversion -------------------------------------------------------------------------


def conversion(
    base: Rows, event: Rows, within_days: int, grain: str, dimension: str = "total"
) -> Values:
    assert base.entity is not None and event.entity is not None
    events = [(r[event.entity], event.day(r)) for r in event.kept() if r[event.entity] is not None]

    def converted(row: Row) -> bool:
        who, day = row[base.entity or ""], base.day(row)
        return who is not None and any(
            e == who and day <= d <= day + dt.timedelta(days=within_days) for e, d in events
        )

    def compute(start: dt.date, s: str) -> float | None:
        rows = [
            r
            for r in base.kept()
            if base.period(grain, base.day(r)) == start and base.slice_of(r, dimension) == s
        ]
        return _div(float(sum(converted(r) for r in rows)), len(rows))

    return _dense(base, grain, dimension, compute)


# --- retention and churn ----------------------------------------------------------------


def active(source: Rows, grain: str, start: dt.date, dimension: str, s: str) -> set[Any]:
    """Entities with a kept row in the period, or whose interval overlaps it."""
    assert source.entity is not None
    last = period_end(grain, start)
    out = set()
    for r in source.kept():
        if r[source.entity] is None or source.slice_of(r, dimension) != s:
            continue
        first = source.day(r)
        if source.end is None:
            inside = start <= first <= last
        else:
            end = source.end_day(r)
            inside = first <= last and (end is None or (end >= start and end >= first))
        if inside:
            out.add(r[source.entity])
    return out


def retention(source: Rows, grain: str, dimension: str = "total", *, churn: bool = False) -> Values:
    bounds = source.range()

    def compute(start: dt.date, s: str) -> float | None:
        assert bounds is not None
        before = source.period(grain, start - ONE_DAY)
        if before < source.period(grain, bounds[0]):
            return None  # the previous period is before the data
        earlier = active(source, grain, before, dimension, s)
        stayed = earlier & active(source, grain, start, dimension, s)
        kept = len(earlier) - len(stayed) if churn else len(stayed)
        return _div(float(kept), len(earlier))

    return _dense(source, grain, dimension, compute)


# --- snapshot ---------------------------------------------------------------------------


def snapshot(source: Rows, grain: str, dimension: str = "total", take: str = "last") -> Values:
    bounds = source.range()
    assert bounds is not None
    if source.end is None:
        days = sorted({source.day(r) for r in source.placed()})
    else:
        days = [bounds[0] + dt.timedelta(days=i) for i in range((bounds[1] - bounds[0]).days + 1)]

    by_day: dict[dt.date, list[Row]] = {}
    for r in source.kept():
        by_day.setdefault(source.day(r), []).append(r)

    def level(day: dt.date, s: str) -> float:
        total = 0.0
        for r in by_day.get(day, []) if source.end is None else source.kept():
            if source.slice_of(r, dimension) != s:
                continue
            first = source.day(r)
            if source.end is None:
                inside = first == day
            else:
                end = source.end_day(r)
                inside = first <= day and (end is None or (day <= end and first <= end))
            if inside:
                total += float(source.amount(r) or 0)
        return total

    def compute(start: dt.date, s: str) -> float | None:
        inside = [d for d in days if start <= d <= period_end(grain, start)]
        if not inside:
            return None
        if take == "last":
            return level(inside[-1], s)
        return sum(level(d, s) for d in inside) / len(inside)

    return _dense(source, grain, dimension, compute)


def counted(column: str) -> Callable[[Row], int]:
    """A `count: column` as an amount: 1 when the column is set."""
    return lambda row: int(row[column] is not None)
