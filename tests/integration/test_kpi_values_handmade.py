"""Generated KPI SQL on real DuckDB against the Python oracle, on small hand-made datasets."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest

from tests.support import oracle
from tests.support.generated import compile_metrics, run, values

GRAINS = ("day", "week", "month", "quarter", "year")


def _close(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for key, value in expected.items():
        if value is None:
            assert actual[key] is None, key
        else:
            assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


@pytest.fixture(scope="module")
def random_shop() -> dict[str, pd.DataFrame]:
    """Orders over a year end (ISO week 53 of 2020) with gaps, NULL slices and cancellations."""
    rng = random.Random(7)
    first = dt.date(2020, 11, 20)
    rows = []
    for order_id in range(1, 401):
        day = first + dt.timedelta(days=rng.choice(range(0, 120, 1)) if rng.random() < 0.9 else 130)
        rows.append(
            {
                "order_id": order_id,
                "customer_id": rng.randint(1, 60),
                "ordered_at": dt.datetime.combine(
                    day, dt.time(rng.randint(0, 23), rng.randint(0, 59))
                ),
                "amount": round(rng.uniform(1, 300), 2),
                "channel": rng.choice(["web", "app", "marketplace", None]),
                "is_cancelled": rng.random() < 0.1,
            }
        )
    customers = pd.DataFrame(
        {
            "customer_id": range(1, 61),
            "segment": [rng.choice(["consumer", "trade"]) for _ in range(60)],
        }
    )
    return {"orders": pd.DataFrame(rows), "customers": customers}


RANDOM_METRICS = """
relationships:
  - {from: orders, to: customers, on: customer_id}
kpis:
  - {name: revenue, category: financial, model: orders, time: ordered_at, sum: amount, filter: not is_cancelled, dimensions: [channel, customers.segment]}
  - {name: orders_placed, category: sales_marketing, model: orders, time: ordered_at, count: "*", filter: not is_cancelled, dimensions: [channel, customers.segment]}
  - {name: buyers, category: customer, model: orders, time: ordered_at, count_distinct: customer_id, filter: not is_cancelled, dimensions: [channel, customers.segment]}
  - {name: avg_amount, category: financial, model: orders, time: ordered_at, average: amount, dimensions: [channel]}
  - {name: smallest, category: financial, model: orders, time: ordered_at, min: amount, dimensions: [channel]}
  - {name: largest, category: financial, model: orders, time: ordered_at, max: "amount * 2", dimensions: [channel]}
  - {name: median_amount, category: financial, model: orders, time: ordered_at, median: amount, dimensions: [channel]}
  - {name: aov, category: financial, ratio: {numerator: revenue, denominator: orders_placed}, dimensions: [channel, customers.segment]}
  - {name: revenue_per_buyer, category: customer, ratio: {numerator: revenue, denominator: buyers}, dimensions: [customers.segment]}
  - {name: cancel_free_share, category: operational, derived: "orders_placed / (orders_placed + 0.0)", grains: [month]}
