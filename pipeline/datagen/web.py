"""Web sessions: the converting sessions of web/app orders plus the browsing sessions that
did not convert, per day and traffic source (weekends busier, campaigns lifting theirs)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .calendar import HOUR_WEIGHTS, START_S, times_on, web_demand
from .campaigns import CAMPAIGNS, MEDIUMS, SOURCES, TRAFFIC_SHARE, campaign_of, traffic_lift
from .frames import labels, nullable_int
from .shop import DEVICES

SESSIONS_PER_DAY = 90.0  # browsing sessions at scale 1, average day at the start
KNOWN_VISITOR_SHARE = 0.2  # browsing sessions of logged-in, earlier customers
BROWSING_DEVICE_P = np.array([0.40, 0.52, 0.08])
PAGES = np.array(
    ["/", "/collections/furniture", "/collections/lighting", "/collections/textiles",
     "/collections/wall-decor", "/collections/kitchen", "/collections/outdoor", "/products",
     "/blog/styling-tips", "/search"], dtype=object)
PAGE_P = np.array([0.30, 0.08, 0.08, 0.10, 0.08, 0.08, 0.06, 0.12, 0.06, 0.04])


def expected_browsing(days: np.ndarray, scale: float) -> np.ndarray:
    """(days x traffic sources) expected browsing sessions."""
    return (SESSIONS_PER_DAY * scale * web_demand(days)[:, None] * TRAFFIC_SHARE[None, :]
            * traffic_lift(days))


def browsing(
    gen: np.random.Generator, days: np.ndarray, scale: float, known_customers: int
) -> dict[str, np.ndarray]:
    """Sessions that did not convert: Poisson per (day, source) around the demand curve."""
    counts = gen.poisson(expected_browsing(days, scale))
    day_idx, traffic = np.nonzero(counts)
    reps = counts[day_idx, traffic]
    day = np.repeat(days[day_idx], reps)
    traffic = np.repeat(traffic, reps)
    n = len(day)
    started = times_on(gen, day, HOUR_WEIGHTS)
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


def sessions_frame(
    gen: np.random.Generator, parts: list[dict[str, np.ndarray]], first_id: int
) -> pd.DataFrame:
    """Both kinds of sessions, sorted by start, with ids, campaign and landing page."""
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((cols["order_id"], cols["started_at"]))
    cols = {k: v[order] for k, v in cols.items()}
    n = len(order)
    day = cols["started_at"].astype("datetime64[s]").astype("datetime64[D]")
    traffic = cols["traffic"]
    campaign, names = campaign_of(day, traffic, gen)
    # Named campaigns send their visitors to a landing page of their own.
    landing = gen.choice(len(PAGES), size=n, p=PAGE_P)
    named = np.zeros(len(names), dtype=bool)
    named[: len(CAMPAIGNS)] = [not c.name.startswith("always_on") for c in CAMPAIGNS]
    own = (campaign >= 0) & named[np.maximum(campaign, 0)]
    landing[own] = len(PAGES) + campaign[own]
    return pd.DataFrame({
        "session_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "customer_id": nullable_int(cols["customer_id"], cols["customer_id"] > 0),
        "started_at": cols["started_at"].astype("datetime64[s]"),
        "source": labels(traffic, SOURCES),
        "medium": labels(traffic, MEDIUMS),
        "campaign": labels(campaign, names),
        "landing_page": labels(landing, [*PAGES, *(f"/lp/{c}" for c in names)]),
        "device": labels(cols["device"], DEVICES),
        "pageviews": cols["pageviews"].astype(np.int32),
        "duration_seconds": cols["duration_seconds"].astype(np.int32),
        "order_id": nullable_int(cols["order_id"], cols["order_id"] > 0),
    })
