"""The history's calendar: its bounds, its month chunks and the demand curves over its days.

Times inside the generator are int64 seconds since the Unix epoch (`datetime64[s]` when put
in frames); days are `datetime64[D]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

START = np.datetime64("2024-11-01", "D")
END = np.datetime64("2026-11-15", "D")  # inclusive: the last day of the history
DAY = 86_400
START_S = int(START.astype("datetime64[s]").astype(np.int64))
END_S = int((END + 1).astype("datetime64[s]").astype(np.int64)) - 1  # 2026-11-15 23:59:59
YEAR_GROWTH = 1.6  # demand grows ~60% a year

# Black Friday and the following Cyber Monday inside the history.
BLACK_FRIDAYS = np.array(["2024-11-29", "2025-11-28"], dtype="datetime64[D]")

# Weekday multipliers, Monday first: the shop's web traffic peaks at the weekend,
# the CRM (leads, tickets) is quiet then.
WEB_WEEKDAY = np.array([0.93, 0.90, 0.91, 0.93, 0.98, 1.18, 1.17])
CRM_WEEKDAY = np.array([1.15, 1.12, 1.10, 1.08, 1.00, 0.35, 0.20])


@dataclass(frozen=True)
class Month:
    """One generation chunk: a calendar month clipped to the history."""

    index: int
    first: np.datetime64  # first day in the history
    last: np.datetime64  # last day in the history (inclusive)

    @property
    def days(self) -> np.ndarray:
        return np.arange(self.first, self.last + 1, dtype="datetime64[D]")

    @property
    def start_s(self) -> int:
        return to_seconds(self.first)

    @property
    def end_s(self) -> int:
        """First second after the chunk."""
        return to_seconds(self.last + 1)


def to_seconds(day: np.datetime64) -> int:
    return int(day.astype("datetime64[D]").astype("datetime64[s]").astype(np.int64))


def months() -> list[Month]:
    """The history's month chunks, oldest first (the last one is partial)."""
    first_months = np.arange(
        START.astype("datetime64[M]"), END.astype("datetime64[M]") + 1, dtype="datetime64[M]"
    )
    out = []
    for i, m in enumerate(first_months):
        first = max(m.astype("datetime64[D]"), START)
        last = min((m + 1).astype("datetime64[D]") - 1, END)
        out.append(Month(i, first, last))
    return out


def weekday(days: np.ndarray) -> np.ndarray:
    """0 = Monday … 6 = Sunday."""
    return (days.astype(np.int64) + 3) % 7


def years_since_start(days: np.ndarray) -> np.ndarray:
    return (days - START).astype(np.int64) / 365.25


def growth(days: np.ndarray) -> np.ndarray:
    return np.power(YEAR_GROWTH, years_since_start(days))


def seasonality(days: np.ndarray) -> np.ndarray:
    """Yearly shape: a holiday peak (late Nov-Dec, Black Friday the top day), a summer dip."""
    year_start = days.astype("datetime64[Y]").astype("datetime64[D]")
    doy = (days - year_start).astype(np.int64)  # 0 = Jan 1
    season = 1.0 - 0.18 * np.exp(-0.5 * ((doy - 200) / 28.0) ** 2)  # summer dip, late July
    season -= 0.10 * np.exp(-0.5 * ((doy - 20) / 12.0) ** 2)  # January lull
    # Holiday build-up from mid-November to Christmas, then a sharp fall.
    holiday = np.clip((doy - 318) / 40.0, 0.0, 1.0) * (doy <= 358)
    season += 0.55 * holiday + 0.15 * ((doy > 358) & (doy <= 364))
    for bf in BLACK_FRIDAYS:
        offset = (days - bf).astype(np.int64)
        season = np.where(offset == 0, 6.0, season)  # Black Friday
        season = np.where((offset == 1) | (offset == 2), season * 1.5, season)
        season = np.where(offset == 3, 2.6, season)  # Cyber Monday
    return season


def web_demand(days: np.ndarray) -> np.ndarray:
    """Relative daily web traffic and order demand (1.0 ≈ an average day at the start)."""
    return growth(days) * seasonality(days) * WEB_WEEKDAY[weekday(days)]


def crm_demand(days: np.ndarray) -> np.ndarray:
    """Relative daily CRM activity (leads): growth and weekdays, a mild December lull."""
    doy_month = days.astype("datetime64[M]").astype(np.int64) % 12  # 0 = January
    lull = np.where(doy_month == 11, 0.75, np.where(doy_month == 7, 0.85, 1.0))
    return growth(days) * lull * CRM_WEEKDAY[weekday(days)]


# Share of a day's web sessions per hour (UTC, US evenings are busiest).
HOUR_WEIGHTS = np.array(
    [5, 4, 3, 2, 2, 2, 2, 2, 2, 2, 3, 4, 5, 6, 6, 7, 7, 7, 7, 7, 8, 8, 7, 6], dtype=float
)
HOUR_WEIGHTS /= HOUR_WEIGHTS.sum()
# Office hours (US Eastern ≈ UTC-5) for CRM events.
OFFICE_HOURS = np.zeros(24)
OFFICE_HOURS[13:23] = [4, 6, 7, 7, 6, 7, 7, 6, 4, 2]
OFFICE_HOURS /= OFFICE_HOURS.sum()


def times_on(
    gen: np.random.Generator, days: np.ndarray, hours: np.ndarray = HOUR_WEIGHTS
) -> np.ndarray:
    """A random second on each of `days` (datetime64[D]) following an hourly profile."""
    hour = gen.choice(24, size=len(days), p=hours)
    sec = gen.integers(0, 3600, size=len(days))
    return days.astype("datetime64[s]").astype(np.int64) + hour * 3600 + sec


# The hourly profile as a cumulative share of the day at each full hour (0 … 24 h).
_HOUR_SECONDS = np.arange(25) * 3600.0
_HOUR_SHARE = np.concatenate([[0.0], np.cumsum(HOUR_WEIGHTS)])


def day_share(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Share of a day's web events (HOUR_WEIGHTS) between `start` and `end` seconds into it."""
    return np.interp(end, _HOUR_SECONDS, _HOUR_SHARE) - np.interp(start, _HOUR_SECONDS, _HOUR_SHARE)


def times_between(
    gen: np.random.Generator, days: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """A random second on each of `days` in [start, end) seconds into it, following
    HOUR_WEIGHTS (inverse transform of the day's piecewise-uniform profile)."""
    low = np.interp(start, _HOUR_SECONDS, _HOUR_SHARE)
    high = np.interp(end, _HOUR_SECONDS, _HOUR_SHARE)
    sec = np.floor(np.interp(gen.uniform(low, high), _HOUR_SHARE, _HOUR_SECONDS))
    sec = np.clip(sec.astype(np.int64), start, end - 1)
    return days.astype("datetime64[s]").astype(np.int64) + sec


def sample_days(
    gen: np.random.Generator, days: np.ndarray, weights: np.ndarray, n: int
) -> np.ndarray:
    """n days drawn from `days` proportionally to `weights`, sorted."""
    if n == 0:
        return np.array([], dtype="datetime64[D]")
    idx = gen.choice(len(days), size=n, p=weights / weights.sum())
    return days[np.sort(idx)]
