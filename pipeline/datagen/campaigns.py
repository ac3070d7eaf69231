"""Traffic sources and marketing campaigns: the named campaigns lift their source's sessions
and spend while they run; email sends lift newsletter sessions for a few days."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calendar import END, START

# (source, medium, share of sessions on an ordinary day, relative conversion rate,
#  acquisition channel of customers who first came through it)
TRAFFIC: tuple[tuple[str, str, float, float, str], ...] = (
    ("google", "organic", 0.27, 1.00, "organic_search"),
    ("google", "cpc", 0.13, 1.10, "paid_search"),
    ("bing", "organic", 0.04, 1.00, "organic_search"),
    ("bing", "cpc", 0.03, 1.05, "paid_search"),
    ("facebook", "social", 0.06, 0.55, "social"),
    ("facebook", "cpc", 0.07, 0.80, "social"),
    ("instagram", "social", 0.07, 0.50, "social"),
    ("instagram", "cpc", 0.04, 0.75, "social"),
    ("pinterest", "social", 0.05, 0.70, "social"),
    ("pinterest", "cpc", 0.03, 0.80, "social"),
    ("newsletter", "email", 0.04, 1.60, "email"),
    ("partner", "referral", 0.05, 1.30, "referral"),
    ("direct", "none", 0.17, 1.25, "direct"),
)
SOURCES = np.array([t[0] for t in TRAFFIC])
MEDIUMS = np.array([t[1] for t in TRAFFIC])
TRAFFIC_SHARE = np.array([t[2] for t in TRAFFIC]) / sum(t[2] for t in TRAFFIC)
CONVERSION = np.array([t[3] for t in TRAFFIC])
ACQUISITION = np.array([t[4] for t in TRAFFIC])
NEWSLETTER = int(np.flatnonzero(SOURCES == "newsletter")[0])


@dataclass(frozen=True)
class Campaign:
    """A paid campaign: ad-spend channel, the traffic it brings, dates and lift."""

    name: str
    channel: str  # ad_spend.channel
    source: str
    medium: str
    first: str
    last: str
    lift: float  # multiplier on its source/medium's sessions while it runs
    daily_budget: float  # relative budget (spend per expected new customer)

    @property
    def traffic(self) -> int:
        return int(np.flatnonzero((self.source == SOURCES) & (self.medium == MEDIUMS))[0])

    def active(self, days: np.ndarray) -> np.ndarray:
        first = max(np.datetime64(self.first, "D"), START)
        last = min(np.datetime64(self.last, "D"), END)
        return (days >= first) & (days <= last)


_ALL = ("2024-11-01", "2026-11-15")
CAMPAIGNS: tuple[Campaign, ...] = (
    # Always-on programmes: every paid session and every spend row carries a campaign.
    Campaign("always_on_search", "paid_search", "google", "cpc", *_ALL, 1.0, 0.42),
    Campaign("always_on_bing", "paid_search", "bing", "cpc", *_ALL, 1.0, 0.08),
    Campaign("always_on_social", "social", "facebook", "cpc", *_ALL, 1.0, 0.22),
    Campaign("always_on_instagram", "social", "instagram", "cpc", *_ALL, 1.0, 0.12),
    Campaign("always_on_display", "display", "pinterest", "cpc", *_ALL, 1.0, 0.08),
    Campaign("always_on_affiliate", "affiliate", "partner", "referral", *_ALL, 1.0, 0.08),
    # Named, seasonal campaigns.
    Campaign("holiday_2024_search", "paid_search", "google", "cpc",
             "2024-11-15", "2024-12-22", 1.9, 0.45),
    Campaign("black_friday_2024_social", "social", "facebook", "cpc",
             "2024-11-22", "2024-12-02", 2.6, 0.60),
    Campaign("new_year_refresh_2025", "social", "instagram", "cpc",
             "2025-01-06", "2025-02-02", 2.3, 0.35),
    Campaign("spring_home_2025", "paid_search", "google", "cpc",
             "2025-03-10", "2025-04-06", 1.7, 0.35),
    Campaign("outdoor_living_2025", "display", "pinterest", "cpc",
             "2025-05-05", "2025-06-01", 2.8, 0.30),
    Campaign("back_to_home_2025", "social", "facebook", "cpc",
             "2025-08-18", "2025-09-14", 2.0, 0.35),
    Campaign("fall_textiles_2025", "social", "instagram", "cpc",
             "2025-09-29", "2025-10-26", 2.3, 0.30),
    Campaign("holiday_2025_search", "paid_search", "google", "cpc",
             "2025-11-14", "2025-12-22", 1.9, 0.45),
    Campaign("black_friday_2025_social", "social", "facebook", "cpc",
             "2025-11-21", "2025-12-01", 2.6, 0.60),
    Campaign("new_year_refresh_2026", "social", "instagram", "cpc",
             "2026-01-05", "2026-02-01", 2.3, 0.35),
    Campaign("spring_home_2026", "paid_search", "google", "cpc",
             "2026-03-09", "2026-04-05", 1.7, 0.35),
    Campaign("outdoor_living_2026", "display", "pinterest", "cpc",
             "2026-05-04", "2026-05-31", 2.8, 0.30),
    Campaign("summer_partners_2026", "affiliate", "partner", "referral",
             "2026-07-06", "2026-08-02", 2.2, 0.30),
    Campaign("fall_textiles_2026", "social", "instagram", "cpc",
             "2026-09-28", "2026-10-25", 2.3, 0.30),
    Campaign("holiday_2026_search", "paid_search", "google", "cpc",
             "2026-11-09", "2026-12-22", 1.9, 0.45),
)


def traffic_lift(days: np.ndarray) -> np.ndarray:
    """(days x traffic sources) multipliers from the named campaigns and the email sends."""
    lift = np.ones((len(days), len(TRAFFIC)))
    for c in CAMPAIGNS:
        if c.lift != 1.0:
            lift[:, c.traffic] *= np.where(c.active(days), c.lift, 1.0)
    sends = email_send_days(days)
    for offset, boost in ((0, 3.5), (1, 2.2), (2, 1.5)):
        hit = np.isin(days - offset, sends)
        lift[:, NEWSLETTER] *= np.where(hit, boost, 1.0)
    return lift


def demand_lift(days: np.ndarray) -> np.ndarray:
    """Overall demand multiplier: the traffic-weighted lift of all sources."""
    lift: np.ndarray = traffic_lift(days) @ (TRAFFIC_SHARE * CONVERSION)
    return lift / float(TRAFFIC_SHARE @ CONVERSION)


def campaign_of(
    days: np.ndarray, traffic: np.ndarray, gen: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """The campaign of each session as codes into the returned names (-1: no campaign).

    The names are CAMPAIGNS' in order, then the newsletters sent around `days`. Paid
    sessions belong to their always-on programme, or while a named campaign runs on their
    source, to it (in proportion to its lift); newsletter sessions within three days of a
    send carry that send's name.
    """
    names = [c.name for c in CAMPAIGNS]
    out = np.full(len(days), -1, dtype=np.int64)
    if len(days) == 0:
        return out, names
    u = gen.random(len(days))
    for code, c in enumerate(CAMPAIGNS):
        mine = traffic == c.traffic
        if c.lift == 1.0:
            out[mine] = code
        else:
            share = 1.0 - 1.0 / c.lift
            out[mine & c.active(days) & (u < share)] = code
    news = traffic == NEWSLETTER
    sends = email_send_days(np.arange(days.min() - 3, days.max() + 1))
    names += [email_name(d) for d in sends]
    for lag in (0, 1, 2):
        sent = days - lag
        hit = news & np.isin(sent, sends) & (out < 0)
        out[hit] = len(CAMPAIGNS) + np.searchsorted(sends, sent[hit])
    return out, names


def email_send_days(days: np.ndarray) -> np.ndarray:
    """Newsletter days among `days`: the 1st and 3rd Tuesday of each month, and every
    Tuesday and Thursday from mid-November to mid-December."""
    dow = (days.astype(np.int64) + 3) % 7
    dom = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    regular = (dow == 1) & (((dom >= 1) & (dom <= 7)) | ((dom >= 15) & (dom <= 21)))
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    holiday = (((month == 10) & (dom >= 15)) | ((month == 11) & (dom <= 15))) & np.isin(dow, [1, 3])
    in_history = (days >= START) & (days <= END)
    return days[(regular | holiday) & in_history]


def email_name(day: np.datetime64) -> str:
    return f"newsletter_{str(day).replace('-', '_')}"
