"""Month-by-month generation: the state carried between chunks (customers, pending first
orders, id counters, stock) and the stream of (table, chunk) frames.

Memory is bounded by pieces of a month, not by a month: its orders are made in blocks of at
most ORDER_PART_ROWS, its sessions in parts of about SESSION_PART_ROWS, and every frame
(at most FRAME_ROWS rows) is yielded as soon as it is made. What still grows with the
scale is small: 12 bytes of state a customer, and while a month's orders are made, its
sign-ups and its batch of orders (tens of bytes a row).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from math import ceil

import numpy as np
import pandas as pd

from . import crm, finance, hr, marketing, shop, web
from .calendar import DAY, Month, months, to_seconds
from .catalog import popularity, products
from .frames import nullable_ts, row_slices, strings
from .rng import rng
from .schema import TABLES

# Orders per block of a month at most. A month with more is made in several blocks, each
# with random streams of its own (the committed seeds and 1M orders are one block a month).
ORDER_PART_ROWS = 250_000
# Browsing sessions per part of a month (expected): the days are split evenly into parts of
# about SESSION_PART_ROWS, and a part above SESSION_PART_MAX (a peak day, or any day at a
# large scale) is cut into time windows of at most SESSION_PART_ROWS. The committed seeds
# are one part a month; up to 1M orders no part is cut.
SESSION_PART_ROWS = 1_000_000
SESSION_PART_MAX = 1_500_000
_COUNTERS = ("customers", "orders", "order_items", "returns", "shipments", "sessions",
             "email_campaigns", "referrals", "leads", "deals", "tickets", "nps_responses",
             "employee_surveys")


class _Customers:
    """Per customer: first order (int seconds, -1: none yet) and monthly repeat propensity,
    one pair of arrays per signup month: appended to, never copied whole. First orders are
    kept as int32 (seconds since 1970 fit until 2038): 12 bytes a customer."""

    def __init__(self) -> None:
        self.first_order: list[np.ndarray] = []
        self.repeat_rate: list[np.ndarray] = []
        self.first_ids = [1]  # id of each month's first customer, then the next id

    def __len__(self) -> int:
        return self.first_ids[-1] - 1

    def add(self, repeat_rate: np.ndarray) -> None:
        self.first_order.append(np.full(len(repeat_rate), -1, dtype=np.int32))
        self.repeat_rate.append(repeat_rate)
        self.first_ids.append(self.first_ids[-1] + len(repeat_rate))

    def blocks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first customer id, first orders as int64, repeat rates) per signup month."""
        for b, rate in enumerate(self.repeat_rate):
            yield self.first_ids[b], self.first_order[b].astype(np.int64), rate

    def set_first_orders(self, customer_id: np.ndarray, ordered_at: np.ndarray) -> None:
        month = np.searchsorted(self.first_ids, customer_id, side="right") - 1
        for b in np.unique(month):
            mine = month == b
            at = ordered_at[mine].astype(np.int32)
            self.first_order[b][customer_id[mine] - self.first_ids[b]] = at

    def ordered_before(self, t: int) -> _Pool:
        """The customers whose first order was before `t`."""
        return _Pool([(self.first_ids[b], (f >= 0) & (f < t))
                      for b, f in enumerate(self.first_order)])


class _Pool:
    """Customer ids in id order, as masks over the signup months (a byte a customer):
    len() and indexing by an array of positions."""

    def __init__(self, masks: list[tuple[int, np.ndarray]]) -> None:
        self.masks = masks
        self.ends = np.cumsum([int(mask.sum()) for _, mask in masks])

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def __getitem__(self, positions: np.ndarray) -> np.ndarray:
        out = np.empty(len(positions), dtype=np.int64)
        month = np.searchsorted(self.ends, positions, side="right")
        for b in np.unique(month):
            mine = month == b
            first, mask = self.masks[b]
            before = self.ends[b] - mask.sum()
            out[mine] = np.flatnonzero(mask)[positions[mine] - before] + first
        return out


@dataclass
class _MonthTotals:
    """What the month's order blocks add up for the tables made after them."""

    sold: np.ndarray  # units sold per (day, product)
    net_sales: float = 0.0
    shipped: int = 0
    converting: list[dict[str, np.ndarray]] = field(default_factory=list)


