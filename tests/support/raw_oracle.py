"""The reference KPIs recomputed in Python from the raw seed CSVs.

Independent of dbt, of the marts' SQL and of the compiler: each mart row a KPI needs is
re-derived here from `seeds/<source>/raw_<table>.csv` following docs/data-model.md, and
each KPI of metrics/ has an entry in `ORACLE` saying in Python what it aggregates, over
which rows (`Measure`), or how it combines other KPIs (`Ratio`, `Derived`). Values are
exact (`Fraction`) until compared; periods and aggregation come from `oracle`.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.support import kinds_oracle, oracle

Row = dict[str, Any]
Value = Fraction | None
Values = dict[tuple[dt.date, str], Value]  # {(period_start, dimension_value): value}
TOTAL = "total"


@dataclass(frozen=True)
class Measure:
    """A simple KPI: `agg` of `value(row)` over the mart rows where `where(row)` is true."""

    model: str
    time: str
    agg: str
    value: Callable[[Row], Any]
    where: Callable[[Row], bool | None] = lambda row: True


@dataclass(frozen=True)
class Ratio:
    numerator: str
    denominator: str


@dataclass(frozen=True)
class Derived:
    """`formula(*inputs)` on the inputs' values of one period and slice; None in, None out."""

    inputs: tuple[str, ...]
    formula: Callable[..., Value]


@dataclass(frozen=True)
class Kind:
    """An entity- or time-aware KPI (docs/kinds.md): its `kind` as in metrics/, and its
    values from the marts' rows as `tests/support/kinds_oracle` computes them, called with
    (shop, grain, dimension column or 'total', week start)."""

    kind: str
    values: Callable[[Any, str, str, str], dict[tuple[dt.date, str], float | None]]


@dataclass(frozen=True)
class Offset:
    """A KPI shifted back: `of`'s value `months` calendar months before the period's start,
    the day of the month capped at that month's last day (March 31 reads February 28/29)."""

    of: str
    months: int

    def earlier(self, start: dt.date) -> dt.date:
        year, month = divmod(start.year * 12 + start.month - 1 - self.months, 12)
        return dt.date(year, month + 1, min(start.day, calendar.monthrange(year, month + 1)[1]))


Definition = Measure | Ratio | Derived | Kind | Offset


def div(a: Fraction, b: Fraction) -> Value:
    return None if b == 0 else a / b


def _col(name: str) -> Callable[[Row], Any]:
    return lambda row: row[name]


def _kept(row: Row) -> bool:
    return not row["is_cancelled"]


