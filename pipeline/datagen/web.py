"""Web sessions: the converting sessions of web/app orders plus the browsing sessions that
did not convert, per day and traffic source (weekends busier, campaigns lifting theirs)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from .calendar import DAY, HOUR_WEIGHTS, START_S, day_share, times_between, times_on, web_demand
from .campaigns import CAMPAIGNS, MEDIUMS, SOURCES, TRAFFIC_SHARE, campaign_of, traffic_lift
from .frames import labels, nullable_int, row_slices
from .shop import DEVICES

SESSIONS_PER_DAY = 90.0  # browsing sessions at scale 1, average day at the start
KNOWN_VISITOR_SHARE = 0.2  # browsing sessions of logged-in, earlier customers
BROWSING_DEVICE_P = np.array([0.40, 0.52, 0.08])
PAGES = np.array(
    ["/", "/collections/furniture", "/collections/lighting", "/collections/textiles",
     "/collections/wall-decor", "/collections/kitchen", "/collections/outdoor", "/products",
     "/blog/styling-tips", "/search"], dtype=object)
PAGE_P = np.array([0.30, 0.08, 0.08, 0.10, 0.08, 0.08, 0.06, 0.12, 0.06, 0.04])
# The sorted session columns kept while a part's frames are made, and their dtypes (the
# values fit: codes, counts and int32 columns of the contract).
_SORTED = {"customer_id": np.int64, "started_at": np.int64, "traffic": np.int8,
           "device": np.int8, "pageviews": np.int32, "duration_seconds": np.int32,
           "order_id": np.int64}


def expected_browsing(days: np.ndarray, scale: float) -> np.ndarray:
    """(days x traffic sources) expected browsing sessions."""
    return (SESSIONS_PER_DAY * scale * web_demand(days)[:, None] * TRAFFIC_SHARE[None, :]
            * traffic_lift(days))


def windows(days: np.ndarray, scale: float, n: int) -> np.ndarray:
    """n + 1 bounds (int seconds) cutting `days` into n windows of about equal expected
    browsing sessions."""
    per_hour = expected_browsing(days, scale).sum(axis=1)[:, None] * HOUR_WEIGHTS[None, :]
    hours = days.astype("datetime64[s]").astype(np.int64)[:, None] + 3600 * np.arange(24)
    knots = np.append(hours.ravel(), hours[-1, 0] + DAY)
    mass = np.concatenate([[0.0], np.cumsum(per_hour.ravel())])
    return np.rint(np.interp(np.linspace(0.0, mass[-1], n + 1), mass, knots)).astype(np.int64)


def browsing(
    gen: np.random.Generator,
    days: np.ndarray,
    scale: float,
    known_customers: int,
    window: tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """Sessions that did not convert: Poisson per (day, source) around the demand curve;
    with a `window` (int seconds, start inclusive), only those starting inside it."""
    expected = expected_browsing(days, scale)
    if window is not None:
        day_start = days.astype("datetime64[s]").astype(np.int64)
        start = np.clip(window[0] - day_start, 0, DAY)
        end = np.clip(window[1] - day_start, 0, DAY)
        expected = expected * day_share(start, end)[:, None]
    counts = gen.poisson(expected)
    day_idx, traffic = np.nonzero(counts)
    reps = counts[day_idx, traffic]
    day = np.repeat(days[day_idx], reps)
    traffic = np.repeat(traffic, reps)
    n = len(day)
    if window is None:
        started = times_on(gen, day, HOUR_WEIGHTS)
    else:
        rows = np.repeat(day_idx, reps)
        started = times_between(gen, day, start[rows], end[rows])
    pageviews = gen.geometric(0.33, n)
    duration = np.where(
        pageviews == 1,
        np.where(gen.random(n) < 0.6, 0, gen.integers(5, 90, n)),
        (pageviews * gen.lognormal(np.log(40.0), 0.7, n)).astype(np.int64),
    )
    customer = np.zeros(n, dtype=np.int64)
    if known_customers:
        known = gen.random(n) < KNOWN_VISITOR_SHARE
        customer[known] = gen.integers(1, known_customers + 1, int(known.sum()))
    return {
        "customer_id": customer,
        "started_at": started,
        "traffic": traffic,
        "device": gen.choice(3, size=n, p=BROWSING_DEVICE_P),
        "pageviews": pageviews,
        "duration_seconds": duration,
        "order_id": np.zeros(n, dtype=np.int64),
    }


def converting(
    gen: np.random.Generator,
    order_id: np.ndarray,
    customer_id: np.ndarray,
    ordered_at: np.ndarray,
    traffic: np.ndarray,
    device: np.ndarray,
) -> dict[str, np.ndarray]:
    """One session per web/app order, ending shortly after the order was placed."""
    n = len(order_id)
    pageviews = 4 + gen.poisson(7.0, n)
    duration = (pageviews * gen.lognormal(np.log(55.0), 0.5, n)).astype(np.int64) + 60
    started = np.maximum(ordered_at - (duration * gen.uniform(0.7, 0.95, n)).astype(np.int64),
                         START_S)
    return {
        "customer_id": customer_id,
        "started_at": started,
        "traffic": traffic,
        "device": device,
        "pageviews": pageviews,
        "duration_seconds": duration,
        "order_id": order_id,
    }


def sessions_frames(
    gen: np.random.Generator, parts: list[dict[str, np.ndarray]], first_id: int
) -> Iterator[pd.DataFrame]:
    """Both kinds of sessions, sorted by start, with ids, campaign and landing page: drawn
    for all of `parts` at once, then made into frames of at most FRAME_ROWS rows one at a
    time (only compact sorted columns are kept in between)."""
    order = np.lexsort([np.concatenate([p[k] for p in parts]) for k in ("order_id", "started_at")])
    cols = {k: np.concatenate([p[k] for p in parts])[order].astype(dtype, copy=False)
            for k, dtype in _SORTED.items()}
    del parts, order
    n = len(cols["started_at"])
    day = cols["started_at"].astype("datetime64[s]").astype("datetime64[D]")
    campaign, names = campaign_of(day, cols["traffic"], gen)
    del day
    # Named campaigns send their visitors to a landing page of their own.
    landing = gen.choice(len(PAGES), size=n, p=PAGE_P)
    named = np.zeros(len(names), dtype=bool)
    named[: len(CAMPAIGNS)] = [not c.name.startswith("always_on") for c in CAMPAIGNS]
    own = (campaign >= 0) & named[np.maximum(campaign, 0)]
    landing[own] = len(PAGES) + campaign[own]
    cols["campaign"], cols["landing"] = campaign.astype(np.int32), landing.astype(np.int32)
    del campaign, landing, own
    pages = [*PAGES, *(f"/lp/{c}" for c in names)]
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    for rows in row_slices(n):
        c = {k: v[rows] for k, v in cols.items()}
        yield pd.DataFrame({
            "session_id": ids[rows],
            "customer_id": nullable_int(c["customer_id"], c["customer_id"] > 0),
            "started_at": c["started_at"].astype("datetime64[s]"),
            "source": labels(c["traffic"], SOURCES),
            "medium": labels(c["traffic"], MEDIUMS),
            "campaign": labels(c["campaign"], names),
            "landing_page": labels(c["landing"], pages),
            "device": labels(c["device"], DEVICES),
            "pageviews": c["pageviews"].astype(np.int32),
            "duration_seconds": c["duration_seconds"].astype(np.int32),
            "order_id": nullable_int(c["order_id"], c["order_id"] > 0),
        })