class _World:
    """Everything one month needs from the months before it."""

    def __init__(self, scale: float, seed: int) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self.seed = seed
        self.catalogue = products(seed)
        self.popularity = popularity(self.catalogue, seed)
        self.employees = hr.employees(scale, seed)
        self.staff = hr.Staff(self.employees)
        self.customers = _Customers()
        self.pending = shop.Orders.empty()  # first orders planned after their signup month
        self.next_id = dict.fromkeys(_COUNTERS, 1)
        self.stock: np.ndarray | None = None

    def _ids(self, table: str, n: int) -> np.ndarray:
        first = self.next_id[table]
        self.next_id[table] = first + n
        return np.arange(first, first + n, dtype=np.int64)

    def _rng(self, table: str, month: Month) -> np.random.Generator:
        return rng(self.seed, table, month.index)

    def month(self, m: Month) -> Iterator[tuple[str, pd.DataFrame]]:
        """This month's chunks of every table as (table, frame), each yielded as soon as it
        is made: orders and what hangs on them by block, sessions by part."""
        known = len(self.customers)  # customers who signed up before this month

        new = shop.sign_ups(self._rng("customers", m), m, self.scale)
        new_ids = self._ids("customers", len(new["signed_up_at"]))
        for rows in row_slices(len(new_ids)):
            yield "customers", pd.DataFrame({
                "customer_id": new_ids[rows],
                "signed_up_at": new["signed_up_at"][rows].astype("datetime64[s]"),
                "acquisition_channel": strings(new["acquisition"][rows]),
                "region": strings(new["region"][rows]),
                "segment": strings(new["segment"][rows]),
            })
        batch = self._orders_due(m, new_ids, new)
        signed_up, by_referral = new["signed_up_at"], new["acquisition"] == "referral"
        del new  # a generator's locals outlive its yields: drop what later steps do not need

        # Orders and what hangs on them, in blocks of consecutive orders (one block: the
        # month's random streams; several: each block its own).
        days = m.days
        totals = _MonthTotals(np.zeros((len(days), len(self.catalogue))))
        n_blocks = max(1, ceil(len(batch) / ORDER_PART_ROWS))
        edges = [len(batch) * b // n_blocks for b in range(n_blocks + 1)]
        for b, (lo, hi) in enumerate(pairwise(edges)):
            suffix = "" if n_blocks == 1 else f"/{b}"
            yield from self._order_block(m, batch.take(slice(lo, hi)), suffix, known, totals)
        del batch

        # Inventory: this month's units sold per day and product.
        demand = totals.sold.sum() / len(days) * self.popularity
        if self.stock is None:
            self.stock = np.ceil(35 * demand) + 5
        snap, self.stock = shop.inventory(
            self._rng("inventory_snapshots", m), days,
            self.catalogue["launched_on"].to_numpy().astype("datetime64[D]"), totals.sold,
            self.stock, demand)
        yield "inventory_snapshots", pd.DataFrame({
            "snapshot_date": snap["snapshot_date"].astype("datetime64[s]"),
            "product_id": self.catalogue["product_id"].to_numpy()[snap["product_idx"]],
            "quantity_on_hand": snap["quantity_on_hand"].astype(np.int32),
        })

        converting = {k: np.concatenate([c[k] for c in totals.converting])
                      for k in totals.converting[0]}
        totals.converting.clear()
        yield from self._sessions(m, converting, known)
        del converting

        # Marketing.
        spend = marketing.ad_spend(self._rng("ad_spend", m), m, self.scale)
        yield "ad_spend", spend
        emails = marketing.email_campaigns(self._rng("email_campaigns", m), m, known,
                                           self.scale, self.next_id["email_campaigns"])
        self._ids("email_campaigns", len(emails))
        yield "email_campaigns", emails
        refs = marketing.referrals(self._rng("referrals", m), m, new_ids, signed_up, by_referral,
                                   self.customers.ordered_before(m.start_s),
                                   self.next_id["referrals"])
        self._ids("referrals", len(refs))
        yield "referrals", refs

        # CRM, HR and finance.
        leads, deals = crm.leads_and_deals(self._rng("leads", m), m, self.scale, self.staff,
                                           self.next_id["leads"], self.next_id["deals"])
        self._ids("leads", len(leads))
        self._ids("deals", len(deals))
        yield "leads", leads
        yield "deals", deals
        surveys = hr.surveys(self.staff, m, self.next_id["employee_surveys"], self.seed)
        self._ids("employee_surveys", len(surveys))
        yield "employee_surveys", surveys
        yield "operating_costs", finance.operating_costs(
            self._rng("operating_costs", m), m, self.scale, totals.net_sales, totals.shipped,
            float(spend["spend"].sum()))

    def _orders_due(
        self, m: Month, new_ids: np.ndarray, new: dict[str, np.ndarray]
    ) -> shop.Orders:
        """The month's orders, sorted by time: the first orders falling into it (of earlier
        and of its own sign-ups, who join the customers) and the repeat orders."""
        self.customers.add(new["repeat_rate"])
        buyers = new["first_order_at"] >= 0
        planned = shop.Orders(new_ids, new["first_order_at"], new["channel"], new["device"],
                              new["traffic"]).take(np.flatnonzero(buyers))
        due = shop.Orders.concat([self.pending, planned])
        now = due.ordered_at < m.end_s
        self.pending = due.take(np.flatnonzero(~now))
        firsts = due.take(np.flatnonzero(now))
        repeats = shop.repeat_orders(self._rng("repeat_orders", m), m, self.customers.blocks())
        self.customers.set_first_orders(firsts.customer_id, firsts.ordered_at)
        batch = shop.Orders.concat([firsts, repeats])
        return batch.take(np.lexsort((batch.customer_id, batch.ordered_at)))

    def _order_block(
        self,
        m: Month,
        batch: shop.Orders,
        suffix: str,
        known: int,
        totals: _MonthTotals,
    ) -> Iterator[tuple[str, pd.DataFrame]]:
        """A block of the month's orders (sorted by time) with their items, returns,
        shipments, tickets and NPS answers, drawn from the random streams `<table><suffix>`;
        adds to `totals` what later tables need."""

        def gen(table: str) -> np.random.Generator:
            return self._rng(table + suffix, m)

        n = len(batch)
        order_ids = self._ids("orders", n)

        # Items, fulfilment, returns and the resulting status.
        cancelled = gen("orders").random(n) < shop.CANCEL_RATE
        items = shop.order_items(gen("order_items"), order_ids, batch.ordered_at,
                                 self.catalogue, self.popularity)
        item_ids = self._ids("order_items", len(items["order_id"]))
        item_order = np.searchsorted(order_ids, items["order_id"])
        carrier, shipped, delivered = shop.fulfil(gen("shipments"), batch.ordered_at, cancelled)
        net = np.round(items["quantity"] * items["unit_price"] - items["discount_amount"], 2)
        ret_pos, returned_at, reason, refund = shop.returns(
            gen("returns"), net, delivered[item_order])
        returned = np.zeros(n, dtype=bool)
        returned[item_order[ret_pos]] = True
        status = np.select(
            [cancelled, shipped < 0, delivered < 0, returned],
            ["cancelled", "placed", "shipped", "returned"], "delivered").astype(object)
        orders = pd.DataFrame({
            "order_id": order_ids,
            "customer_id": batch.customer_id.astype(np.int64),
            "ordered_at": batch.ordered_at.astype("datetime64[s]"),
            "status": strings(status),
            "channel": strings(shop.CHANNELS[batch.channel]),
            "device": strings(shop.DEVICES[batch.device]),
        })
        yield "orders", orders
        product_ids = self.catalogue["product_id"].to_numpy()
        yield "order_items", pd.DataFrame({
            "order_item_id": item_ids,
            "order_id": items["order_id"],
            "product_id": product_ids[items["product_idx"]],
            "quantity": items["quantity"].astype(np.int32),
            "unit_price": items["unit_price"],
            "discount_amount": items["discount_amount"],
        })
        ret_order = np.argsort(returned_at, kind="stable")
        yield "returns", pd.DataFrame({
            "return_id": self._ids("returns", len(ret_pos)),
            "order_item_id": item_ids[ret_pos][ret_order],
            "returned_at": returned_at[ret_order].astype("datetime64[s]"),
            "reason": strings(shop.RETURN_REASONS[reason][ret_order]),
            "refund_amount": refund[ret_order],
        })
        was_shipped = np.flatnonzero(shipped >= 0)
        yield "shipments", pd.DataFrame({
            "shipment_id": self._ids("shipments", len(was_shipped)),
            "order_id": order_ids[was_shipped],
            "carrier": strings(shop.CARRIERS[carrier[was_shipped]]),
            "shipped_at": shipped[was_shipped].astype("datetime64[s]"),
            "delivered_at": nullable_ts(delivered[was_shipped]),
        })

        live_item = ~cancelled[item_order]
        item_day = (batch.ordered_at[item_order] // DAY
                    - m.days[0].astype(np.int64))[live_item]
        np.add.at(totals.sold, (item_day, items["product_idx"][live_item]),
                  items["quantity"][live_item])
        totals.net_sales += float(net[live_item].sum())
        totals.shipped += int((shipped >= 0).sum())
        online = np.flatnonzero(batch.traffic >= 0)
        totals.converting.append(web.converting(
            gen("converting_sessions"), order_ids[online], batch.customer_id[online],
            batch.ordered_at[online], batch.traffic[online], batch.device[online]))

        tickets = crm.tickets(gen("tickets"), m, self.staff, orders, returned, known,
                              self.next_id["tickets"])
        self._ids("tickets", len(tickets))
        yield "tickets", tickets
        answers = crm.nps(gen("nps_responses"), batch.customer_id, delivered,
                          self.next_id["nps_responses"])
        self._ids("nps_responses", len(answers))
        yield "nps_responses", answers

    def _session_parts(self, m: Month) -> list[tuple[str, np.ndarray, tuple[int, int] | None]]:
        """The month's sessions parts as (rng key, days, window in int seconds or None for
        whole days): the days split evenly into parts of about SESSION_PART_ROWS browsing
        sessions, and a part expected above SESSION_PART_MAX (a peak day, or any day at a
        large scale) cut into windows of equal expected sessions, at most SESSION_PART_ROWS."""
        days = m.days
        per_day = web.expected_browsing(days, self.scale).sum(axis=1)
        n_parts = min(len(days), ceil(per_day.sum() / SESSION_PART_ROWS))
        parts: list[tuple[str, np.ndarray, tuple[int, int] | None]] = []
        for part, idx in enumerate(np.array_split(np.arange(len(days)), n_parts)):
            expected = float(per_day[idx].sum())
            if expected <= SESSION_PART_MAX:
                parts.append((str(part), days[idx], None))
                continue
            bounds = web.windows(days[idx], self.scale, ceil(expected / SESSION_PART_ROWS))
            parts += [(f"{part}/{k}", days[idx], (int(a), int(b)))
                      for k, (a, b) in enumerate(pairwise(bounds))]
        return parts

    def _sessions(
        self, m: Month, converting: dict[str, np.ndarray], known: int
    ) -> Iterator[tuple[str, pd.DataFrame]]:
        """Browsing sessions plus the converting ones, one part at a time: a generator, so
        that only one part of a large month is ever in memory."""
        parts = self._session_parts(m)
        starts = [window[0] if window else to_seconds(days[0]) for _, days, window in parts]
        # A converting session goes with the part it starts in (one that began the evening
        # before the month, with the first).
        part_of = (np.searchsorted(starts, converting["started_at"], side="right") - 1).clip(0)
        for i, (key, days, window) in enumerate(parts):
            mine = np.flatnonzero(part_of == i)
            frames = web.sessions_frames(
                self._rng(f"session_details/{key}", m),
                [web.browsing(self._rng(f"sessions/{key}", m), days, self.scale, known, window),
                 {k: v[mine] for k, v in converting.items()}],
                self.next_id["sessions"])
            for frame in frames:
                self._ids("sessions", len(frame))
                yield "sessions", frame
                del frame  # else held while the next part is made


def generate(scale: float = 1.0, seed: int = 42) -> Iterator[tuple[str, pd.DataFrame]]:
    """The raw tables as a stream of (table, chunk): the whole-history tables (products,
    employees) first, then month by month the chunks of every other table as they are made
    (a large month's orders come in blocks, its sessions in parts). A table's chunks come
    in the order of its rows.
    """
    world = _World(scale, seed)
    yield "products", world.catalogue
    yield "employees", world.employees
    for m in months():
        yield from world.month(m)


def generate_frames(scale: float = 1.0, seed: int = 42) -> dict[str, pd.DataFrame]:
    """All raw tables in memory (for small scales), in TABLES order."""
    parts: dict[str, list[pd.DataFrame]] = {t.name: [] for t in TABLES}
    for name, frame in generate(scale, seed):
        parts[name].append(frame)
    return {name: pd.concat(chunks, ignore_index=True) for name, chunks in parts.items()}