# --- every reference KPI, in oracle terms (a KPI in metrics/ without an entry fails the test)
ORACLE: dict[str, Definition] = {
    # customer/acquisition.yml
    "new_customers": Measure(
        "orders",
        "order_date",
        "count",
        _col("order_id"),
        lambda r: r["is_first_order"] and not r["is_cancelled"],
    ),
    "cac": Ratio("marketing_spend", "new_customers"),
    "active_customers": Measure(
        "orders", "order_date", "count_distinct", _col("customer_id"), _kept
    ),
    "revenue_per_customer": Ratio("revenue", "active_customers"),
    # customer/nps.yml
    "nps": Derived(
        ("promoters", "detractors", "nps_responses"), lambda p, d, n: div(100 * (p - d), n)
    ),
    "nps_responses": Measure("nps_responses", "response_date", "count", _col("nps_response_id")),
    "promoters": Measure(
        "nps_responses",
        "response_date",
        "count",
        _col("nps_response_id"),
        lambda r: r["score"] is not None and r["score"] >= 9,
    ),
    "detractors": Measure(
        "nps_responses",
        "response_date",
        "count",
        _col("nps_response_id"),
        lambda r: r["score"] is not None and r["score"] <= 6,
    ),
    # customer/service.yml
    "tickets": Measure("tickets", "created_date", "count", _col("ticket_id")),
    "resolved_tickets": Measure(
        "tickets",
        "created_date",
        "count",
        _col("ticket_id"),
        lambda r: r["resolved_at"] is not None,
    ),
    "ticket_resolution_rate": Ratio("resolved_tickets", "tickets"),
    "complaints": Measure(
        "tickets",
        "created_date",
        "count",
        _col("ticket_id"),
        lambda r: r["category"] == "complaint",
    ),
    "first_response_time": Measure(
        "tickets", "created_date", "median", _col("first_response_minutes")
    ),
    "csat": Ratio("satisfied_ratings", "csat_ratings"),
    "satisfied_ratings": Measure(
        "tickets",
        "created_date",
        "count",
        _col("csat_score"),
        lambda r: r["csat_score"] is not None and r["csat_score"] >= 4,
    ),
    "csat_ratings": Measure("tickets", "created_date", "count", _col("csat_score")),
    # financial/margins.yml
    # financial/comparisons.yml
    "revenue_previous_month": Offset("revenue", 1),
    "revenue_mom_growth": Derived(
        ("revenue", "revenue_previous_month"), lambda now, before: div(now - before, before)
    ),
    "gross_profit_margin": Derived(("revenue", "cogs"), lambda rev, cogs: div(rev - cogs, rev)),
    "operating_costs": Measure("operating_costs", "cost_month", "sum", _col("amount")),
    "net_profit_margin": Derived(
        ("revenue", "cogs", "operating_costs", "marketing_spend"),
        lambda rev, cogs, opex, ads: div(rev - cogs - opex - ads, rev),
    ),
    # financial/revenue.yml
    "revenue": Measure("orders", "order_date", "sum", _col("net_revenue"), _kept),
    "gross_sales": Measure("orders", "order_date", "sum", _col("gross_revenue"), _kept),
    "refunds": Measure("orders", "order_date", "sum", _col("refund_amount"), _kept),
    "cogs": Measure("orders", "order_date", "sum", _col("cogs"), _kept),
    # operational/fulfilment.yml
    "fulfilment_time": Measure("orders", "order_date", "average", _col("fulfilment_hours"), _kept),
    "shipped_orders": Measure("orders", "order_date", "count", _col("shipped_at"), _kept),
    "accurate_orders": Measure(
        "orders",
        "order_date",
        "count",
        _col("shipped_at"),
        lambda r: not r["is_cancelled"] and not r["has_wrong_item"],
    ),
    "order_accuracy": Ratio("accurate_orders", "shipped_orders"),
    "items_sold": Measure("order_items", "order_date", "count", _col("order_item_id")),
    "returned_items": Measure(
        "order_items", "order_date", "count", _col("order_item_id"), _col("is_returned")
    ),
    "return_rate": Ratio("returned_items", "items_sold"),
    "ticket_resolution_time": Measure(
        "tickets", "created_date", "average", _col("resolution_hours")
    ),
    # people/employees.yml
    "hires": Measure("employees", "hired_on", "count", _col("employee_id")),
    "leavers": Measure("employees", "left_on", "count", _col("employee_id")),
    "employee_satisfaction": Measure(
        "employee_surveys", "surveyed_on", "average", _col("satisfaction_score")
    ),
    # sales_marketing/campaigns.yml
    "marketing_spend": Measure("marketing_spend", "spend_date", "sum", _col("spend")),
    "ad_impressions": Measure("marketing_spend", "spend_date", "sum", _col("impressions")),
    "ad_clicks": Measure("marketing_spend", "spend_date", "sum", _col("clicks")),
    "click_through_rate": Ratio("ad_clicks", "ad_impressions"),
    "email_sends": Measure("email_campaigns", "sent_date", "sum", _col("sends")),
    "email_opens": Measure("email_campaigns", "sent_date", "sum", _col("opens")),
    "email_open_rate": Ratio("email_opens", "email_sends"),
    "leads": Measure("leads", "created_date", "count", _col("lead_id")),
    "converted_leads": Measure(
        "leads", "created_date", "count", _col("lead_id"), lambda r: r["converted_at"] is not None
    ),
    "lead_conversion_rate": Ratio("converted_leads", "leads"),
    "cost_per_lead": Ratio("marketing_spend", "leads"),
    "won_deal_value": Measure(
        "deals", "closed_on", "sum", _col("amount"), lambda r: r["stage"] == "won"
    ),
    # sales_marketing/orders.yml
    "orders_placed": Measure("orders", "order_date", "count", _col("order_id"), _kept),
    "aov": Ratio("revenue", "orders_placed"),
    "orders_by_new_customers_share": Ratio("new_customers", "orders_placed"),
    "referrals": Measure("referrals", "referred_date", "count", _col("referral_id")),
    # sales_marketing/web.yml
    "sessions": Measure("sessions", "session_date", "count", _col("session_id")),
    "converted_sessions": Measure(
        "sessions", "session_date", "count", _col("session_id"), lambda r: r["order_id"] is not None
    ),
    "conversion_rate": Ratio("converted_sessions", "sessions"),
    "pages_per_session": Measure("sessions", "session_date", "average", _col("pageviews")),
    "visit_duration": Measure("sessions", "session_date", "average", _col("duration_seconds")),
    # the entity- and time-aware kinds (customer/lifetime.yml, financial/running_totals.yml,
    # sales_marketing/pipeline.yml, people/headcount.yml, operational/levels.yml)
    "revenue_to_date": Kind(
        "cumulative",
        lambda shop, grain, dimension, week: kinds_oracle.cumulative(
            _kind_rows(
                shop.orders,
                dimension,
                week,
                time="order_date",
                amount=_col("net_revenue"),
                where=_kept,
            ),
            grain,
            dimension,
        ),
    ),
    "clv": Derived(("revenue_per_customer", "customer_churn"), div),
    "clv_to_date": Kind(
        "lifetime",
        lambda shop, grain, _, week: kinds_oracle.lifetime(
            _kind_rows(
                shop.orders,
                TOTAL,
                week,
                time="order_date",
                entity="customer_id",
                amount=_col("net_revenue"),
                where=_kept,
            ),
            grain,
        ),
    ),
    "clv_365d": Kind(
        "lifetime",
        lambda shop, grain, _, week: kinds_oracle.lifetime(
            _kind_rows(
                shop.orders,
                TOTAL,
                week,
                time="order_date",
                entity="customer_id",
                amount=_col("net_revenue"),
                where=_kept,
            ),
            grain,
            horizon_days=365,
        ),
    ),
    "customer_retention": Kind(
        "retention",
        lambda shop, grain, _, week: kinds_oracle.retention(
            _kind_rows(
                shop.orders, TOTAL, week, time="order_date", entity="customer_id", where=_kept
            ),
            grain,
        ),
    ),
    "customer_churn": Kind(
        "churn",
        lambda shop, grain, _, week: kinds_oracle.retention(
            _kind_rows(
                shop.orders, TOTAL, week, time="order_date", entity="customer_id", where=_kept
            ),
            grain,
            churn=True,
        ),
    ),
    "lead_to_won_rate": Kind(
        "conversion",
        lambda shop, grain, dimension, week: kinds_oracle.conversion(
            _kind_rows(shop.leads, dimension, week, time="created_date", entity="lead_id"),
            _kind_rows(
                shop.deals,
                TOTAL,
                week,
                time="closed_on",
                entity="lead_id",
                where=lambda r: r["stage"] == "won",
            ),
            30,
            grain,
            dimension,
        ),
    ),
    "headcount": Kind(
        "snapshot",
        lambda shop, grain, dimension, week: kinds_oracle.snapshot(
            _kind_rows(
                shop.employees,
                dimension,
                week,
                start="hired_on",
                end="left_on",
                amount=kinds_oracle.counted("employee_id"),
            ),
            grain,
            dimension,
        ),
    ),
    "employee_turnover": Kind(
        "churn",
        lambda shop, grain, dimension, week: kinds_oracle.retention(
            _kind_rows(
                shop.employees,
                dimension,
                week,
                start="hired_on",
                end="left_on",
                entity="employee_id",
            ),
            grain,
            dimension,
            churn=True,
        ),
    ),
    "open_tickets": Kind(
        "snapshot",
        lambda shop, grain, dimension, week: kinds_oracle.snapshot(
            _kind_rows(
                shop.tickets,
                dimension,
                week,
                start="created_date",
                end="resolved_at",
                amount=kinds_oracle.counted("ticket_id"),
            ),
            grain,
            dimension,
        ),
    ),
    "inventory_on_hand": Kind(
        "snapshot",
        lambda shop, grain, dimension, week: kinds_oracle.snapshot(
            _kind_rows(
                shop.inventory_snapshots,
                dimension,
                week,
                time="snapshot_date",
                amount=_col("quantity_on_hand"),
            ),
            grain,
            dimension,
        ),
    ),
    "revenue_per_employee": Derived(("revenue", "headcount"), div),
}


