"""The calendar's SQL, executed: every day of 2019-2031, every grain and week start, in
both dialects the renderer writes, against a plain Python calendar."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest
from sqlglot import exp

from pipeline.semantics import calendar
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


OFFSETS = [(1, "period"), (3, "period"), (1, "day"), (7, "day"), (2, "week"), (1, "month"),
           (3, "month"), (1, "quarter"), (1, "year"), (2, "year")]  # fmt: skip


def py_offset_start(grain: str, start: date, count: int, unit: str, week_start: str) -> date | None:
    """The period `count` `unit`s before, by plain date arithmetic (month ends clamped)."""
    if unit == "period":
        unit = grain
    if unit in ("day", "week"):
        return start - timedelta(days=count * (7 if unit == "week" else 1))
    if grain == "week":  # 1 year: last year's week
        return py_last_year_start(grain, start, week_start)
    months = count * {"month": 1, "quarter": 3, "year": 12}[unit]
    year, month = divmod(start.year * 12 + start.month - 1 - months, 12)
    last_day = (date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month + 1, min(start.day, last_day))


@pytest.mark.parametrize("dialect", ["postgres", "duckdb"])
@pytest.mark.parametrize("week_start", sorted(SHIFT))
def test_offsets_agree_with_python_on_every_period(dialect: str, week_start: str) -> None:
    accepted = [
        (grain, count, unit)
        for grain in GRAINS
        for count, unit in OFFSETS
        if calendar.offset_problem(grain, count, unit) is None
    ]
    # what is refused: a week by months or by more than one year, a coarse period by a
    # fraction of itself
    assert ("week", 1, "month") not in accepted and ("week", 2, "year") not in accepted
    assert ("quarter", 1, "month") not in accepted and ("year", 1, "quarter") not in accepted
    assert ("month", 1, "quarter") in accepted and ("day", 1, "month") in accepted
    day = exp.column("d")
    columns: list[exp.Expr] = [day.copy()]
    for grain, count, unit in accepted:
        start = calendar.period_start(grain, day.copy(), week_start)
        columns += [start, calendar.offset_start(grain, start.copy(), count, unit, week_start)]
    days = f"select (date '{FIRST}' + i::int) as d from range({(LAST - FIRST).days + 1}) t(i)"
    query = exp.select(*columns).from_(exp.paren(exp.maybe_parse(days), copy=False).as_("days"))
    rows = duckdb.sql(query.sql(dialect=dialect)).fetchall()
    nulls = 0
    for row in rows:
        for i, (grain, count, unit) in enumerate(accepted):
            start, shifted = row[1 + 2 * i], row[2 + 2 * i]
            expected = py_offset_start(grain, start, count, unit, week_start)
            assert shifted == expected, (grain, count, unit, start)
            if expected is None:
                nulls += 1
            else:  # a period of the same grain
                assert py_period_start(grain, expected, week_start) == expected
    assert nulls == (7 * 2 if week_start == "monday" else 0)  # week 53 of 2020 and 2026, 7 days each
    # month ends clamp: March 31 a month before is February's last day
    assert py_offset_start("day", date(2024, 3, 31), 1, "month", "monday") == date(2024, 2, 29)
    assert py_offset_start("day", date(2023, 3, 31), 1, "month", "monday") == date(2023, 2, 28)
