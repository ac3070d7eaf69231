"""Month-by-month generation: the state carried between chunks (customers, pending first
orders, id counters, stock) and the stream of (table, chunk) frames."""

from __future__ import annotations

from collections.abc import Iterator
from math import ceil

import numpy as np
import pandas as pd

from . import crm, finance, hr, marketing, shop, web
from .calendar import DAY, Month, months
from .catalog import popularity, products
from .frames import nullable_ts, strings
from .rng import rng
from .schema import TABLES

# Browsing sessions per generated sessions frame (about, at most): bounds memory at scale.
SESSION_PART_ROWS = 1_000_000
_COUNTERS = ("customers", "orders", "order_items", "returns", "shipments", "sessions",
             "email_campaigns", "referrals", "leads", "deals", "tickets", "nps_responses",
             "employee_surveys")


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
        # Per customer (position = customer_id - 1): first order (-1: none yet) and monthly
        # repeat propensity.
        self.first_order = np.empty(0, dtype=np.int64)
        self.repeat_rate = np.empty(0, dtype=float)
        self.pending = shop.Orders.empty()  # first orders planned after their signup month
        self.next_id = dict.fromkeys(_COUNTERS, 1)
        self.stock: np.ndarray | None = None

    def _ids(self, table: str, n: int) -> np.ndarray:
        first = self.next_id[table]
        self.next_id[table] = first + n
        return np.arange(first, first + n, dtype=np.int64)

    def _rng(self, table: str, month: Month) -> np.random.Generator:
        return rng(self.seed, table, month.index)

    def month(self, m: Month) -> dict[str, pd.DataFrame | list[pd.DataFrame]]:
        """This month's chunk of every table (sessions: a list of parts)."""
        out: dict[str, pd.DataFrame | list[pd.DataFrame]] = {}
        known = len(self.first_order)  # customers who signed up before this month

        # Customers and the first orders falling into this month.
        new = shop.sign_ups(self._rng("customers", m), m, self.scale)
        new_ids = self._ids("customers", len(new["signed_up_at"]))
        out["customers"] = pd.DataFrame({
            "customer_id": new_ids,
            "signed_up_at": new["signed_up_at"].astype("datetime64[s]"),
            "acquisition_channel": strings(new["acquisition"]),
            "region": strings(new["region"]),
            "segment": strings(new["segment"]),
        })
        self.first_order = np.concatenate([self.first_order, np.full(len(new_ids), -1)])
        self.repeat_rate = np.concatenate([self.repeat_rate, new["repeat_rate"]])
        buyers = new["first_order_at"] >= 0
        planned = shop.Orders(new_ids, new["first_order_at"], new["channel"], new["device"],
                              new["traffic"]).take(np.flatnonzero(buyers))
        due = shop.Orders.concat([self.pending, planned])
        now = due.ordered_at < m.end_s
        self.pending = due.take(np.flatnonzero(~now))
        firsts = due.take(np.flatnonzero(now))
        repeats = shop.repeat_orders(self._rng("repeat_orders", m), m, self.first_order,
                                     self.repeat_rate)
        self.first_order[firsts.customer_id - 1] = firsts.ordered_at
        batch = shop.Orders.concat([firsts, repeats])
        batch = batch.take(np.lexsort((batch.customer_id, batch.ordered_at)))
        n = len(batch)
        order_ids = self._ids("orders", n)

        # Items, fulfilment, returns and the resulting status.
        cancelled = self._rng("orders", m).random(n) < shop.CANCEL_RATE
        items = shop.order_items(self._rng("order_items", m), order_ids, batch.ordered_at,
                                 self.catalogue, self.popularity)
        item_ids = self._ids("order_items", len(items["order_id"]))
        item_order = np.searchsorted(order_ids, items["order_id"])
        carrier, shipped, delivered = shop.fulfil(self._rng("shipments", m), batch.ordered_at,
                                                  cancelled)
        net = np.round(items["quantity"] * items["unit_price"] - items["discount_amount"], 2)
        ret_pos, returned_at, reason, refund = shop.returns(
            self._rng("returns", m), net, delivered[item_order])
        returned = np.zeros(n, dtype=bool)
        returned[item_order[ret_pos]] = True
        status = np.select(
            [cancelled, shipped < 0, delivered < 0, returned],
            ["cancelled", "placed", "shipped", "returned"], "delivered").astype(object)
        orders = out["orders"] = pd.DataFrame({
            "order_id": order_ids,
            "customer_id": batch.customer_id.astype(np.int64),
            "ordered_at": batch.ordered_at.astype("datetime64[s]"),
            "status": strings(status),
            "channel": strings(shop.CHANNELS[batch.channel]),
            "device": strings(shop.DEVICES[batch.device]),
        })
        product_ids = self.catalogue["product_id"].to_numpy()
        out["order_items"] = pd.DataFrame({
            "order_item_id": item_ids,
            "order_id": items["order_id"],
            "product_id": product_ids[items["product_idx"]],
            "quantity": items["quantity"].astype(np.int32),
            "unit_price": items["unit_price"],
            "discount_amount": items["discount_amount"],
        })
        ret_order = np.argsort(returned_at, kind="stable")
        out["returns"] = pd.DataFrame({
            "return_id": self._ids("returns", len(ret_pos)),
            "order_item_id": item_ids[ret_pos][ret_order],
            "returned_at": returned_at[ret_order].astype("datetime64[s]"),
            "reason": strings(shop.RETURN_REASONS[reason][ret_order]),
            "refund_amount": refund[ret_order],
        })
        was_shipped = np.flatnonzero(shipped >= 0)
        out["shipments"] = pd.DataFrame({
            "shipment_id": self._ids("shipments", len(was_shipped)),
            "order_id": order_ids[was_shipped],
            "carrier": strings(shop.CARRIERS[carrier[was_shipped]]),
            "shipped_at": shipped[was_shipped].astype("datetime64[s]"),
            "delivered_at": nullable_ts(delivered[was_shipped]),
        })

        # Inventory: this month's units sold per day and product.
        days = m.days
        sold = np.zeros((len(days), len(self.catalogue)))
        live_item = ~cancelled[item_order]
        item_day = (batch.ordered_at[item_order] // DAY
                    - days[0].astype(np.int64))[live_item]
        np.add.at(sold, (item_day, items["product_idx"][live_item]), items["quantity"][live_item])
        demand = sold.sum() / len(days) * self.popularity
        if self.stock is None:
            self.stock = np.ceil(35 * demand) + 5
        snap, self.stock = shop.inventory(
            self._rng("inventory_snapshots", m), days,
            self.catalogue["launched_on"].to_numpy().astype("datetime64[D]"), sold, self.stock,
            demand)
        out["inventory_snapshots"] = pd.DataFrame({
            "snapshot_date": snap["snapshot_date"].astype("datetime64[s]"),
            "product_id": product_ids[snap["product_idx"]],
            "quantity_on_hand": snap["quantity_on_hand"].astype(np.int32),
        })

        out["sessions"] = self._sessions(m, batch, order_ids, known)

        # Marketing.
        spend = out["ad_spend"] = marketing.ad_spend(self._rng("ad_spend", m), m, self.scale)
        emails = marketing.email_campaigns(self._rng("email_campaigns", m), m, known,
                                           self.scale, self.next_id["email_campaigns"])
        self._ids("email_campaigns", len(emails))
        out["email_campaigns"] = emails
        pool = np.flatnonzero((self.first_order >= 0) & (self.first_order < m.start_s)) + 1
        refs = marketing.referrals(self._rng("referrals", m), m, new_ids, new["signed_up_at"],
                                   new["acquisition"] == "referral", pool,
                                   self.next_id["referrals"])
        self._ids("referrals", len(refs))
        out["referrals"] = refs

        # CRM.
        leads, deals = crm.leads_and_deals(self._rng("leads", m), m, self.scale, self.staff,
                                           self.next_id["leads"], self.next_id["deals"])
        self._ids("leads", len(leads))
        self._ids("deals", len(deals))
        out["leads"], out["deals"] = leads, deals
        tickets = crm.tickets(self._rng("tickets", m), m, self.staff, orders, returned,
                              known, self.next_id["tickets"])
        self._ids("tickets", len(tickets))
        out["tickets"] = tickets
        answers = crm.nps(self._rng("nps_responses", m), batch.customer_id, delivered,
                          self.next_id["nps_responses"])
        self._ids("nps_responses", len(answers))
        out["nps_responses"] = answers

        # HR and finance.
        surveys = hr.surveys(self.staff, m, self.next_id["employee_surveys"], self.seed)
        self._ids("employee_surveys", len(surveys))
        out["employee_surveys"] = surveys
        out["operating_costs"] = finance.operating_costs(
            self._rng("operating_costs", m), m, self.scale, float(net[live_item].sum()),
            int((shipped >= 0).sum()), float(spend["spend"].sum()))
        return out


    def _sessions(
        self, m: Month, batch: shop.Orders, order_ids: np.ndarray, known: int
    ) -> list[pd.DataFrame]:
        """Browsing sessions plus one converting session per web/app order, in parts of
        consecutive days small enough to bound memory at large scales."""
        days = m.days
        online = np.flatnonzero(batch.traffic >= 0)
        converting = web.converting(
            self._rng("converting_sessions", m), order_ids[online], batch.customer_id[online],
            batch.ordered_at[online], batch.traffic[online], batch.device[online])
        # Day of each converting session in the month (one that began the evening before
        # the month goes with its first day).
        conv_day = (converting["started_at"] // DAY - days[0].astype(np.int64)).clip(0)
        expected = float(web.expected_browsing(days, self.scale).sum())
        n_parts = min(len(days), ceil(expected / SESSION_PART_ROWS))
        frames = []
        for part, day_idx in enumerate(np.array_split(np.arange(len(days)), n_parts)):
            mine = np.flatnonzero((conv_day >= day_idx[0]) & (conv_day <= day_idx[-1]))
            parts = [
                web.browsing(self._rng(f"sessions/{part}", m), days[day_idx], self.scale, known),
                {k: v[mine] for k, v in converting.items()},
            ]
            frame = web.sessions_frame(self._rng(f"session_details/{part}", m), parts,
                                       self.next_id["sessions"])
            self._ids("sessions", len(frame))
            frames.append(frame)
        return frames


def generate(scale: float = 1.0, seed: int = 42) -> Iterator[tuple[str, pd.DataFrame]]:
    """The raw tables as a stream of (table, chunk): the whole-history tables (products,
    employees) first, then each month's chunk of every other table in TABLES order (the
    sessions of a large month come in several parts).

    Memory stays bounded by one month of data plus a few arrays per customer.
    """
    world = _World(scale, seed)
    yield "products", world.catalogue
    yield "employees", world.employees
    for m in months():
        chunk = world.month(m)
        for table in TABLES:
            frames = chunk.get(table.name, [])
            for frame in frames if isinstance(frames, list) else [frames]:
                yield table.name, frame


def generate_frames(scale: float = 1.0, seed: int = 42) -> dict[str, pd.DataFrame]:
    """All raw tables in memory (for small scales), in TABLES order."""
    parts: dict[str, list[pd.DataFrame]] = {t.name: [] for t in TABLES}
    for name, frame in generate(scale, seed):
        parts[name].append(frame)
    return {name: pd.concat(chunks, ignore_index=True) for name, chunks in parts.items()}