def _kind_rows(
    rows: list[Row], dimension: str, week_start: str, **fields: Any
) -> kinds_oracle.Rows:
    """Mart rows as kinds_oracle reads them, sliced by the mart column `dimension`."""
    dimensions = {} if dimension == TOTAL else {dimension: _col(dimension)}
    return kinds_oracle.Rows(rows, dimensions=dimensions, week_start=week_start, **fields)


# --- raw CSV cells → Python values (an empty cell is NULL, as `dbt seed` loads it)


def _int(cell: str) -> int | None:
    return int(cell) if cell != "" else None


def _dec(cell: str) -> Decimal | None:
    return Decimal(cell) if cell != "" else None


def _ts(cell: str) -> dt.datetime | None:
    return dt.datetime.fromisoformat(cell) if cell != "" else None


def _date(cell: str) -> dt.date | None:
    return dt.date.fromisoformat(cell[:10]) if cell != "" else None


def _code(cell: str) -> str | None:
    """Categorical text: trimmed and lower-cased, as the staging models clean it."""
    return cell.strip().lower() if cell.strip() != "" else None


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


def _elapsed(
    start: dt.datetime | None, end: dt.datetime | None, unit_seconds: int
) -> Decimal | None:
    """Whole seconds from start to end in `unit_seconds` units, as the marts' decimal(12,2)."""
    if start is None or end is None:
        return None
    seconds = int((end - start).total_seconds())
    return (Decimal(seconds) / unit_seconds).quantize(Decimal("0.01"), ROUND_HALF_UP)


