"""Marketing: daily ad spend per channel and campaign, newsletter sends, customer referrals."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from .calendar import DAY, Month, web_demand
from .campaigns import CAMPAIGNS, demand_lift, email_name, email_send_days
from .shop import NEW_CUSTOMERS_PER_DAY

CAC_TARGET = 38.0  # spend per expected new customer of the always-on programmes
# channel: (cost per thousand impressions, click-through rate)
MEDIA = {
    "paid_search": (28.0, 0.045),
    "social": (9.0, 0.012),
    "display": (4.0, 0.004),
    "affiliate": (12.0, 0.02),
}


def ad_spend(gen: np.random.Generator, month: Month, scale: float) -> pd.DataFrame:
    """One row per day and running campaign; spend follows the expected new customers."""
    days = month.days
    new_customers = NEW_CUSTOMERS_PER_DAY * scale * web_demand(days) * demand_lift(days)
    frames = []
    for c in CAMPAIGNS:
        on = c.active(days)
        if not on.any():
            continue
        d = days[on]
        spend = np.round(CAC_TARGET * c.daily_budget * new_customers[on]
                         * gen.lognormal(0.0, 0.15, len(d)), 2)
        cpm, ctr = MEDIA[c.channel]
        impressions = np.rint(spend / cpm * 1000 * gen.lognormal(0.0, 0.1, len(d))).astype(np.int64)
        clicks = gen.binomial(impressions, ctr)
        frames.append(pd.DataFrame({
            "spend_date": d.astype("datetime64[s]"),
            "channel": pd.Series(np.full(len(d), c.channel), dtype="str"),
            "campaign": pd.Series(np.full(len(d), c.name), dtype="str"),
            "impressions": impressions,
            "clicks": clicks.astype(np.int64),
            "spend": spend,
        }))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["spend_date", "channel", "campaign"], ignore_index=True)


def email_campaigns(
    gen: np.random.Generator, month: Month, customers: int, scale: float, first_id: int
) -> pd.DataFrame:
    """The month's newsletters: sent to subscribers (a base list plus most customers)."""
    sent_days = email_send_days(month.days)
    n = len(sent_days)
    sends = np.rint((900 * scale + 0.7 * customers) * gen.uniform(0.97, 1.03, n)).astype(np.int64)
    opens = gen.binomial(sends, gen.uniform(0.20, 0.30, n))
    clicks = gen.binomial(opens, gen.uniform(0.08, 0.16, n))
    sent_at = (sent_days.astype("datetime64[s]").astype(np.int64) + 14 * 3600
               + gen.integers(0, 1800, n))
    return pd.DataFrame({
        "email_campaign_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "campaign_name": pd.Series([email_name(d) for d in sent_days], dtype="str"),
        "sent_at": sent_at.astype("datetime64[s]"),
        "sends": sends,
        "opens": opens.astype(np.int64),
        "clicks": clicks.astype(np.int64),
    })


class Pool(Protocol):
    """Customer ids by position: len() and indexing by an array of positions."""

    def __len__(self) -> int: ...

    def __getitem__(self, positions: np.ndarray, /) -> np.ndarray: ...


def referrals(
    gen: np.random.Generator,
    month: Month,
    new_ids: np.ndarray,
    new_signups: np.ndarray,
    referral_acquired: np.ndarray,
    referrer_pool: Pool,
    first_id: int,
) -> pd.DataFrame:
    """About half the customers acquired through referral were referred by a customer who
    had ordered before the month; the invitation precedes the signup by up to ten days."""
    hit = np.flatnonzero(referral_acquired & (gen.random(len(new_ids)) < 0.5))
    if len(referrer_pool) == 0:
        hit = hit[:0]
    n = len(hit)
    referrer = referrer_pool[gen.integers(0, max(len(referrer_pool), 1), n)]
    referred_at = np.maximum(
        new_signups[hit] - (gen.uniform(0.05, 10.0, n) * DAY).astype(np.int64), month.start_s)
    return pd.DataFrame({
        "referral_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "referrer_customer_id": referrer.astype(np.int64),
        "referred_customer_id": new_ids[hit].astype(np.int64),
        "referred_at": referred_at.astype("datetime64[s]"),
    })
