"""The CRM: trade leads and their deals, support tickets, NPS answers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .calendar import (
    CRM_WEEKDAY,
    DAY,
    END_S,
    OFFICE_HOURS,
    Month,
    crm_demand,
    sample_days,
    times_on,
    weekday,
)
from .frames import nullable_int, nullable_ts
from .hr import Staff

LEADS_PER_DAY = 0.40  # at scale 1, an average weekday at the start
LEAD_SOURCES = np.array(["website", "trade_show", "referral", "outbound", "partner"], dtype=object)
LEAD_SOURCE_P = np.array([0.35, 0.15, 0.20, 0.20, 0.10])
OPEN_STAGES = np.array(["prospecting", "proposal", "negotiation"], dtype=object)
TICKET_RATE = 0.05  # of orders without a return; orders with one raise tickets far more often
TICKET_CHANNELS = np.array(["email", "chat", "phone"], dtype=object)
TICKET_CATEGORIES = np.array(
    ["shipping", "product", "billing", "returns", "complaint"], dtype=object)
NPS_SCORE_P = np.array([0.02, 0.01, 0.01, 0.015, 0.015, 0.03, 0.05, 0.11, 0.20, 0.26, 0.28])
CSAT_P = np.array([0.06, 0.07, 0.14, 0.33, 0.40])


def leads_and_deals(
    gen: np.random.Generator, month: Month, scale: float, staff: Staff,
    first_lead: int, first_deal: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leads created this month; ~60% qualify, ~45% of those convert into a deal."""
    days = month.days
    expected = LEADS_PER_DAY * scale * crm_demand(days)
    n = int(gen.poisson(expected.sum()))
    created = np.sort(times_on(gen, sample_days(gen, days, expected, n), OFFICE_HOURS))
    qualified = created + (gen.lognormal(np.log(3.0), 0.8, n) * DAY).astype(np.int64)
    qualified = np.where((gen.random(n) < 0.6) & (qualified <= END_S), qualified, -1)
    converted = qualified + (gen.lognormal(np.log(10.0), 0.7, n) * DAY).astype(np.int64)
    converted = np.where((qualified >= 0) & (gen.random(n) < 0.45) & (converted <= END_S),
                         converted, -1)
    lead_ids = np.arange(first_lead, first_lead + n, dtype=np.int64)
    leads = pd.DataFrame({
        "lead_id": lead_ids,
        "source": pd.array(LEAD_SOURCES[gen.choice(5, size=n, p=LEAD_SOURCE_P)], dtype="str"),
        "created_at": created.astype("datetime64[s]"),
        "qualified_at": nullable_ts(qualified),
        "converted_at": nullable_ts(converted),
    })
    won = np.flatnonzero(converted >= 0)
    m = len(won)
    created_on = converted[won].astype("datetime64[s]").astype("datetime64[D]")
    closed_on = created_on + np.ceil(gen.gamma(2.0, 18.0, m)).astype(np.int64)
    end_day = np.datetime64(END_S, "s").astype("datetime64[D]")
    closed = closed_on <= end_day
    stage = np.where(gen.random(m) < 0.55, "won", "lost").astype(object)
    open_age = np.clip((end_day - created_on).astype(np.int64) // 15, 0, 2)
    stage = np.where(closed, stage, OPEN_STAGES[open_age])
    deals = pd.DataFrame({
        "deal_id": np.arange(first_deal, first_deal + m, dtype=np.int64),
        "lead_id": lead_ids[won],
        "sales_rep_id": staff.pick(gen, "sales", created_on),
        "stage": pd.array(stage, dtype="str"),
        "amount": np.round(gen.lognormal(np.log(8000.0), 0.8, m), 2),
        "created_on": created_on.astype("datetime64[s]"),
        "closed_on": pd.Series(
            np.where(closed, closed_on, np.datetime64("NaT")).astype("datetime64[s]")),
    })
    return leads, deals


def tickets(
    gen: np.random.Generator,
    month: Month,
    staff: Staff,
    orders: pd.DataFrame,
    returned: np.ndarray,
    known_customers: int,
    first_id: int,
) -> pd.DataFrame:
    """Support tickets about this month's orders (~9%) plus some without an order."""
    n_orders = len(orders)
    cancelled = (orders["status"] == "cancelled").to_numpy()
    p = np.where(returned, 0.25, np.where(cancelled, 0.25, TICKET_RATE))
    hit = np.flatnonzero(gen.random(n_orders) < p)
    ordered_at = orders["ordered_at"].to_numpy().astype(np.int64)[hit]
    created = ordered_at + (gen.uniform(0.3, 12.0, len(hit)) * DAY).astype(np.int64)
    category = np.where(
        returned[hit], gen.choice(5, size=len(hit), p=[0.05, 0.15, 0.05, 0.55, 0.20]),
        np.where(cancelled[hit], gen.choice(5, size=len(hit), p=[0, 0, 0.6, 0, 0.4]),
                 gen.choice(5, size=len(hit), p=[0.42, 0.28, 0.15, 0.0, 0.15])))
    customer = orders["customer_id"].to_numpy()[hit]
    order_id = orders["order_id"].to_numpy()[hit]
    # Tickets without an order, from customers who signed up before the month.
    n_free = int(gen.poisson(0.016 * n_orders)) if known_customers else 0
    free_created = times_on(gen, month.days[gen.integers(0, len(month.days), n_free)],
                            OFFICE_HOURS)
    created = np.concatenate([created, free_created])
    category = np.concatenate([category, gen.choice(5, size=n_free, p=[0.1, 0.4, 0.3, 0, 0.2])])
    customer = np.concatenate([customer, gen.integers(1, known_customers + 1, n_free)])
    order_id = np.concatenate([order_id, np.zeros(n_free, dtype=np.int64)])
    # Fewer tickets are written at the weekend: most move to the Monday.
    day = created.astype("datetime64[s]").astype("datetime64[D]")
    dow = weekday(day)
    defer = (dow >= 5) & (gen.random(len(created)) > CRM_WEEKDAY[dow] / CRM_WEEKDAY[0])
    created = created + np.where(defer, (7 - dow) * DAY, 0)
    keep = created <= END_S
    created, category, customer, order_id = (
        a[keep] for a in (created, category, customer, order_id))
    order = np.lexsort((order_id, created))
    created, category, customer, order_id = (
        a[order] for a in (created, category, customer, order_id))
    n = len(created)
    channel = gen.choice(3, size=n, p=[0.5, 0.35, 0.15])
    wait_minutes = np.select(
        [channel == 0, channel == 1],
        [gen.lognormal(np.log(240.0), 0.9, n), gen.lognormal(np.log(6.0), 0.8, n)],
        gen.lognormal(np.log(2.0), 0.6, n),
    )
    wait_minutes *= np.where(weekday(created.astype("datetime64[s]").astype("datetime64[D]")) >= 5,
                             3.0, 1.0)
    first_response = created + (wait_minutes * 60).astype(np.int64) + 30
    resolved = first_response + (gen.lognormal(np.log(18.0), 1.0, n) * 3600).astype(np.int64)
    open_forever = gen.random(n) < 0.03
    first_response = np.where(first_response > END_S, -1, first_response)
    resolved = np.where((first_response < 0) | (resolved > END_S) | open_forever, -1, resolved)
    score = gen.choice(5, size=n, p=CSAT_P) + 1
    score = np.where(category == 4, np.maximum(score - gen.integers(0, 3, n), 1), score)
    answered = (resolved >= 0) & (gen.random(n) < 0.63)
    created_day = created.astype("datetime64[s]").astype("datetime64[D]")
    return pd.DataFrame({
        "ticket_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "customer_id": customer.astype(np.int64),
        "order_id": nullable_int(order_id, order_id > 0),
        "agent_id": staff.pick(gen, "customer_service", created_day),
        "created_at": created.astype("datetime64[s]"),
        "first_response_at": nullable_ts(first_response),
        "resolved_at": nullable_ts(resolved),
        "channel": pd.array(TICKET_CHANNELS[channel], dtype="str"),
        "category": pd.array(TICKET_CATEGORIES[category], dtype="str"),
        "csat_score": nullable_int(score, answered).astype("Int32"),
    })


def nps(
    gen: np.random.Generator, customer_id: np.ndarray, delivered_at: np.ndarray, first_id: int
) -> pd.DataFrame:
    """~11% of delivered orders get an NPS answer a few days after delivery."""
    n = len(customer_id)
    responded = delivered_at + (gen.uniform(2.0, 12.0, n) * DAY).astype(np.int64)
    hit = (delivered_at >= 0) & (gen.random(n) < 0.11) & (responded <= END_S)
    scores = gen.choice(11, size=n, p=NPS_SCORE_P)
    idx = np.flatnonzero(hit)
    idx = idx[np.argsort(responded[idx], kind="stable")]
    m = len(idx)
    return pd.DataFrame({
        "nps_response_id": np.arange(first_id, first_id + m, dtype=np.int64),
        "customer_id": customer_id[idx].astype(np.int64),
        "responded_at": responded[idx].astype("datetime64[s]"),
        "score": scores[idx].astype(np.int32),
    })
