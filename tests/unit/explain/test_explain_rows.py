"""Which decomposition a KPI gets, from hand-made kpi_values rows and metric YAML (no warehouse)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from typing import Any

import pytest

from pipeline.errors import UserError
from pipeline.explain.marts import Rows, explain_period, parse_period
from pipeline.spec.load import load

SPEC, _ = load({"metrics/x.yml": """
version: 1
kpis:
  - {name: revenue, category: financial, model: orders, time: order_date, sum: amount, dimensions: [channel]}
  - {name: orders, category: financial, model: orders, time: order_date, count: order_id, dimensions: [channel]}
  - {name: cogs, category: financial, model: orders, time: order_date, sum: cost}
  - {name: aov, category: financial, ratio: {numerator: revenue, denominator: orders}, dimensions: [channel]}
  - {name: basket, category: financial, model: orders, time: order_date, average: amount, dimensions: [channel]}
  - {name: buyers, category: customer, model: orders, time: order_date, count_distinct: customer_id, dimensions: [channel, segment]}
  - {name: median_order, category: financial, model: orders, time: order_date, median: amount, dimensions: [channel]}
  - {name: margin_per_order, category: financial, derived: (revenue - cogs) / orders}
"""})
OCT, NOV = date(2026, 10, 1), date(2026, 11, 1)
# (month, channel, segment, customer, amount, cost): the raw rows the oracle aggregates
ORDERS = [
    (OCT, "web", "consumer", "c1", 100.0, 60.0), (OCT, "web", "consumer", "c1", 50.0, 20.0),
    (OCT, "app", "trade", "c2", 30.0, 10.0), (OCT, None, "consumer", "c3", 20.0, 5.0),
    (NOV, "web", "consumer", "c1", 80.0, 40.0), (NOV, "app", "consumer", "c1", 90.0, 50.0),
    (NOV, "marketplace", "trade", "c4", 40.0, 30.0), (NOV, "marketplace", "trade", "c2", 10.0, 1.0),
]  # fmt: skip


def _slice(value: Any) -> str:
    return "(null)" if value is None else str(value)


def _oracle_rows(partial: bool = False) -> list[dict[str, Any]]:
    """kpi_values rows computed in plain Python from ORDERS (to date: October's first half,
    the rows of October before its 3rd order, when November is partial)."""
    rows = []
    for month in (OCT, NOV):
        orders = [o for o in ORDERS if o[0] == month]
        early = [o for o in ORDERS if o[0] == OCT][:2]
        slicings = {"total": lambda o: "total", "channel": lambda o: _slice(o[1]), "segment": lambda o: o[2]}
        for dimension, key in slicings.items():
            groups: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
            early_groups: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
            for o in orders:
                groups[key(o)].append(o)
            for o in early:
                early_groups[key(o)].append(o)
            for name, group in groups.items():
                early_group = early_groups.get(name, [])
                amounts = [o[4] for o in group]
                values = {
                    "revenue": (sum(amounts), None, None, sum(o[4] for o in early_group)),
                    "orders": (float(len(group)), None, None, float(len(early_group))),
                    "cogs": (sum(o[5] for o in group), None, None, sum(o[5] for o in early_group)),
                    "aov": (sum(amounts) / len(group), sum(amounts), float(len(group)), None),
                    "basket": (sum(amounts) / len(group), sum(amounts), float(len(group)), None),
                    "buyers": (float(len({o[3] for o in group})), None, None, None),
                    "median_order": (sorted(amounts)[len(amounts) // 2], None, None, None),
                }
                if dimension == "total":
                    revenue, count, cost = sum(amounts), len(group), sum(o[5] for o in group)
                    values["margin_per_order"] = ((revenue - cost) / count, None, None, None)
                for kpi, (value, num, den, to_date) in values.items():
                    if (dimension == "segment" and kpi != "buyers") or (dimension != "total" and kpi == "cogs"):
                        continue
                    rows.append({
                        "kpi": kpi, "grain": "month", "period_start": month, "period_end": month.replace(day=28),
                        "dimension": dimension, "dimension_value": name, "value": value,
                        "numerator": num, "denominator": den, "label": kpi, "format": "number",
                        "unit": None, "direction": "higher",
                        "is_partial_period": partial and month == NOV,
                        "previous_value_to_date": to_date if partial and month == NOV else None,
                    })  # fmt: skip
    # slices seen in one month exist in the other too, at 0 or NULL (as the marts have them)
    return rows


def _total(kpi: str, month: date) -> float:
    rows = _oracle_rows()
    return next(r["value"] for r in rows if r["kpi"] == kpi and r["period_start"] == month and r["dimension"] == "total")


def _explain(name: str, dimensions: tuple[str, ...] = (), partial: bool = False) -> Any:
    kpi = SPEC.kpi(name)
    assert kpi is not None
    return explain_period(SPEC, Rows(_oracle_rows(partial)), kpi, period=NOV, base=OCT, dimensions=dimensions)


def _contributions(section: Any) -> dict[str, float]:
    return {d.name: d.contribution for d in section.drivers}


def test_a_sum_by_channel_gives_each_slices_change_including_the_null_slice():
    x = _explain("revenue", ("channel",))
    assert x.change == _total("revenue", NOV) - _total("revenue", OCT) == 220.0 - 200.0
    [section] = x.sections
    assert section.method == "additive" and section.exact
    assert _contributions(section) == {"web": -70.0, "app": 60.0, "marketplace": 50.0, "(null)": -20.0}
    assert math.isclose(section.total or 0.0, x.change, rel_tol=1e-12)


def test_a_partial_period_compares_each_slice_with_the_previous_period_to_date():
    x = _explain("revenue", ("channel",), partial=True)
    assert x.to_date and x.base_value == 150.0  # October's first two orders, both on web
    [section] = x.sections
    assert _contributions(section) == {"web": -70.0, "app": 90.0, "marketplace": 50.0}
    assert math.isclose(section.total or 0.0, x.change, rel_tol=1e-12)


def test_a_ratio_gets_mix_and_rate_effects_and_its_inputs_shapley_values():
    x = _explain("aov", ("channel",))
    assert x.change == pytest.approx(220 / 4 - 200 / 4)
    by_channel, by_input = x.sections
    assert by_channel.method == "mix_rate" and by_input.method == "shapley"
    for section in x.sections:
        assert math.isclose(section.total or 0.0, x.change, rel_tol=1e-12)
    drivers = {d.name: d for d in by_channel.drivers}
    # web: 2 of 4 orders at 75 → 1 of 4 at 80; the null slice disappears (all mix)
    assert drivers["web"].share == 0.25 and drivers["web"].base_share == 0.5
    assert drivers["(null)"].rate == 0.0 and drivers["(null)"].value is None
    assert _contributions(by_input) == pytest.approx({"revenue": 20 / 4, "orders": 0.0})


def test_an_average_is_a_ratio_of_its_sum_and_count():
    x = _explain("basket", ("channel",))
    [section] = x.sections
    assert section.method == "mix_rate"
    assert math.isclose(section.total or 0.0, x.change, rel_tol=1e-12)


def test_a_partial_ratio_without_numbers_to_date_compares_with_the_whole_base_and_says_so():
    x = _explain("basket", ("channel",), partial=True)
    assert not x.to_date and x.base_value == 50.0
    assert any("whole" in note for note in x.notes)


def test_distinct_counts_are_exact_when_slices_do_not_overlap_and_own_changes_otherwise():
    x = _explain("buyers", ("segment", "channel"))
    assert (x.value, x.base_value) == (3.0, 3.0)  # nov: c1, c4, c2; oct: c1, c2, c3
    by_segment, by_channel = x.sections
    # each customer is in one segment in each month: the segments' counts partition the total
    assert by_segment.method == "additive"
    assert _contributions(by_segment) == {"consumer": -1.0, "trade": 1.0}
    # c1 bought on web and app in November: channels overlap, no exact split exists
    assert by_channel.method == "own_change" and not by_channel.exact and by_channel.total is None
    assert "distinct count" in by_channel.note and "do not sum" in by_channel.note
    assert {d.name: d.change for d in by_channel.drivers} == {
        "web": 0.0, "app": 0.0, "marketplace": 2.0, "(null)": -1.0
    }


def test_a_median_shows_each_slices_own_change():
    [section] = _explain("median_order", ("channel",)).sections
    assert section.method == "own_change" and "median" in section.note


def test_a_derived_kpi_is_explained_by_its_inputs():
    x = _explain("margin_per_order")
    [section] = x.sections
    assert section.method == "shapley"
    assert {d.name for d in section.drivers} == {"revenue", "cogs", "orders"}
    assert math.isclose(section.total or 0.0, x.change, rel_tol=1e-12)
    assert x.change == pytest.approx((220 - 121) / 4 - (200 - 95) / 4)


@pytest.mark.parametrize(
    ("text", "grain", "expected"),
    [
        ("2026-10", None, ("month", date(2026, 10, 1))),
        ("2026-Q3", None, ("quarter", date(2026, 7, 1))),
        ("2026-W44", None, ("week", date(2026, 10, 26))),
        ("2026", None, ("year", date(2026, 1, 1))),
        ("2026-10-15", None, ("day", date(2026, 10, 15))),
        ("2026-10-15", "month", ("month", date(2026, 10, 15))),
    ],
)
def test_periods_are_read_in_every_form(text, grain, expected):
    assert parse_period(text, grain) == expected


@pytest.mark.parametrize(
    ("text", "grain", "message"),
    [("2026-13", None, "month must be in 1..12"), ("2026-Q3", "month", "is a quarter"), ("last month", None, "cannot read")],
)
def test_bad_periods_are_user_errors(text, grain, message):
    with pytest.raises(UserError, match=message):
        parse_period(text, grain)


def test_last_year_is_the_marts_pairing_and_week_53_has_none():
    import duckdb

    from pipeline.explain.marts import _base

    weeks = [(date(2019, 12, 30), date(2020, 1, 5)), (date(2020, 12, 28), date(2021, 1, 3)),
             (date(2021, 12, 27), date(2022, 1, 2))]  # fmt: skip
    with duckdb.connect() as con:
        # ISO week 52 of 2021 compares with week 52 of 2020... which is not in the marts here
        with pytest.raises(UserError, match=r"no data for the same week last year \(2020-12-21\)"):
            _base(con, weeks, date(2021, 12, 27), "last_year", "week", "monday", "revenue")
        # 2020 had 53 ISO weeks, 2019 52: week 53 compares with nothing
        with pytest.raises(UserError, match="no same period last year"):
            _base(con, weeks, date(2020, 12, 28), "last_year", "week", "monday", "revenue")
        months = [(date(2025, 2, 1), date(2025, 2, 28)), (date(2026, 2, 1), date(2026, 2, 28))]
        assert _base(con, months, date(2026, 2, 1), "last_year", "month", "monday", "revenue") == date(2025, 2, 1)
