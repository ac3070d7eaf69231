"""Comparisons, targets, status, deviation and windows of the generated `kpi_values` and
`kpi_windows` models, on real DuckDB, against the Python oracle in tracking_oracle."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest

from tests.support import oracle
from tests.support import tracking_oracle as to
from tests.support.generated import compile_metrics, run

GRAINS = ("day", "week", "month", "quarter", "year")
D = dt.date

METRICS = """
kpis:
  - name: revenue
    category: financial
    model: orders
    time: order_date
    sum: amount
    dimensions: [channel]
    windows: [7d, 3m]
    deviation: {periods: 4, k: 1.5}
    targets:
      - {series: {2024-02: 3000}, per: month}
      - {value: 400, per: week, where: {channel: web}, from: 2024-06-03, to: 2024-12-29}
      - {value: 1000, per: month, to: 2024-12-31}
      - {growth: 0.1}
  - {name: orders_placed, category: sales_marketing, model: orders, time: order_date, count: order_id, dimensions: [channel]}
  - {name: conversions, category: sales_marketing, model: orders, time: order_date, sum: converted, dimensions: [channel]}
  - name: conversion_rate
    category: sales_marketing
    ratio: {numerator: conversions, denominator: orders_placed}
    dimensions: [channel]
    windows: [28d]
    status: {at_risk: 0.8}
    targets: [{value: 0.5}]
  - name: refunds
    category: financial
    model: orders
    time: order_date
    sum: refund
    direction: lower
    targets: [{value: 50, per: month}]
  - name: buyers
    category: customer
    model: orders
    time: order_date
    count_distinct: customer_id
    dimensions: [channel]
    windows: [7d, 3m]
    targets: [{value: 20, per: month}]
