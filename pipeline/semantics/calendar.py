"""Grains and their periods: the one place that decides how a day maps to a period.

Weeks are ISO weeks (Monday start) unless the project sets another week start; a
period is named by its first day and ends on its last day (inclusive).
"""

from __future__ import annotations

from datetime import date

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


def first_in_period(
    grain: str, day: exp.Expr, previous_day: exp.Expr, week_start: str = "monday"
) -> exp.Expr:
    """Whether a sighting on `day` is its entity's first in its `grain` period: the one
    before it (`previous_day`, NULL for none) is in an earlier period."""
    earlier = exp.LT(this=previous_day, expression=period_start(grain, day, week_start))
    return exp.Coalesce(this=earlier, expressions=[exp.Boolean(this=True)])


def period_end(grain: str, start: exp.Expr) -> exp.Expr:
    """The last day of the period that starts on `start`."""
    if grain == "day":
        return start
    if grain == "week":
        return exp.Add(this=start, expression=exp.Literal.number(6))
    months = exp.Interval(this=exp.Literal.string(str(_MONTHS[grain])), unit=exp.var("month"))
    next_start = exp.cast(exp.Add(this=start, expression=months), _DATE)
    return exp.Sub(this=next_start, expression=exp.Literal.number(1))


def last_year_start(grain: str, start: exp.Expr, week_start: str = "monday") -> exp.Expr:
    """The start of the same period one year before: the same calendar month, quarter or
    year; the same date for a day (February 29 compares with February 28); the same ISO
    week number of the previous ISO year for a week (week 53 has none when that year had
    52 weeks: NULL). Weeks not starting on Monday compare with the week 52 weeks before."""
    if grain != "week":
        year = exp.Interval(this=exp.Literal.string("1"), unit=exp.var("year"))
        return exp.cast(exp.Sub(this=start, expression=year), _DATE)
    if week_start != "monday":
        return exp.Sub(this=start, expression=exp.Literal.number(364))
    previous_iso_year = exp.Sub(
        this=_extract("isoyear", start.copy()), expression=exp.Literal.number(1)
    )
    weeks_in_previous = _extract(
        "week",
        exp.Anonymous(
            this="make_date",
            expressions=[previous_iso_year, exp.Literal.number(12), exp.Literal.number(28)],
        ),
    )
    candidate = exp.Sub(
        this=start.copy(),
        expression=exp.Mul(this=exp.Literal.number(7), expression=weeks_in_previous),
    )
    same_week = exp.EQ(
        this=_extract("week", candidate.copy()), expression=_extract("week", start.copy())
    )
    return exp.Case(ifs=[exp.If(this=same_week, true=candidate)])


def _extract(part: str, value: exp.Expr) -> exp.Expr:
    """An integer date part (EXTRACT gives numeric on PostgreSQL, which make_date refuses)."""
    return exp.cast(exp.Extract(this=exp.var(part), expression=value), exp.DataType.build("int"))


def is_period_start(grain: str, day: date, week_start: str = "monday") -> bool:
    """Whether `day` starts a period of `grain` (to check target series keys)."""
    if grain == "day":
        return True
    if grain == "week":
        return (day.weekday() + WEEK_START_OFFSET[week_start]) % 7 == 0
    return day.day == 1 and (day.month - 1) % _MONTHS[grain] == 0


# --- offsets: a KPI shifted back in time (docs/kinds.md, "offset") ------------------------

OFFSET_UNITS = ("period", "day", "week", "month", "quarter", "year")
_UNIT_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def parse_offset(text: str) -> tuple[int, str] | None:
    """'1 month', '2 periods', '7 days' → (count, unit); None when it is not that shape."""
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1:
        return None
    count, unit = int(parts[0]), parts[1].lower()
    unit = unit[:-1] if unit.endswith("s") and unit[:-1] in OFFSET_UNITS else unit
    return (count, unit) if unit in OFFSET_UNITS else None


def offset_problem(grain: str, count: int, unit: str) -> str | None:
    """Why shifting `grain` periods back by `count` `unit`s does not give a period of the same
    grain (None: it does). A day moves by any offset; a week by whole weeks or by exactly
    one year (last year's rule); a month, quarter or year by whole periods of its own."""
    if unit == "period" or grain == "day":
        return None
    if grain == "week":
        if unit == "week" or (unit == "day" and count % 7 == 0) or (unit, count) == ("year", 1):
            return None
        return "a week moves by whole weeks, or by 1 year to the same ISO week of the year before"
    if unit in _UNIT_MONTHS and count * _UNIT_MONTHS[unit] % _MONTHS[grain] == 0:
        return None
    return f"a {grain} moves by whole {grain}s"


def offset_start(
    grain: str, start: exp.Expr, count: int, unit: str, week_start: str = "monday"
) -> exp.Expr:
    """The start of the `grain` period `count` `unit`s before the one starting at `start`
    (an offset `offset_problem` accepts). N periods: N days, weeks, months, quarters or
    years. Days move by days; months, quarters and years by calendar months, the day of
    the month clamped to the month's last (March 31 minus 1 month = February 28 or 29);
    1 year at week grain is `last_year_start`'s week (NULL for a week 53 without one)."""
    if unit == "period":
        unit = "day" if grain == "day" else grain
    if grain == "week" and unit == "year":
        return last_year_start(grain, start, week_start)
    if unit in ("day", "week"):
        days = count * (7 if unit == "week" else 1)
        return exp.Sub(this=start, expression=exp.Literal.number(days))
    months = exp.Interval(
        this=exp.Literal.string(str(count * _UNIT_MONTHS[unit])), unit=exp.var("month")
    )
    return exp.cast(exp.Sub(this=start, expression=months), _DATE)
