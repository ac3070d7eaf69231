"""The projection of the current, partial period to its end (projected_value,
projected_attainment, projected_status of `kpi_values`), on real DuckDB, against the
Python oracle in projection_oracle over hand-made daily data."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict

import pandas as pd
import pytest

from tests.support import oracle
from tests.support import projection_oracle as po
from tests.support import tracking_oracle as to
from tests.support.generated import compile_metrics, run

D = dt.date
FIRST, AS_OF = D(2024, 5, 20), D(2025, 6, 11)  # a Wednesday: every grain but day is partial
GRAINS = ("week", "month", "quarter", "year")

METRICS = """
kpis:
  - name: revenue
    category: financial
    model: orders
    time: order_date
    sum: amount
    dimensions: [channel]
    targets: [{value: 3000, per: month}]
  - {name: orders_placed, category: sales_marketing, model: orders, time: order_date, count: order_id, dimensions: [channel]}
  - {name: conversions, category: sales_marketing, model: orders, time: order_date, sum: converted, dimensions: [channel]}
  - name: conversion_rate
    category: sales_marketing
    ratio: {numerator: conversions, denominator: orders_placed}
    dimensions: [channel]
    targets: [{value: 0.5}]
  - name: refunds
    category: financial
    model: orders
    time: order_date
    sum: refund
    direction: lower
    dimensions: [channel]
    targets: [{value: 60, per: month}]
  - {name: avg_amount, category: financial, model: orders, time: order_date, average: amount, dimensions: [channel]}
  - {name: buyers, category: customer, model: orders, time: order_date, count_distinct: customer_id}
  - {name: monthly_revenue, category: financial, model: orders, time: order_date, sum: amount, grains: [month, year]}
"""
# kpi: daily numerator, daily denominator (None: additive), direction
PROJECTED = {
    "revenue": (lambda r: r["amount"], None, "higher"),
    "orders_placed": (lambda r: 1, None, "higher"),
    "conversions": (lambda r: r["converted"], None, "higher"),
    "conversion_rate": (lambda r: r["converted"], lambda r: 1, "higher"),
    "refunds": (lambda r: r["refund"], None, "lower"),
    "avg_amount": (lambda r: r["amount"], lambda r: 1, "higher"),
}
TARGETS = {
    "revenue": [to.Target(value=3000.0, per="month")],
    "conversion_rate": [to.Target(value=0.5)],
    "refunds": [to.Target(value=60.0, per="month")],
}


@pytest.fixture(scope="module")
def shop():
    """Orders with a weekday pattern and a yearly swing, busier on weekends and in summer."""
    rng = random.Random(25)
    rows, day, order_id = [], FIRST, 0
    while day <= AS_OF:
        busy = (2.5 if day.weekday() >= 5 else 1.0) * (1.6 + math.sin(day.timetuple().tm_yday / 58))
        for _ in range(rng.randint(1, round(4 * busy))):
            order_id += 1
            rows.append(
                {
                    "order_id": order_id,
                    "customer_id": rng.randint(1, 40),
                    "order_date": day,
                    "amount": round(rng.uniform(5, 80), 2),
                    "channel": rng.choice(["web", "app"]),
                    "converted": rng.choice([0, 1]),
                    "refund": rng.choice([0.0, 0.0, 0.0, 12.5]),
                }
            )
        day += dt.timedelta(days=1)
    tables = {"orders": pd.DataFrame(rows)}
    return rows, run(compile_metrics(METRICS, tables), tables)


def _daily(rows, value, channel: str) -> dict[dt.date, float]:
    """Every day of the data: the sum of `value` over its rows of the slice (0 without any)."""
    out: dict[dt.date, float] = defaultdict(float)
    for i in range((AS_OF - FIRST).days + 1):
        out[FIRST + dt.timedelta(days=i)] = 0.0
    for r in rows:
        if channel in ("total", r["channel"]):
            out[r["order_date"]] += value(r)
    return out


def _row(con, kpi: str, grain: str, channel: str, start: dt.date) -> dict:
    dimension = "total" if channel == "total" else "channel"
    result = con.execute(
        "select * from kpi_values where kpi = ? and grain = ? and dimension = ? "
        "and dimension_value = ? and period_start = ?",
        [kpi, grain, dimension, channel, start],
    )
    names = [d[0] for d in result.description]
    return dict(zip(names, result.fetchone(), strict=True))


def _close(actual, expected, what):
    if expected is None:
        assert actual is None, what
    else:
        assert actual == pytest.approx(expected, rel=1e-9), what


@pytest.mark.parametrize("grain", GRAINS)
@pytest.mark.parametrize("kpi", sorted(PROJECTED))
@pytest.mark.parametrize("channel", ["total", "web"])
def test_the_partial_period_is_projected_as_the_oracle_does(shop, kpi, grain, channel):
    rows, con = shop
    numerator, denominator, direction = PROJECTED[kpi]
    start = oracle.period_start(grain, AS_OF)
    end = to.period_end(grain, start)
    row = _row(con, kpi, grain, channel, start)
    what = f"{kpi} {channel} {grain} {start}"
    assert row["is_partial_period"], what
    expected = po.project(
        _daily(rows, numerator, channel),
        _daily(rows, denominator, channel) if denominator else None,
        start,
        end,
        AS_OF,
    )
    _close(row["projected_value"], expected, what)
    target, _ = to.target_for(
        TARGETS.get(kpi, []) if channel == "total" else [],
        "level" if denominator else "sum",
        grain,
        start,
        {},
        AS_OF,
    )
    attainment = None
    if target is not None and expected:
        attainment = expected / target if direction == "higher" else target / expected
    _close(row["projected_attainment"], attainment, what + " attainment")
    assert row["projected_status"] == to.status(expected, target, direction), what


def test_the_references_a_year_before_pace_the_period_and_without_them_the_run_rate(shop):
    rows, con = shop
    daily = _daily(rows, lambda r: r["amount"], "total")
    month, quarter = D(2025, 6, 1), D(2025, 4, 1)

    def total(first: dt.date, days: int) -> float:
        return sum(daily[first + dt.timedelta(days=i)] for i in range(days))

    # June 2025 (11 of 30 days): the same days 50 to 53 weeks before are in the data, the
    # ones 54 weeks before (from 2024-05-19) are not
    firsts = [month - dt.timedelta(weeks=w) for w in (50, 51, 52, 53)]
    assert firsts[-1] >= FIRST > month - dt.timedelta(weeks=54)
    share = sum(total(f, 11) for f in firsts) / sum(total(f, 30) for f in firsts)
    expected = total(month, 11) / ((share + 11 / 30) / 2)
    assert expected != pytest.approx(total(month, 11) * 30 / 11)
    _close(_row(con, "revenue", "month", "total", month)["projected_value"], expected, "month")
    # Q2 2025's references would start before the data: the run rate
    _close(
        _row(con, "revenue", "quarter", "total", quarter)["projected_value"],
        total(quarter, 72) * 91 / 72,
        "quarter",
    )


def test_complete_periods_days_and_kpis_that_do_not_add_up_over_days_have_no_projection(shop):
    _, con = shop
    projected = con.execute(
        "select kpi, grain, is_partial_period, count(*) from kpi_values "
        "where projected_value is not null or projected_status is not null "
        "group by all order by all"
    ).fetchall()
    assert {(k, g, p) for k, g, p, _ in projected} == {
        (k, g, True) for k in PROJECTED for g in GRAINS
    }
    # a KPI not tracked by day has no day rows to pace it
    assert con.execute(
        "select count(*) from kpi_values where kpi = 'monthly_revenue' and is_partial_period"
    ).fetchone() == (2,)