"""

TARGETS = {
    "revenue": [
        to.Target(series={D(2024, 2, 1): 3000.0}, per="month"),
        to.Target(value=1000.0, per="month", valid_to=D(2024, 12, 31)),
        to.Target(growth=0.1),
    ],
    "revenue/web": [
        to.Target(value=400.0, per="week", valid_from=D(2024, 6, 3), valid_to=D(2024, 12, 29)),
    ],
    "conversion_rate": [to.Target(value=0.5)],
    "refunds": [to.Target(value=50.0, per="month")],
}


@pytest.fixture(scope="module")
def shop():
    """Orders from mid-December 2023 to 2025-03-30 (a leap February, a partial last month)."""
    rng = random.Random(11)
    rows, day, order_id = [], D(2023, 12, 11), 0
    while day <= D(2025, 3, 30):
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
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
    con = run(compile_metrics(METRICS, tables), tables)
    return rows, con


def _rows(con, kpi: str, grain: str, dimension: str = "total", value: str = "total") -> dict:
    result = con.execute(
        "select * from kpi_values where kpi = ? and grain = ? and dimension = ? and dimension_value = ?",
        [kpi, grain, dimension, value],
    )
    names = [d[0] for d in result.description]
    return {
        r[names.index("period_start")]: dict(zip(names, r, strict=True)) for r in result.fetchall()
    }


def _simple(name: str) -> oracle.Simple:
    value = {
        "revenue": "amount",
        "orders_placed": None,
        "conversions": "converted",
        "refunds": "refund",
    }[name]
    agg = "count" if value is None else "sum"
    return oracle.Simple(
        agg,
        "order_date",
        (lambda r: r[value]) if value else (lambda r: 1),
        dimensions={"channel": lambda r: r["channel"]},
    )


def _values(
    rows, name: str, grain: str, dimension: str = "total", slice_value: str = "total"
) -> to.Values:
    if name == "conversion_rate":
        num = _values(rows, "conversions", grain, dimension, slice_value)
        den = _values(rows, "orders_placed", grain, dimension, slice_value)
        return {s: (num[s] / den[s] if den[s] else None) for s in num}
    out = oracle.simple_values(rows, _simple(name), grain, dimension)
    return {s: v for (s, sv), v in out.items() if sv == slice_value}


def _close(actual, expected, what):
    if expected is None:
        assert actual is None, what
    else:
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), what


AS_OF = D(2025, 3, 30)


@pytest.mark.parametrize("grain", GRAINS)
@pytest.mark.parametrize(
    ("kpi", "slice_value", "direction"),
    [
        ("revenue", "total", "higher"),
        ("revenue", "web", "higher"),
        ("conversion_rate", "total", "higher"),
        ("refunds", "total", "lower"),
    ],
)
def test_comparisons_targets_and_status_match_the_oracle(shop, kpi, slice_value, direction, grain):
    rows, con = shop
    dimension = "total" if slice_value == "total" else "channel"
    actual = _rows(con, kpi, grain, dimension, slice_value)
    values = _values(rows, kpi, grain, dimension, slice_value)
    assert set(actual) == set(values)
    prev = to.previous(values)
    targets = TARGETS.get(kpi if slice_value == "total" else f"{kpi}/{slice_value}", [])
    carry = "level" if kpi == "conversion_rate" else "sum"
    at_risk = 0.8 if kpi == "conversion_rate" else 0.9
    for start, row in actual.items():
        what = f"{kpi} {slice_value} {grain} {start}"
        end = to.period_end(grain, start)
        assert row["period_end"] == end, what
        assert row["is_partial_period"] == (end > AS_OF), what
        _close(row["previous_value"], prev[start], what + " previous")
        ly = to.last_year_start(grain, start)
        _close(row["last_year_value"], values.get(ly) if ly else None, what + " last year")
        target, target_to_date = to.target_for(targets, carry, grain, start, values, AS_OF)
        _close(row["target"], target, what + " target")
        _close(row["target_to_date"], target_to_date, what + " target to date")
        assert row["status"] == to.status(
            row["value"], target_to_date, direction, at_risk=at_risk
        ), what
        if target and row["value"]:
            expected = row["value"] / target if direction == "higher" else target / row["value"]
            _close(row["attainment"], expected, what + " attainment")


def test_a_partial_period_compares_with_the_previous_period_over_the_same_elapsed_days(shop):
    rows, con = shop
    daily = _values(rows, "revenue", "day")
    march = _rows(con, "revenue", "month")[D(2025, 3, 1)]
    assert march["is_partial_period"]  # 30 of 31 days
    # February 2025 has 28 days: the 30 elapsed days of March compare with all of February
    _close(
        march["previous_value_to_date"],
        sum(v for d, v in daily.items() if D(2025, 2, 1) <= d <= D(2025, 2, 28)),
        "march",
    )
    quarter = _rows(con, "revenue", "quarter")[D(2025, 1, 1)]
    elapsed = (AS_OF - D(2025, 1, 1)).days + 1
    expected = sum(
        v
        for d, v in daily.items()
        if D(2024, 10, 1) <= d < D(2024, 10, 1) + dt.timedelta(days=elapsed)
    )
    _close(quarter["previous_value_to_date"], expected, "quarter")
    rate = _rows(con, "conversion_rate", "month")[D(2025, 3, 1)]
    num = _values(rows, "conversions", "day")
    den = _values(rows, "orders_placed", "day")
    feb = [d for d in num if D(2025, 2, 1) <= d <= D(2025, 2, 28)]
    _close(
        rate["previous_value_to_date"],
        sum(num[d] for d in feb) / sum(den[d] for d in feb),
        "ratio to date",
    )
    assert (
        _rows(con, "buyers", "month")[D(2025, 3, 1)]["previous_value_to_date"] is None
    )  # not summable


def test_february_29_compares_with_february_28_of_the_year_before(shop):
    rows, con = shop
    leap_day = _rows(con, "revenue", "day")[D(2024, 2, 29)]
    assert leap_day["last_year_value"] is None  # data starts in December 2023
    daily = _values(rows, "revenue", "day")
    _close(
        _rows(con, "revenue", "day")[D(2025, 2, 28)]["last_year_value"],
        daily[D(2024, 2, 28)],
        "feb 28",
    )
    _close(
        _rows(con, "revenue", "day")[D(2025, 3, 1)]["last_year_value"],
        daily[D(2024, 3, 1)],
        "mar 1",
    )


def test_targets_carry_by_the_kpis_nature_and_expire(shop):
    _, con = shop
    months = _rows(con, "revenue", "month")
    assert months[D(2024, 2, 1)]["target"] == pytest.approx(
        3000
    )  # the series wins where it applies
    assert months[D(2024, 3, 1)]["target"] == pytest.approx(1000)  # then the constant
    assert months[D(2024, 3, 1)]["target_source"] == "metrics/test.yml:14 (1000 per month)"
    quarters = _rows(con, "revenue", "quarter")
    assert quarters[D(2024, 1, 1)]["target"] == pytest.approx(
        1000 + 3000 + 1000
    )  # months sum to a quarter
    days = _rows(con, "revenue", "day")
    assert days[D(2024, 4, 10)]["target"] == pytest.approx(1000 / 30)  # spread over April's days
    # the constant expires at the end of 2024; from then on the growth target applies
    assert months[D(2025, 1, 1)]["target_source"].endswith("(+10% on last year)")
    assert months[D(2025, 1, 1)]["target"] == pytest.approx(months[D(2024, 1, 1)]["value"] * 1.1)
    rate = _rows(con, "conversion_rate", "quarter")
    assert {r["target"] for r in rate.values()} == {0.5}  # a rate stays a rate at every grain
    buyers = _rows(con, "buyers", "month")
    assert {r["target"] for r in buyers.values()} == {20.0}
    assert {r["target"] for r in _rows(con, "buyers", "week").values()} == {
        None
    }  # a distinct count does not carry
    assert {r["status"] for r in _rows(con, "orders_placed", "month").values()} == {
        None
    }  # no target, no status


def test_lower_is_better_inverts_attainment(shop):
    _, con = shop
    for row in _rows(con, "refunds", "month").values():
        if row["value"]:
            assert row["attainment"] == pytest.approx(row["target"] / row["value"])
            assert (row["status"] == "on_track") == (row["value"] <= row["target_to_date"])


@pytest.mark.parametrize("grain", ["week", "month"])
def test_the_deviation_flag_matches_the_trailing_mean_and_spread(shop, grain):
    rows, con = shop
    actual = _rows(con, "revenue", grain)
    values = _values(rows, "revenue", grain)
    partial = {s for s in values if to.period_end(grain, s) > AS_OF}
    expected = to.deviations(values, partial, periods=4, k=1.5)
    assert {s: r["is_deviation"] for s, r in actual.items()} == expected
    assert any(expected.values())


def test_trailing_windows_and_period_to_date_sum_numerators_and_denominators(shop):
    rows, con = shop

    def windows(kpi, name):
        return dict(
            con.execute(
                "select period_start, value from kpi_windows where kpi = ? and window_name = ? and dimension = 'total'",
                [kpi, name],
            ).fetchall()
        )

    daily = _values(rows, "revenue", "day")
    assert windows("revenue", "trailing_7_day") == pytest.approx(to.trailing(daily, None, 7))
    monthly = _values(rows, "revenue", "month")
    assert windows("revenue", "trailing_3_month") == pytest.approx(to.trailing(monthly, None, 3))
    num, den = _values(rows, "conversions", "day"), _values(rows, "orders_placed", "day")
    expected = to.trailing(num, den, 28)
    actual = windows("conversion_rate", "trailing_28_day")
    assert set(actual) == set(expected)
    for day, value in expected.items():
        _close(actual[day], value, f"28d {day}")
    for grain, name in (
        ("week", "week_to_date"),
        ("month", "month_to_date"),
        ("year", "year_to_date"),
    ):
        assert windows("revenue", name) == pytest.approx(to.to_date(daily, None, grain))
        ratio = windows("conversion_rate", name)
        for day, value in to.to_date(num, den, grain).items():
            _close(ratio[day], value, f"{name} {day}")


@pytest.mark.parametrize("slice_value", ["total", "web"])
def test_distinct_counts_over_windows_are_recounted_from_rows(shop, slice_value):
    rows, con = shop
    dimension = "total" if slice_value == "total" else "channel"
    kept = [r for r in rows if slice_value == "total" or r["channel"] == slice_value]

    def recount(first: dt.date, last: dt.date) -> float:
        return float(len({r["customer_id"] for r in kept if first <= r["order_date"] <= last}))

    def windows(name):
        return dict(
            con.execute(
                "select period_start, value from kpi_windows where kpi = 'buyers' and window_name = ?"
                " and dimension = ? and dimension_value = ?",
                [name, dimension, slice_value],
            ).fetchall()
        )

    days = sorted({r["order_date"] for r in rows})
    spine = [days[0] + dt.timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
    assert windows("trailing_7_day") == {d: recount(d - dt.timedelta(days=6), d) for d in spine[6:]}
    months = sorted({oracle.period_start("month", d) for d in spine})
    expected = {m: recount(months[i - 2], to.period_end("month", m)) for i, m in enumerate(months) if i >= 2}
    assert windows("trailing_3_month") == expected
    for grain, name in (("week", "week_to_date"), ("month", "month_to_date"), ("year", "year_to_date")):
        assert windows(name) == {d: recount(oracle.period_start(grain, d), d) for d in spine}


def test_iso_week_53_has_no_same_week_last_year():
    rows = [
        {"order_id": i, "order_date": D(2019, 12, 1) + dt.timedelta(days=i), "amount": 1.0}
        for i in range(500)
    ]
    tables = {"orders": pd.DataFrame(rows)}
    metrics = "kpis:\n  - {name: revenue, category: financial, model: orders, time: order_date, sum: amount}\n"
    con = run(compile_metrics(metrics, tables), tables)
    weeks = _rows(con, "revenue", "week")
    assert weeks[D(2020, 12, 28)]["last_year_value"] is None  # 2020-W53: 2019 had 52 weeks
    assert weeks[D(2021, 1, 4)]["last_year_value"] == 7.0  # 2021-W01 compares with 2020-W01
    assert (
        D(2019, 12, 30) in weeks
        and weeks[D(2021, 1, 4)]["last_year_value"] == weeks[D(2019, 12, 30)]["value"]
    )


@pytest.mark.parametrize(
    ("last_day", "previous_first", "previous_last"),
    [
        (D(2024, 1, 30), D(2023, 12, 1), D(2023, 12, 30)),  # 30 days of January vs December 1-30
        (D(2024, 2, 28), D(2024, 1, 1), D(2024, 1, 28)),  # 28 of 29 days of a leap February
        (D(2024, 3, 30), D(2024, 2, 1), D(2024, 2, 29)),  # March 1-30 vs all of February, 29th included
        (D(2023, 3, 31), None, None),  # a complete month is not partial
    ],
)
def test_month_ends_compare_over_the_days_the_previous_month_has(last_day, previous_first, previous_last):
    first = D(2022, 11, 1)
    rows = [
        {"order_id": i, "order_date": first + dt.timedelta(days=i), "amount": float((first + dt.timedelta(days=i)).day)}
        for i in range((last_day - first).days + 1)
    ]
    tables = {"orders": pd.DataFrame(rows)}
    metrics = "kpis:\n  - {name: revenue, category: financial, model: orders, time: order_date, sum: amount}\n"
    month = _rows(run(compile_metrics(metrics, tables), tables), "revenue", "month")[last_day.replace(day=1)]
    assert month["is_partial_period"] == (previous_first is not None)
    if previous_first is None:
        assert month["previous_value_to_date"] is None
    else:
        expected = sum(r["amount"] for r in rows if previous_first <= r["order_date"] <= previous_last)
        assert month["previous_value_to_date"] == pytest.approx(expected)
