"""Grains and their periods: the one place that decides how a day maps to a period.

Weeks are ISO weeks (Monday start) unless the project sets another week start; a
period is named by its first day and ends on its last day (inclusive).
"""

from __future__ import annotations

from sqlglot import exp

from pipeline.spec.model import GRAINS

WEEK_START_OFFSET = {"monday": 0, "sunday": 1, "saturday": 2}  # days to shift before truncating
COARSE_GRAINS = GRAINS[1:]
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_DATE = exp.DataType.build("date")  # built once, not parsed per call


def period_start(grain: str, day: exp.Expr, week_start: str = "monday") -> exp.Expr:
    """The first day of the `grain` period holding `day` (a DATE expression)."""
    if grain == "day":
        return day
    offset = WEEK_START_OFFSET[week_start] if grain == "week" else 0
    shifted = (
        exp.Add(this=day.copy(), expression=exp.Literal.number(offset)) if offset else day.copy()
    )
    truncated = exp.cast(
        exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string(grain), shifted]), _DATE
    )
    return exp.Sub(this=truncated, expression=exp.Literal.number(offset)) if offset else truncated


def period_end(grain: str, start: exp.Expr) -> exp.Expr:
    """The last day of the period that starts on `start`."""
    if grain == "day":
        return start
    if grain == "week":
        return exp.Add(this=start, expression=exp.Literal.number(6))
    months = exp.Interval(this=exp.Literal.string(str(_MONTHS[grain])), unit=exp.var("month"))
    next_start = exp.cast(exp.Add(this=start, expression=months), _DATE)
    return exp.Sub(this=next_start, expression=exp.Literal.number(1))