"""


def _oracle_kpis(customers: pd.DataFrame) -> dict[str, oracle.Simple]:
    segment = dict(zip(customers.customer_id, customers.segment, strict=True))
    dims = {"channel": lambda r: r["channel"], "segment": lambda r: segment[r["customer_id"]]}
    kept = lambda r: not r["is_cancelled"]  # noqa: E731
    amount = lambda r: r["amount"]  # noqa: E731
    return {
        "revenue": oracle.Simple("sum", "ordered_at", amount, kept, dims),
        "orders_placed": oracle.Simple("count", "ordered_at", lambda r: 1, kept, dims),
        "buyers": oracle.Simple(
            "count_distinct", "ordered_at", lambda r: r["customer_id"], kept, dims
        ),
        "avg_amount": oracle.Simple("average", "ordered_at", amount, dimensions=dims),
        "smallest": oracle.Simple("min", "ordered_at", amount, dimensions=dims),
        "largest": oracle.Simple("max", "ordered_at", lambda r: r["amount"] * 2, dimensions=dims),
        "median_amount": oracle.Simple("median", "ordered_at", amount, dimensions=dims),
    }


def test_every_aggregation_grain_and_slice_matches_the_oracle(random_shop):
    compiled = compile_metrics(RANDOM_METRICS, random_shop, {"customers": "customer_id"})
    con = run(compiled, random_shop)
    rows = random_shop["orders"].astype(object).to_dict("records")
    for row in rows:
        row["ordered_at"] = row["ordered_at"].to_pydatetime()
        row["channel"] = None if pd.isna(row["channel"]) else row["channel"]
    kpis = _oracle_kpis(random_shop["customers"])
    checked = 0
    for grain in GRAINS:
        for name, kpi in kpis.items():
            for dimension in (
                "total",
                *(
                    ["channel", "segment"]
                    if name in ("revenue", "orders_placed", "buyers")
                    else ["channel"]
                ),
            ):
                _close(
                    values(con, name, grain, dimension),
                    oracle.simple_values(rows, kpi, grain, dimension),
                )
                checked += 1
        for dimension in ("total", "channel", "segment"):
            expected = oracle.ratio(
                oracle.simple_values(rows, kpis["revenue"], grain, dimension),
                oracle.simple_values(rows, kpis["orders_placed"], grain, dimension),
            )
            _close(values(con, "aov", grain, dimension), expected)
    assert checked == 5 * (3 * 3 + 4 * 2)


def test_a_derived_kpi_is_evaluated_after_aggregation_and_guards_division(random_shop):
    compiled = compile_metrics(RANDOM_METRICS, random_shop, {"customers": "customer_id"})
    con = run(compiled, random_shop)
    monthly = values(con, "cancel_free_share", "month")
    orders = values(con, "orders_placed", "month")
    assert set(monthly) == set(orders)
    for key, count in orders.items():
        assert monthly[key] == (1.0 if count else None)
    assert values(con, "cancel_free_share", "day") == {}  # tracked by month only


def _orders(*rows: tuple) -> dict[str, pd.DataFrame]:
    frame = pd.DataFrame(
        rows, columns=["order_id", "customer_id", "order_date", "amount", "channel", "converted"]
    )
    frame["order_date"] = pd.to_datetime(frame["order_date"]).dt.date
    return {"orders": frame}


BASIC = """
kpis:
  - {name: revenue, category: financial, model: orders, time: order_date, sum: amount, dimensions: [channel]}
  - {name: orders_placed, category: sales_marketing, model: orders, time: order_date, count: order_id, dimensions: [channel]}
  - {name: conversions, category: sales_marketing, model: orders, time: order_date, sum: converted, dimensions: [channel]}
  - {name: conversion_rate, category: sales_marketing, format: percent, ratio: {numerator: conversions, denominator: orders_placed}, dimensions: [channel]}
  - {name: buyers, category: customer, model: orders, time: order_date, count_distinct: customer_id}
  - {name: avg_amount, category: financial, model: orders, time: order_date, average: amount}
