"""The projection of a partial period to its end (docs/projections.md), in plain Python
over a KPI's daily values: the oracle of kpi_values' projected_value, reused by
bench/backtest_projections.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

Daily = Mapping[dt.date, float | None]
REFERENCE_WEEKS = (50, 51, 52, 53, 54)  # the same weekdays, about the same dates a year before


def _total(daily: Daily, first: dt.date, last: dt.date) -> float | None:
    """The sum of the present values from `first` to `last` (None when there are none)."""
    present = [
        v
        for i in range((last - first).days + 1)
        if (v := daily.get(first + dt.timedelta(days=i))) is not None
    ]
    return sum(present) if present else None


def expected_share(daily: Daily, start: dt.date, end: dt.date, last_day: dt.date) -> float:
    """The share of the period `start`..`end`'s total expected by `last_day`: half the share
    its references reached by as many days (the same days 50 to 54 weeks before, each one the
    history holds all days of; their totals summed), half the share of days elapsed; the
    latter alone when there is no reference or a reference total is not positive."""
    length, elapsed = (end - start).days + 1, (last_day - start).days + 1
    days_share = elapsed / length
    wholes, parts = [], []
    for weeks in REFERENCE_WEEKS:
        first = start - dt.timedelta(weeks=weeks)
        if all(first + dt.timedelta(days=i) in daily for i in range(length)):
            wholes.append(_total(daily, first, first + dt.timedelta(days=length - 1)))
            parts.append(_total(daily, first, first + dt.timedelta(days=elapsed - 1)))
    total = sum(w for w in wholes if w is not None) if any(w is not None for w in wholes) else None
    to_date = sum(p for p in parts if p is not None) if any(p is not None for p in parts) else None
    if total is None or to_date is None or min(total, to_date) <= 0:
        return days_share
    return (to_date / total + days_share) / 2


def project(
    numerator: Daily,
    denominator: Daily | None,
    start: dt.date,
    end: dt.date,
    last_day: dt.date,
    *,
    naive: bool = False,
) -> float | None:
    """The projected value of the period at its end, from the days up to `last_day`: an
    additive KPI (`denominator` None) divides its total to date by the expected share; a
    ratio paces its numerator and its denominator. `naive`: the run rate (the share of days
    elapsed) instead."""
    days_share = ((last_day - start).days + 1) / ((end - start).days + 1)

    def paced(daily: Daily) -> float | None:
        to_date = _total(daily, start, last_day)
        if to_date is None:
            return None
        return to_date / (days_share if naive else expected_share(daily, start, end, last_day))

    top = paced(numerator)
    if denominator is None:
        return top
    bottom = paced(denominator)
    return None if top is None or not bottom else top / bottom
