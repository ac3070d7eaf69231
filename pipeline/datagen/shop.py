"""The shop: customers signing up, their first and repeat orders, items, shipments, returns
and the daily inventory. Functions take plain arrays and a Generator and return arrays or
frames; the month-by-month state lives in `engine.py`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .calendar import (
    DAY,
    END_S,
    HOUR_WEIGHTS,
    WEB_WEEKDAY,
    Month,
    sample_days,
    seasonality,
    times_on,
    web_demand,
    weekday,
    years_since_start,
)
from .campaigns import ACQUISITION, CONVERSION, TRAFFIC_SHARE, demand_lift, traffic_lift
from .catalog import price_at

NEW_CUSTOMERS_PER_DAY = 0.62  # at scale 1 on an average day at the start of the history
NEVER_ORDERS = 0.08  # share of sign-ups that never order
LATER_FIRST_ORDER = 0.22  # share that orders days after signing up (the rest right away)
REPEATER_SHARE = 0.85  # customers with a propensity to buy again
REPEAT_RATE = 0.36  # mean repeat orders a month of a repeater just after the first order
REPEAT_DECAY_MONTHS = 60.0  # the propensity fades: churn

REGIONS = np.array(["northeast", "south", "midwest", "west"], dtype=object)
REGION_P = np.array([0.24, 0.36, 0.20, 0.20])
CHANNELS = np.array(["web", "app", "marketplace"], dtype=object)
DEVICES = np.array(["desktop", "mobile", "tablet"], dtype=object)
DEVICE_P = {  # per order channel
    "web": np.array([0.55, 0.35, 0.10]),
    "app": np.array([0.0, 0.88, 0.12]),
    "marketplace": np.array([0.40, 0.50, 0.10]),
}
CARRIERS = np.array(["ups", "fedex", "usps", "dhl"], dtype=object)
CARRIER_P = np.array([0.35, 0.25, 0.30, 0.10])
RETURN_REASONS = np.array(
    ["wrong_item", "damaged", "not_as_described", "changed_mind", "late_delivery"], dtype=object
)
RETURN_REASON_P = np.array([0.15, 0.22, 0.23, 0.28, 0.12])
RETURN_RATE = 0.093  # of delivered items (≈ 8% of all items once recent orders are counted)
CANCEL_RATE = 0.03
# Labels as object arrays of shared strings (8 bytes a row when indexed).
_ACQUISITION = np.array([*ACQUISITION, "direct"], dtype=object)  # last: no session
_SEGMENTS = np.array(["consumer", "trade"], dtype=object)


@dataclass
class Orders:
    """A batch of orders as parallel arrays (internal columns included)."""

    customer_id: np.ndarray
    ordered_at: np.ndarray  # int seconds
    channel: np.ndarray  # index into CHANNELS
    device: np.ndarray  # index into DEVICES
    traffic: np.ndarray  # index into campaigns.TRAFFIC (-1 for marketplace)

    def __post_init__(self) -> None:
        # The codes fit in a byte: a month's batch of orders stays small at large scales.
        self.channel, self.device, self.traffic = (
            a.astype(np.int8, copy=False) for a in (self.channel, self.device, self.traffic))

    def __len__(self) -> int:
        return len(self.customer_id)

    def take(self, idx: np.ndarray | slice) -> Orders:
        return Orders(*(getattr(self, f)[idx] for f in _ORDER_FIELDS))

    @staticmethod
    def concat(parts: list[Orders]) -> Orders:
        return Orders(*(np.concatenate([getattr(p, f) for p in parts]) for f in _ORDER_FIELDS))

    @staticmethod
    def empty() -> Orders:
        return Orders(*(np.array([], dtype=np.int64) for _ in _ORDER_FIELDS))


_ORDER_FIELDS = ("customer_id", "ordered_at", "channel", "device", "traffic")


def channel_share(days: np.ndarray) -> np.ndarray:
    """(days x 3) order channel mix: the app gains share over the history."""
    app = 0.24 + 0.06 * years_since_start(days)
    market = np.full(len(days), 0.10)
    return np.column_stack([1.0 - app - market, app, market])


def _below(u: np.ndarray, cum: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Per row, how many of the increasing shares `cum[inv]` of its day lie below its `u`:
    a pick by cumulative shares, one day at a time (no rows x choices matrix)."""
    out = np.empty(len(u), dtype=np.int64)
    for i, day_cum in enumerate(cum):
        rows = np.flatnonzero(inv == i)
        out[rows] = np.searchsorted(day_cum, u[rows], side="left")
    return out