class RawMarts:
    """Marts rebuilt from a project's raw seed CSVs: each a property of a subclass, a list of
    row dicts holding the columns its KPIs read (the columns of related models included)."""

    def __init__(self, seeds_dir: Path) -> None:
        self.seeds_dir = seeds_dir

    def _raw(self, source: str, table: str) -> list[dict[str, str]]:
        frame = pd.read_csv(
            self.seeds_dir / source / f"raw_{table}.csv",
            dtype=str,
            keep_default_na=False,
        )
        return frame.to_dict("records")

    def mart(self, name: str) -> list[Row]:
        rows: list[Row] = getattr(self, name)
        return rows


class RawShop(RawMarts):
    """The marts the reference KPIs read, rebuilt from the raw seed CSVs (lists of row dicts)."""

    # the many-to-one joins dimensions like `customers.segment` go through

    @cached_property
    def customers(self) -> list[Row]:
        return [
            {
                "customer_id": _int(r["customer_id"]),
                "signed_up_at": _ts(r["signed_up_at"]),
                "acquisition_channel": _code(r["acquisition_channel"]),
                "region": _code(r["region"]),
                "segment": _code(r["segment"]),
            }
            for r in self._raw("shop", "customers")
        ]

    @cached_property
    def products(self) -> list[Row]:
        return [
            {
                "product_id": _int(r["product_id"]),
                "product_name": r["product_name"].strip(),
                "category": _code(r["category"]),
                "price": _dec(r["price"]),
                "unit_cost": _dec(r["unit_cost"]),
            }
            for r in self._raw("shop", "products")
        ]

    @staticmethod
    def _join(rows: list[Row], key: str, target: str, parents: list[Row], parent_key: str) -> None:
        """Add `target.column` to each row from its parent (many-to-one; None without one)."""
        by_key = {p[parent_key]: p for p in parents}
        columns = [c for c in parents[0] if c != parent_key] if parents else []
        for row in rows:
            parent = by_key.get(row[key], {})
            for column in columns:
                row[f"{target}.{column}"] = parent.get(column)

    # shop

    @cached_property
    def order_items(self) -> list[Row]:
        orders = {r["order_id"]: r for r in self._raw("shop", "orders")}
        unit_cost = {p["product_id"]: p["unit_cost"] for p in self.products}
        category = {p["product_id"]: p["category"] for p in self.products}
        returns: dict[int | None, list[dict[str, str]]] = {}
        for r in self._raw("shop", "returns"):
            returns.setdefault(_int(r["order_item_id"]), []).append(r)
        rows = []
        for r in self._raw("shop", "order_items"):
            item_id, product_id = _int(r["order_item_id"]), _int(r["product_id"])
            order = orders.get(r["order_id"], {})
            quantity, price = _int(r["quantity"]) or 0, _dec(r["unit_price"]) or Decimal(0)
            discount = _dec(r["discount_amount"]) or Decimal(0)
            its_returns = returns.get(item_id, [])
            rows.append(
                {
                    "order_item_id": item_id,
                    "order_id": _int(r["order_id"]),
                    "product_id": product_id,
                    "customer_id": _int(order.get("customer_id", "")),
                    "order_date": _date(order.get("ordered_at", "")),
                    "category": category.get(product_id),
                    "quantity": quantity,
                    "gross_amount": quantity * price,
                    "discount_amount": discount,
                    "net_amount": quantity * price - discount,
                    "cogs": quantity * unit_cost.get(product_id, Decimal(0)),
                    "is_returned": bool(its_returns),
                    "refund_amount": sum(
                        (_dec(x["refund_amount"]) or 0 for x in its_returns), Decimal(0)
                    ),
                    "has_wrong_item": any(_code(x["reason"]) == "wrong_item" for x in its_returns),
                }
            )
        self._join(rows, "customer_id", "customers", self.customers, "customer_id")
        self._join(rows, "product_id", "products", self.products, "product_id")
        return rows

    @cached_property
    def orders(self) -> list[Row]:
        items: dict[Any, list[Row]] = {}
        for item in self.order_items:
            items.setdefault(item["order_id"], []).append(item)
        shipments: dict[int | None, list[dict[str, str]]] = {}
        for s in self._raw("shop", "shipments"):
            shipments.setdefault(_int(s["order_id"]), []).append(s)
        rows = []
        for r in self._raw("shop", "orders"):
            order_id, ordered_at = _int(r["order_id"]), _ts(r["ordered_at"])
            lines = items.get(order_id, [])
            net_sales = sum((i["net_amount"] for i in lines), Decimal(0))
            refunds = sum((i["refund_amount"] for i in lines), Decimal(0))
            ships = shipments.get(order_id, [])
            shipped = [t for s in ships if (t := _ts(s["shipped_at"])) is not None]
            delivered = [t for s in ships if (t := _ts(s["delivered_at"])) is not None]
            # delivered once every shipment is (there is one per shipped order)
            delivered_at = max(delivered) if ships and len(delivered) == len(ships) else None
            rows.append(
                {
                    "order_id": order_id,
                    "customer_id": _int(r["customer_id"]),
                    "ordered_at": ordered_at,
                    "order_date": _day(ordered_at),
                    "status": _code(r["status"]),
                    "channel": _code(r["channel"]),
                    "device": _code(r["device"]),
                    "is_cancelled": _code(r["status"]) == "cancelled",
                    "gross_revenue": sum((i["gross_amount"] for i in lines), Decimal(0)),
                    "net_sales": net_sales,
                    "cogs": sum((i["cogs"] for i in lines), Decimal(0)),
                    "refund_amount": refunds,
                    "net_revenue": net_sales - refunds,
                    "shipped_at": min(shipped, default=None),
                    "delivered_at": delivered_at,
                    "fulfilment_hours": _elapsed(ordered_at, delivered_at, 3600),
                    "is_returned": any(i["is_returned"] for i in lines),
                    "has_wrong_item": any(i["has_wrong_item"] for i in lines),
                }
            )
        # the customer's first order: earliest non-cancelled by (ordered_at, order_id)
        firsts: dict[Any, Row] = {}
        for row in sorted(rows, key=lambda o: (o["ordered_at"], o["order_id"])):
            if not row["is_cancelled"]:
                firsts.setdefault(row["customer_id"], row)
        for row in rows:
            row["is_first_order"] = firsts.get(row["customer_id"]) is row
        self._join(rows, "customer_id", "customers", self.customers, "customer_id")
        return rows

    # web and marketing

    @cached_property
    def sessions(self) -> list[Row]:
        rows = [
            {
                "session_id": _int(r["session_id"]),
                "customer_id": _int(r["customer_id"]),
                "session_date": _date(r["started_at"]),
                "source": _code(r["source"]),
                "medium": _code(r["medium"]),
                "campaign": _code(r["campaign"]),
                "landing_page": r["landing_page"].strip() or None,
                "device": _code(r["device"]),
                "pageviews": _int(r["pageviews"]),
                "duration_seconds": _int(r["duration_seconds"]),
                "order_id": _int(r["order_id"]),
            }
            for r in self._raw("web", "sessions")
        ]
        self._join(rows, "customer_id", "customers", self.customers, "customer_id")
        return rows

    @cached_property
    def marketing_spend(self) -> list[Row]:
        return [
            {
                "spend_date": _date(r["spend_date"]),
                "channel": _code(r["channel"]),
                "campaign": _code(r["campaign"]),
                "impressions": _int(r["impressions"]),
                "clicks": _int(r["clicks"]),
                "spend": _dec(r["spend"]),
            }
            for r in self._raw("marketing", "ad_spend")
        ]

    @cached_property
    def email_campaigns(self) -> list[Row]:
        return [
            {
                "email_campaign_id": _int(r["email_campaign_id"]),
                "campaign_name": r["campaign_name"].strip(),
                "sent_date": _date(r["sent_at"]),
                "sends": _int(r["sends"]),
                "opens": _int(r["opens"]),
                "clicks": _int(r["clicks"]),
            }
            for r in self._raw("marketing", "email_campaigns")
        ]

    @cached_property
    def referrals(self) -> list[Row]:
        return [
            {"referral_id": _int(r["referral_id"]), "referred_date": _date(r["referred_at"])}
            for r in self._raw("marketing", "referrals")
        ]

    # crm

    @cached_property
    def leads(self) -> list[Row]:
        return [
            {
                "lead_id": _int(r["lead_id"]),
                "source": _code(r["source"]),
                "created_date": _date(r["created_at"]),
                "qualified_at": _ts(r["qualified_at"]),
                "converted_at": _ts(r["converted_at"]),
            }
            for r in self._raw("crm", "leads")
        ]

    @cached_property
    def deals(self) -> list[Row]:
        rows = [
            {
                "deal_id": _int(r["deal_id"]),
                "lead_id": _int(r["lead_id"]),
                "stage": _code(r["stage"]),
                "amount": _dec(r["amount"]),
                "created_on": _date(r["created_on"]),
                "closed_on": _date(r["closed_on"]),
            }
            for r in self._raw("crm", "deals")
        ]
        self._join(rows, "lead_id", "leads", self.leads, "lead_id")
        return rows

    @cached_property
    def tickets(self) -> list[Row]:
        rows = []
        for r in self._raw("crm", "tickets"):
            created_at, resolved_at = _ts(r["created_at"]), _ts(r["resolved_at"])
            rows.append(
                {
                    "ticket_id": _int(r["ticket_id"]),
                    "customer_id": _int(r["customer_id"]),
                    "created_date": _day(created_at),
                    "resolved_at": resolved_at,
                    "channel": _code(r["channel"]),
                    "category": _code(r["category"]),
                    "first_response_minutes": _elapsed(created_at, _ts(r["first_response_at"]), 60),
                    "resolution_hours": _elapsed(created_at, resolved_at, 3600),
                    "csat_score": _int(r["csat_score"]),
                }
            )
        self._join(rows, "customer_id", "customers", self.customers, "customer_id")
        return rows

    @cached_property
    def nps_responses(self) -> list[Row]:
        rows = [
            {
                "nps_response_id": _int(r["nps_response_id"]),
                "customer_id": _int(r["customer_id"]),
                "response_date": _date(r["responded_at"]),
                "score": _int(r["score"]),
            }
            for r in self._raw("crm", "nps_responses")
        ]
        self._join(rows, "customer_id", "customers", self.customers, "customer_id")
        return rows

    @cached_property
    def inventory_snapshots(self) -> list[Row]:
        category = {p["product_id"]: p["category"] for p in self.products}
        return [
            {
                "snapshot_date": _date(r["snapshot_date"]),
                "product_id": _int(r["product_id"]),
                "category": category.get(_int(r["product_id"])),
                "quantity_on_hand": _int(r["quantity_on_hand"]),
            }
            for r in self._raw("shop", "inventory_snapshots")
        ]

    # people and finance

    @cached_property
    def employees(self) -> list[Row]:
        return [
            {
                "employee_id": _int(r["employee_id"]),
                "department": _code(r["department"]),
                "job_title": r["job_title"].strip(),
                "hired_on": _date(r["hired_on"]),
                "left_on": _date(r["left_on"]),
            }
            for r in self._raw("hr", "employees")
        ]

    @cached_property
    def employee_surveys(self) -> list[Row]:
        department = {e["employee_id"]: e["department"] for e in self.employees}
        rows = [
            {
                "employee_survey_id": _int(r["employee_survey_id"]),
                "employee_id": _int(r["employee_id"]),
                "department": department.get(_int(r["employee_id"])),
                "surveyed_on": _date(r["surveyed_on"]),
                "satisfaction_score": _int(r["satisfaction_score"]),
            }
            for r in self._raw("hr", "employee_surveys")
        ]
        self._join(rows, "employee_id", "employees", self.employees, "employee_id")
        return rows

    @cached_property
    def operating_costs(self) -> list[Row]:
        return [
            {
                "cost_month": _date(r["cost_month"]),
                "cost_category": _code(r["cost_category"]),
                "amount": _dec(r["amount"]),
            }
            for r in self._raw("finance", "operating_costs")
        ]


