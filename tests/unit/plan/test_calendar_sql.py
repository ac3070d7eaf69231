"""The calendar's SQL, executed: every day of 2019-2031, every grain and week start, in
both dialects the renderer writes, against a plain Python calendar."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest
from sqlglot import exp

from pipeline.plan import calendar
from pipeline.spec.model import GRAINS

FIRST, LAST = date(2019, 1, 1), date(2031, 12, 31)
SHIFT = {"monday": 0, "sunday": 1, "saturday": 2}  # weekday() of the week's first day: 0, 6, 5


def py_period_start(grain: str, day: date, week_start: str) -> date:
    if grain == "day":
        return day
    if grain == "week":
        first_weekday = (7 - SHIFT[week_start]) % 7
        return day - timedelta(days=(day.weekday() - first_weekday) % 7)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    return date(day.year, (day.month - 1) // months * months + 1, 1)


def py_period_end(grain: str, start: date) -> date:
    if grain == "day":
        return start
    if grain == "week":
        return start + timedelta(days=6)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def py_last_year_start(grain: str, start: date, week_start: str) -> date | None:
    if grain == "week":
        if week_start != "monday":
            return start - timedelta(days=364)
        year, week, _ = start.isocalendar()
        try:
            return date.fromisocalendar(year - 1, week, 1)
        except ValueError:  # week 53 of a year whose previous year had 52
            return None
    try:
        return start.replace(year=start.year - 1)
    except ValueError:  # February 29
        return start.replace(year=start.year - 1, day=28)


@pytest.mark.parametrize("dialect", ["postgres", "duckdb"])
@pytest.mark.parametrize("week_start", sorted(SHIFT))
def test_the_sql_calendar_agrees_with_python_on_every_day(dialect: str, week_start: str) -> None:
    day = exp.column("d")
    columns: list[exp.Expr] = [day.copy()]
    for grain in GRAINS:
        start = calendar.period_start(grain, day.copy(), week_start)
        columns += [
            start,
            calendar.period_end(grain, start.copy()),
            calendar.last_year_start(grain, start.copy(), week_start),
            calendar.first_in_period(grain, day.copy(), exp.column("previous_day"), week_start),
        ]
    days = (
        f"select (date '{FIRST}' + i::int) as d, (date '{FIRST}' + i::int - 1) as previous_day"
        f" from range({(LAST - FIRST).days + 1}) t(i)"
    )
    query = exp.select(*columns).from_(exp.paren(exp.maybe_parse(days), copy=False).as_("days"))
    rows = duckdb.sql(query.sql(dialect=dialect)).fetchall()
    assert len(rows) == (LAST - FIRST).days + 1
    for row in rows:
        d, rest = row[0], row[1:]
        for i, grain in enumerate(GRAINS):
            start, end, last_year, first = rest[4 * i : 4 * i + 4]
            expected_start = py_period_start(grain, d, week_start)
            assert start == expected_start, (grain, d)
            assert end == py_period_end(grain, expected_start), (grain, d)
            assert last_year == py_last_year_start(grain, expected_start, week_start), (grain, d)
            # the day before is in an earlier period exactly when this day starts one
            assert first == (expected_start == d), (grain, d)
            assert calendar.is_period_start(grain, d, week_start) == (expected_start == d)