def pick_channel_device(
    gen: np.random.Generator, days: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    uniq, inv = np.unique(days, return_inverse=True)
    cum = np.cumsum(channel_share(uniq), axis=1)[:, :-1]
    u = gen.random(len(days))
    channel = _below(u, cum, inv)
    device = np.zeros(len(days), dtype=np.int64)
    for c, name in enumerate(CHANNELS):
        mine = channel == c
        device[mine] = gen.choice(3, size=int(mine.sum()), p=DEVICE_P[str(name)])
    return channel, device


def pick_traffic(gen: np.random.Generator, days: np.ndarray, repeat: bool) -> np.ndarray:
    """The traffic source of converting sessions: share x conversion x campaign lift;
    returning customers come more often directly or from the newsletter."""
    uniq, inv = np.unique(days, return_inverse=True)
    weights = traffic_lift(uniq) * (TRAFFIC_SHARE * CONVERSION)
    if repeat:
        weights = weights * np.where(ACQUISITION == "direct", 2.5, 1.0)
        weights = weights * np.where(ACQUISITION == "email", 3.0, 1.0)
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    u = gen.random(len(days))
    return np.minimum(_below(u, cum, inv), len(TRAFFIC_SHARE) - 1)


def sign_ups(gen: np.random.Generator, month: Month, scale: float) -> dict[str, np.ndarray]:
    """This month's new customers, sorted by signup, with their first-order plan."""
    days = month.days
    expected = NEW_CUSTOMERS_PER_DAY * scale * web_demand(days) * demand_lift(days)
    n = int(gen.poisson(expected.sum()))
    signup_days = sample_days(gen, days, expected, n)
    signed_up = np.sort(times_on(gen, signup_days, HOUR_WEIGHTS))
    signup_days = signed_up.astype("datetime64[s]").astype("datetime64[D]")
    channel, device = pick_channel_device(gen, signup_days)
    traffic = pick_traffic(gen, signup_days, repeat=False)
    traffic = np.where(channel == 2, -1, traffic)  # marketplace buyers come from no session
    acquisition = _ACQUISITION[np.where(traffic >= 0, traffic, len(ACQUISITION))]
    u = gen.random(n)
    lag = np.where(
        u < 1 - LATER_FIRST_ORDER - NEVER_ORDERS,
        gen.integers(3 * 60, 40 * 60, n),  # buys in the signup session
        (gen.exponential(6.0, n) * DAY).astype(np.int64) + 3600,  # comes back later
    )
    first_order = np.where(u < 1 - NEVER_ORDERS, signed_up + lag, -1)
    first_order = np.where(first_order > END_S, -1, first_order)
    segment = _SEGMENTS[(gen.random(n) < 0.05).astype(np.int64)]
    # Repeat propensity: a repeater's monthly rate, gamma-distributed (a few buy often).
    repeater = gen.random(n) < REPEATER_SHARE
    rate = np.where(repeater, gen.gamma(1.5, REPEAT_RATE / 1.5, n), 0.0)
    return {
        "signed_up_at": signed_up,
        "acquisition": acquisition,
        "region": REGIONS[gen.choice(4, size=n, p=REGION_P)],
        "segment": segment,
        "first_order_at": first_order,
        "channel": channel,
        "device": device,
        "traffic": traffic,
        "repeat_rate": rate,
    }


def repeat_orders(
    gen: np.random.Generator,
    month: Month,
    customers: Iterable[tuple[int, np.ndarray, np.ndarray]],
) -> Orders:
    """Orders this month of customers whose first order was before the month; `customers`
    gives (first customer id, first order times, repeat rates) for consecutive blocks of
    customers (worked through one at a time: the Poisson draws are the same)."""
    days = month.days
    curve = web_demand(days) * demand_lift(days)
    level = curve.mean() / web_demand(days).mean() * _season(days)
    repeaters = []
    for first_id, first_order_at, repeat_rate in customers:
        eligible = np.flatnonzero((first_order_at >= 0) & (first_order_at < month.start_s))
        age_months = (month.start_s - first_order_at[eligible]) / (30.44 * DAY)
        rate = repeat_rate[eligible] * np.exp(-age_months / REPEAT_DECAY_MONTHS)
        counts = gen.poisson(rate * len(days) / 30.44 * level)
        repeaters.append(np.repeat(eligible + first_id, counts))
    customer = np.concatenate([np.empty(0, dtype=np.int64), *repeaters])
    n = len(customer)
    order_days = sample_days(gen, days, curve, n)
    gen.shuffle(customer)
    ordered = times_on(gen, order_days, HOUR_WEIGHTS)
    channel, device = pick_channel_device(gen, order_days)
    traffic = np.where(channel == 2, -1, pick_traffic(gen, order_days, repeat=True))
    return Orders(customer.astype(np.int64), ordered, channel, device, traffic)


def _season(days: np.ndarray) -> float:
    return float((seasonality(days) * WEB_WEEKDAY[weekday(days)]).mean())


def order_items(
    gen: np.random.Generator,
    order_ids: np.ndarray,
    ordered_at: np.ndarray,
    catalogue: pd.DataFrame,
    popularity: np.ndarray,
) -> dict[str, np.ndarray]:
    """1 + Poisson(0.8) lines per order; products by popularity among those launched."""
    n_lines = 1 + gen.poisson(0.8, len(order_ids))
    order_id = np.repeat(order_ids, n_lines)
    at = np.repeat(ordered_at, n_lines)
    day = at.astype("datetime64[s]").astype("datetime64[D]")
    launched = catalogue["launched_on"].to_numpy().astype("datetime64[D]")
    product = gen.choice(len(catalogue), size=len(order_id), p=popularity)
    too_early = launched[product] > day
    established = np.flatnonzero(launched <= launched.min() + 1300)
    weights = popularity[established] / popularity[established].sum()
    product[too_early] = established[gen.choice(len(established), int(too_early.sum()), p=weights)]
    quantity = gen.choice(np.array([1, 2, 3, 4]), size=len(order_id), p=[0.86, 0.10, 0.03, 0.01])
    unit_price = price_at(catalogue, product, day)
    month_day = day - day.astype("datetime64[M]").astype("datetime64[D]")
    month_of_year = day.astype("datetime64[M]").astype(np.int64) % 12
    promo = ((month_of_year == 10) & (month_day >= 20)) | ((month_of_year == 11) & (month_day < 3))
    discounted = gen.random(len(order_id)) < np.where(promo, 0.6, 0.2)
    pct = gen.choice(np.array([0.10, 0.15, 0.20, 0.25]), size=len(order_id))
    discount = np.where(discounted, np.round(quantity * unit_price * pct, 2), 0.0)
    return {
        "order_id": order_id,
        "product_idx": product,
        "quantity": quantity,
        "unit_price": unit_price,
        "discount_amount": discount,
    }


def fulfil(
    gen: np.random.Generator, ordered_at: np.ndarray, cancelled: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shipping times: shipped 0.5-3 days after ordering, delivered 1-7 days later.

    Returns (carrier index, shipped_at or -1 when not shipped by the end, delivered_at or -1).
    """
    n = len(ordered_at)
    shipped = ordered_at + (gen.uniform(0.5, 3.0, n) * DAY).astype(np.int64)
    delivered = shipped + ((1.0 + 6.0 * gen.beta(1.6, 3.5, n)) * DAY).astype(np.int64)
    shipped = np.where(cancelled | (shipped > END_S), -1, shipped)
    delivered = np.where((shipped < 0) | (delivered > END_S), -1, delivered)
    return gen.choice(4, size=n, p=CARRIER_P), shipped, delivered


def returns(
    gen: np.random.Generator, net_amount: np.ndarray, delivered_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returned items among `net_amount`/`delivered_at` (per item, -1 = not delivered).

    Returns (item positions, returned_at, reason index, refund).
    """
    n = len(net_amount)
    hit = (delivered_at >= 0) & (gen.random(n) < RETURN_RATE)
    returned_at = delivered_at + ((1.0 + gen.exponential(6.0, n)) * DAY).astype(np.int64)
    hit &= returned_at <= END_S
    idx = np.flatnonzero(hit)
    reason = gen.choice(len(RETURN_REASONS), size=n, p=RETURN_REASON_P)[idx]
    restocking = RETURN_REASONS[reason] == "changed_mind"
    partial = np.round(np.floor(net_amount[idx] * 90) / 100, 2)  # 10% restocking fee
    refund = np.where(restocking, partial, net_amount[idx])
    return idx, returned_at[idx], reason, refund


def inventory(
    gen: np.random.Generator,
    days: np.ndarray,
    launched: np.ndarray,
    sold: np.ndarray,
    stock: np.ndarray,
    demand: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """End-of-day stock per launched product and day: sales deplete it, and a product below
    ten days of demand is restocked overnight to about five weeks of demand.

    `sold` is (days x products) units, `demand` the expected units a day per product.
    Returns the snapshot columns and the stock after the last day.
    """
    reorder_point = np.ceil(10 * demand)
    target = np.ceil(35 * demand) + 5
    day_col, product_col, qty_col = [], [], []
    for i, day in enumerate(days):
        stock = np.maximum(stock - sold[i], 0)
        live = np.flatnonzero(launched <= day)
        day_col.append(np.full(len(live), day))
        product_col.append(live)
        qty_col.append(stock[live].copy())
        low = stock < reorder_point
        delivery = np.rint((target - stock) * gen.uniform(0.9, 1.1, len(stock)))
        stock = np.where(low, stock + np.maximum(delivery, 0), stock)
    return {
        "snapshot_date": np.concatenate(day_col),
        "product_idx": np.concatenate(product_col),
        "quantity_on_hand": np.concatenate(qty_col),
    }, stock