class RawOracle:
    """Values of any KPI in `definitions` (the demo's `ORACLE` by default) at a grain and
    dimension (a mart column, or 'total')."""

    def __init__(
        self,
        shop: RawMarts,
        week_start: str = "monday",
        definitions: dict[str, Definition] | None = None,
    ) -> None:
        self.shop = shop
        self.week_start = week_start
        self.definitions = ORACLE if definitions is None else definitions
        self._values: dict[tuple[str, str, str], Values] = {}
        self._memo: dict[tuple[str, ...], Any] = {}

    def values(self, kpi: str, grain: str, dimension: str = TOTAL) -> Values:
        key = (kpi, grain, dimension)
        if key not in self._values:
            definition = self.definitions[kpi]
            if isinstance(definition, Measure):
                self._values[key] = self._measure(kpi, definition, grain, dimension)
            elif isinstance(definition, Ratio):
                sides = (definition.numerator, definition.denominator)
                self._values[key] = self._combine(sides, div, grain, dimension)
            elif isinstance(definition, Offset):
                base = self.values(definition.of, grain, dimension)
                self._values[key] = {
                    (start, s): base.get((definition.earlier(start), s)) for start, s in base
                }
            elif isinstance(definition, Kind):
                found = definition.values(self.shop, grain, dimension, self.week_start)
                self._values[key] = {
                    k: None if v is None else Fraction(v) for k, v in found.items()
                }
            else:
                self._values[key] = self._combine(
                    definition.inputs, definition.formula, grain, dimension
                )
        return self._values[key]

    def _combine(
        self, inputs: tuple[str, ...], formula: Callable[..., Value], grain: str, dimension: str
    ) -> Values:
        """After aggregation, per (period, slice) of any input; a missing or NULL input is NULL."""
        sides = [self.values(name, grain, dimension) for name in inputs]
        out: Values = {}
        for key in set().union(*sides):
            args = [side.get(key) for side in sides]
            out[key] = None if any(a is None for a in args) else formula(*args)
        return out

    def _cached(self, key: tuple[str, ...], compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _rows(self, model: str, time: str) -> list[Row]:
        """The mart's rows with a time: the only ones that belong to a period."""
        return self._cached(
            ("rows", model, time), lambda: [r for r in self.shop.mart(model) if r[time] is not None]
        )

    def _starts(self, model: str, time: str, grain: str) -> tuple[list[dt.date], np.ndarray]:
        """The grain's periods from the first to the last day, and each row's period (index)."""

        def compute() -> tuple[list[dt.date], np.ndarray]:
            days = [oracle._day(r[time]) for r in self._rows(model, time)]
            spine = oracle.periods(grain, min(days), max(days), self.week_start)
            index = {start: i for i, start in enumerate(spine)}
            of_day = {d: index[oracle.period_start(grain, d, self.week_start)] for d in set(days)}
            return spine, np.array([of_day[d] for d in days], dtype=np.int64)

        return self._cached(("starts", model, time, grain), compute)

    def _slices(self, model: str, time: str, dimension: str) -> tuple[list[str], np.ndarray]:
        """The slices observed over all the mart's rows (filter or not), and each row's slice."""

        def compute() -> tuple[list[str], np.ndarray]:
            rows = self._rows(model, time)
            if dimension == TOTAL:
                return [TOTAL], np.zeros(len(rows), dtype=np.int64)
            labels = [oracle.slice_label(r[dimension]) for r in rows]
            slices = sorted(set(labels))
            index = {s: i for i, s in enumerate(slices)}
            return slices, np.array([index[s] for s in labels], dtype=np.int64)

        return self._cached(("slices", model, time, dimension), compute)

    def _inputs(self, kpi: str, m: Measure) -> tuple[np.ndarray, list[Any]]:
        """Per row: kept by the filter (TRUE only; NULL counts as false), and the value."""

        def compute() -> tuple[np.ndarray, list[Any]]:
            rows = self._rows(m.model, m.time)
            return np.array([m.where(r) is True for r in rows], dtype=bool), [
                m.value(r) for r in rows
            ]

        return self._cached(("inputs", kpi), compute)

    def _measure(self, kpi: str, m: Measure, grain: str, dimension: str) -> Values:
        if not self._rows(m.model, m.time):
            return {}
        spine, starts = self._starts(m.model, m.time, grain)
        slices, labels = self._slices(m.model, m.time, dimension)
        kept, values = self._inputs(kpi, m)
        frame = pd.DataFrame(
            {
                "start": starts[kept],
                "slice": labels[kept],
                # object dtype: None stays None (pandas would make it NaN)
                "value": pd.Series(
                    [v for v, k in zip(values, kept, strict=True) if k], dtype=object
                ),
            }
        )
        buckets = frame.groupby(["start", "slice"])["value"].agg(list).to_dict()
        return {
            (start, s): oracle.exact_aggregate(m.agg, buckets.get((i, j), []))
            for i, start in enumerate(spine)
            for j, s in enumerate(slices)
        }
