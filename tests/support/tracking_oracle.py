"""Oracle for the tracking columns: comparisons, targets, status, deviation, windows.

Plain Python over the oracle's period values (tests/support/oracle.py); shares no code
with the compiler.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

from tests.support import oracle

Values = dict[dt.date, float | None]  # period_start → value, one grain and slice


def period_end(grain: str, start: dt.date) -> dt.date:
    if grain == "day":
        return start
    if grain == "week":
        return start + dt.timedelta(days=6)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    month = start.month - 1 + months
    return dt.date(start.year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)


def last_year_start(grain: str, start: dt.date) -> dt.date | None:
    if grain == "week":
        year, week, _ = start.isocalendar()
        weeks_before = dt.date(year - 1, 12, 28).isocalendar()[1]
        return dt.date.fromisocalendar(year - 1, week, 1) if week <= weeks_before else None
    if start.month == 2 and start.day == 29:
        return dt.date(start.year - 1, 2, 28)
    return start.replace(year=start.year - 1)


def previous(values: Values) -> dict[dt.date, float | None]:
    starts = sorted(values)
    return {s: values[starts[i - 1]] if i else None for i, s in enumerate(starts)}


@dataclass
class Target:
    """value per period of `per` (sum carry) or a level; or a growth on last year."""

    value: float | None = None
    per: str | None = None
    series: dict[dt.date, float] | None = None
    growth: float | None = None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None


def target_for(
    targets: list[Target], carry: str, grain: str, start: dt.date, values: Values, as_of: dt.date
) -> tuple[float | None, float | None]:
    """(target, target to date) of one period. Each day takes the first value or series target
    covering it; the period needs every day covered. Otherwise the first growth target."""
    end = period_end(grain, start)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    shares: list[tuple[dt.date, float]] = []
    if carry == "exact":
        for t in targets:
            if t.growth is None and t.per == grain and not _outside(t, start, end):
                stated = t.value if t.series is None else t.series.get(start)
                if stated is not None:
                    return stated, stated
    else:
        for day in days:
            for t in targets:
                if t.growth is not None or _outside(t, day, day):
                    continue
                per_start = oracle.period_start(t.per or "day", day)
                stated = t.value if t.series is None else t.series.get(per_start)
                if stated is not None:
                    length = (period_end(t.per or "day", per_start) - per_start).days + 1
                    shares.append((day, stated / length if carry == "sum" else stated))
                    break
    if shares and len(shares) == len(days):
        if carry == "sum":
            return sum(v for _, v in shares), sum(v for d, v in shares if d <= as_of)
        level = sum(v for _, v in shares) / len(shares)
        return level, level
    for t in targets:
        if t.growth is not None and not _outside(t, start, end):
            ly = last_year_start(grain, start)
            base = values.get(ly) if ly else None
            if base is not None:
                return base * (1 + t.growth), base * (1 + t.growth)
    return None, None


def _outside(t: Target, start: dt.date, end: dt.date) -> bool:
    return bool((t.valid_from and start < t.valid_from) or (t.valid_to and end > t.valid_to))


def status(
    value: float | None,
    target: float | None,
    direction: str,
    on_track: float = 1.0,
    at_risk: float = 0.9,
) -> str | None:
    if value is None or target is None:
        return None
    if direction == "higher":
        return (
            "on_track"
            if value >= on_track * target
            else "at_risk"
            if value >= at_risk * target
            else "off_track"
        )
    return (
        "on_track"
        if value * on_track <= target
        else "at_risk"
        if value * at_risk <= target
        else "off_track"
    )


def deviations(
    values: Values, partial: set[dt.date], periods: int, k: float
) -> dict[dt.date, bool]:
    starts = sorted(values)
    out = {}
    for i, s in enumerate(starts):
        before = [values[p] for p in starts[max(0, i - periods) : i] if p not in partial]
        flag = False
        if (
            len(before) == periods
            and None not in before
            and values[s] is not None
            and s not in partial
        ):
            mean, spread = statistics.mean(before), statistics.stdev(before)  # type: ignore[type-var]
            flag = abs(values[s] - mean) > k * spread  # type: ignore[operator]
        out[s] = flag
    return out


def trailing(
    numerator: Values, denominator: Values | None, periods: int
) -> dict[dt.date, float | None]:
    """Σ over the last `periods` periods (or Σ numerator / Σ denominator), once complete."""
    starts = sorted(numerator)
    out: dict[dt.date, float | None] = {}
    for i, s in enumerate(starts):
        if i + 1 < periods:
            continue
        window = starts[i + 1 - periods : i + 1]
        num = sum(numerator[p] or 0 for p in window)
        if denominator is None:
            out[s] = num
        else:
            den = sum(denominator[p] or 0 for p in window)
            out[s] = num / den if den else None
    return out


def to_date(daily_num: Values, daily_den: Values | None, grain: str) -> dict[dt.date, float | None]:
    out: dict[dt.date, float | None] = {}
    for day in sorted(daily_num):
        start = oracle.period_start(grain, day)
        days = [d for d in daily_num if start <= d <= day]
        num = sum(daily_num[d] or 0 for d in days)
        if daily_den is None:
            out[day] = num
        else:
            den = sum(daily_den[d] or 0 for d in days)
            out[day] = num / den if den else None
    return out
