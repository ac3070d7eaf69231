"""What the MetricFlow metrics of tests/fixtures/metricflow mean, computed in plain Python
from the fixture's raw CSV rows, the way MetricFlow's documentation defines each type.

MetricFlow returns a row only for a period with data (no `join_to_timespine`): a simple
metric for periods with a row passing its filter, a ratio or derived metric where every
input has one, a cumulative metric for the days whose window holds rows. Each function
returns {(period_start, slice): value} for those periods only.
"""

from __future__ import annotations

import csv
import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "metricflow"
Row = dict[str, Any]
Values = dict[tuple[dt.date, Any], float | None]


@dataclass(frozen=True)
class Shop:
    orders: list[Row]
    customers: list[Row]

    @property
    def segment(self) -> dict[int, str]:
        return {c["customer_id"]: c["segment"] for c in self.customers}


def shop(folder: Path = FIXTURE) -> Shop:
    def rows(name: str) -> list[dict[str, str]]:
        with (folder / "seeds" / f"{name}.csv").open() as file:
            return list(csv.DictReader(file))

    orders = [
        {
            "order_id": int(r["order_id"]),
            "customer_id": int(r["customer_id"]) if r["customer_id"] else None,
            "day": dt.date.fromisoformat(r["ordered_on"]),
            "amount": float(r["amount"]),
            "status": r["status"],
            "channel": r["channel"] or None,
            "is_gift": r["is_gift"] == "true",
        }
        for r in rows("raw_orders")
    ]
    customers = [
        {
            "customer_id": int(r["customer_id"]),
            "day": dt.date.fromisoformat(r["signed_up_on"]),
            "region": r["region"] or None,
            "segment": r["segment"],
        }
        for r in rows("raw_customers")
    ]
    return Shop(orders, customers)


def period(grain: str, day: dt.date) -> dt.date:
    return day if grain == "day" else day.replace(day=1)


AGGREGATE: dict[str, Callable[[list[Any]], float]] = {
    "sum": lambda xs: float(sum(xs)),
    "count": lambda xs: float(len([x for x in xs if x is not None])),
    "count_distinct": lambda xs: float(len({x for x in xs if x is not None})),
    "average": statistics.fmean,
    "min": min,
    "max": max,
    "median": statistics.median,  # percentile_cont(0.5)
}


def simple(
    rows: list[Row],
    agg: str,
    value: Callable[[Row], Any],
    grain: str,
    keep: Callable[[Row], bool] = lambda r: True,
    slice_of: Callable[[Row], Any] = lambda r: "total",
) -> Values:
    groups: dict[tuple[dt.date, Any], list[Any]] = defaultdict(list)
    for row in rows:
        if keep(row):
            groups[(period(grain, row["day"]), slice_of(row))].append(value(row))
    return {key: AGGREGATE[agg](xs) for key, xs in groups.items()}


def combine(f: Callable[..., float | None], *inputs: Values) -> Values:
    """A ratio or derived metric: inputs joined on period (full outer), NULL when one is missing."""
    keys = set(inputs[0]).intersection(*inputs[1:])
    return {k: f(*(i[k] for i in inputs)) for k in keys}


def divide(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def running(
    rows: list[Row],
    agg: str,
    value: Callable[[Row], Any],
    days: list[dt.date],
    start: Callable[[dt.date], dt.date],
) -> Values:
    """A cumulative metric at day grain: rows of each day's window start(d) <= day <= d."""
    out: Values = {}
    for d in days:
        xs = [value(r) for r in rows if start(d) <= r["day"] <= d]
        if xs:
            out[(d, "total")] = AGGREGATE[agg](xs)
    return out


def conversion_rate(
    base: list[Row], events: list[Row], window_days: int, grain: str, slice_of: Callable[[Row], Any]
) -> Values:
    """MetricFlow's conversion: each event is linked to the nearest base row of its entity
    with base day <= event day < base day + window; conversions (count distinct entity)
    are grouped by the base row's period and divided by the base rows (count)."""
    linked: set[tuple[int, dt.date, int]] = set()
    for i, event in enumerate(events):
        candidates = [
            b
            for b in base
            if b["customer_id"] == event["customer_id"]
            and b["day"] <= event["day"]
            and b["day"] > event["day"] - dt.timedelta(days=window_days)
        ]
        if candidates:
            nearest = max(candidates, key=lambda b: b["day"])
            linked.add((nearest["customer_id"], nearest["day"], i))
    by_customer = {b["customer_id"]: b for b in base}
    conversions: dict[tuple[dt.date, Any], set[int]] = defaultdict(set)
    for customer, day, _ in linked:
        conversions[(period(grain, day), slice_of(by_customer[customer]))].add(customer)
    opportunities = simple(base, "count", lambda r: r["customer_id"], grain, slice_of=slice_of)
    return {
        k: divide(float(len(conversions[k])), n)
        for k, n in opportunities.items()
        if k in conversions
    }