"""


def test_a_ratio_is_a_ratio_of_sums_not_an_average_of_daily_ratios():
    # day 1: 1 of 10 converted (10%); day 2: 9 of 10 converted (90%); one customer a day
    rows = [(i, 1, "2024-03-01", 1.0, "web", int(i == 0)) for i in range(10)]
    rows += [(10 + i, 2, "2024-03-02", 1.0, "web", int(i < 9)) for i in range(10)]
    rows += [(20 + i, 3, "2024-03-02", 1.0, "web", 1) for i in range(80)]
    tables = _orders(*rows)
    con = run(compile_metrics(BASIC, tables), tables)
    daily = values(con, "conversion_rate", "day")
    assert daily == {(dt.date(2024, 3, 1), "total"): 0.1, (dt.date(2024, 3, 2), "total"): 89 / 90}
    monthly = values(con, "conversion_rate", "month")[(dt.date(2024, 3, 1), "total")]
    assert monthly == pytest.approx(90 / 100)
    assert monthly != pytest.approx(sum(daily.values()) / len(daily))


def test_a_distinct_count_is_recomputed_per_grain_not_summed():
    tables = _orders(
        (1, 7, "2024-03-01", 5.0, "web", 0),
        (2, 7, "2024-03-02", 5.0, "web", 0),
        (3, 8, "2024-03-02", 5.0, "app", 0),
    )
    con = run(compile_metrics(BASIC, tables), tables)
    daily = values(con, "buyers", "day")
    assert sum(v for v in daily.values() if v) == 3
    assert values(con, "buyers", "month") == {(dt.date(2024, 3, 1), "total"): 2.0}
    assert values(con, "buyers", "week") == {(dt.date(2024, 2, 26), "total"): 2.0}


def test_periods_without_rows_exist_with_zero_or_null_as_the_kpi_means():
    tables = _orders((1, 7, "2024-01-01", 5.0, "web", 1), (2, 7, "2024-01-10", 7.0, "web", 0))
    con = run(compile_metrics(BASIC, tables), tables)
    gap = (dt.date(2024, 1, 5), "total")
    assert len(values(con, "revenue", "day")) == 10
    assert values(con, "revenue", "day")[gap] == 0.0
    assert values(con, "orders_placed", "day")[gap] == 0.0
    assert values(con, "buyers", "day")[gap] == 0.0
    assert values(con, "avg_amount", "day")[gap] is None
    assert values(con, "conversion_rate", "day")[gap] is None


def test_iso_week_53_and_year_boundaries():
    # 2020-12-28 (Mon) .. 2021-01-03 (Sun) is ISO week 53 of 2020
    tables = _orders(
        (1, 1, "2020-12-31", 10.0, "web", 0),
        (2, 1, "2021-01-02", 20.0, "web", 0),
        (3, 1, "2021-01-04", 40.0, "web", 0),
    )
    con = run(compile_metrics(BASIC, tables), tables)
    assert values(con, "revenue", "week") == {
        (dt.date(2020, 12, 28), "total"): 30.0,
        (dt.date(2021, 1, 4), "total"): 40.0,
    }
    assert values(con, "revenue", "year") == {
        (dt.date(2020, 1, 1), "total"): 10.0,
        (dt.date(2021, 1, 1), "total"): 60.0,
    }
    ends = dict(
        con.execute(
            "select period_start, period_end from kpi_values where kpi = 'revenue' and grain = 'week' and dimension = 'total'"
        ).fetchall()
    )
    assert ends[dt.date(2020, 12, 28)] == dt.date(2021, 1, 3)


def test_a_leap_day_belongs_to_february_and_february_2024_ends_on_the_29th():
    tables = _orders(
        (1, 1, "2024-02-28", 1.0, "web", 0),
        (2, 1, "2024-02-29", 2.0, "web", 0),
        (3, 1, "2024-03-01", 4.0, "web", 0),
    )
    con = run(compile_metrics(BASIC, tables), tables)
    assert values(con, "revenue", "day")[(dt.date(2024, 2, 29), "total")] == 2.0
    assert values(con, "revenue", "month") == {
        (dt.date(2024, 2, 1), "total"): 3.0,
        (dt.date(2024, 3, 1), "total"): 4.0,
    }
    end = con.execute(
        "select period_end from kpi_values where kpi = 'revenue' and grain = 'month' and period_start = date '2024-02-01' and dimension = 'total'"
    ).fetchone()
    assert end == (dt.date(2024, 2, 29),)
    quarter = con.execute(
        "select period_end from kpi_values where kpi = 'revenue' and grain = 'quarter' and dimension = 'total'"
    ).fetchone()
    assert quarter == (dt.date(2024, 3, 31),)


def test_a_dimension_value_present_only_in_some_periods_is_zero_or_null_elsewhere():
    tables = _orders(
        (1, 1, "2024-01-15", 10.0, "web", 1),
        (2, 1, "2024-01-20", 10.0, "app", 1),
        (3, 1, "2024-02-10", 30.0, "web", 0),
    )
    con = run(compile_metrics(BASIC, tables), tables)
    feb_app = (dt.date(2024, 2, 1), "app")
    assert values(con, "revenue", "month", "channel")[feb_app] == 0.0
    assert values(con, "conversion_rate", "month", "channel")[feb_app] is None
    assert values(con, "conversion_rate", "month", "channel")[(dt.date(2024, 1, 1), "app")] == 1.0


def test_weeks_can_start_on_sunday():
    metrics = BASIC + "config: {week_start: sunday}\n"
    tables = _orders(
        (1, 1, "2024-03-02", 1.0, "web", 0),
        (2, 1, "2024-03-03", 2.0, "web", 0),
        (3, 1, "2024-03-09", 4.0, "web", 0),
    )
    con = run(compile_metrics(metrics, tables), tables)
    # Saturday 2024-03-02 closes the week of Sunday 2024-02-25; Sunday 03-03 opens the next
    assert values(con, "revenue", "week") == {
        (dt.date(2024, 2, 25), "total"): 1.0,
        (dt.date(2024, 3, 3), "total"): 6.0,
    }
