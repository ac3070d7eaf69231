"""The planner's promises: one scan per fact model and time column, dependencies first,
every cycle found."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from pipeline.catalog import read_catalog
from pipeline.compiler import compile_files
from pipeline.semantics import calendar, graph

ROOT = Path(__file__).resolve().parents[3]


def test_every_fact_model_is_scanned_once_for_all_its_kpis():
    fixtures = ROOT / "tests/fixtures"
    files = {f"metrics/{p.name}": p.read_text() for p in sorted((fixtures / "snapshot_metrics").glob("*.yml"))}
    result = compile_files(files, read_catalog(fixtures / "catalog/models", ROOT))
    assert result.plan is not None
    groups = result.plan.groups
    keys = [(g.model, g.time) for g in groups]
    assert len(keys) == len(set(keys))  # one measure group per model and time column
    orders = next(g for g in groups if (g.model, g.time) == ("orders", "order_date"))
    assert {m.name for m in orders.measures} == {  # the fixture's KPIs on orders by order_date
        "orders_placed", "average_order", "buyers", "largest_order", "typical_order",
    }
    for group in groups:
        sql = result.files[f"models/kpi/measures/{group.name}.sql"]
        assert len(re.findall(rf"FROM \{{\{{ ref\('{group.model}'\) \}}\}}", sql)) == 1, group.name


def test_kpis_on_another_time_column_get_their_own_group():
    catalog = read_catalog(ROOT / "tests/fixtures/catalog/models", ROOT)
    metrics = """
kpis:
  - {name: a, category: financial, model: orders, time: order_date, sum: amount}
  - {name: b, category: financial, model: orders, time: order_date, count: order_id}
  - {name: c, category: financial, model: orders, time: ordered_at, count: order_id}
"""
    plan = compile_files({"metrics/m.yml": metrics}, catalog).plan
    assert plan is not None
    assert sorted((g.name, tuple(m.name for m in g.measures)) for g in plan.groups) == [
        ("kpi_measures__orders__order_date", ("a", "b")),
        ("kpi_measures__orders__ordered_at", ("c",)),
    ]


def test_cycles_are_found_once_each_and_inputs_come_first():
    deps = {"a": ("b",), "b": ("a",), "c": ("c",), "d": ("e",), "e": (), "f": ("d", "e")}
    assert graph.find_cycles(deps) == [["a", "b", "a"], ["c", "c"]]
    order = graph.build_order({"d": ("e",), "e": (), "f": ("d", "e")})
    assert order.index("e") < order.index("d") < order.index("f")


def test_period_starts_follow_the_week_start():
    assert calendar.is_period_start("week", date(2026, 11, 16))  # a Monday
    assert not calendar.is_period_start("week", date(2026, 11, 15))
    assert calendar.is_period_start("week", date(2026, 11, 15), "sunday")
    assert calendar.is_period_start("quarter", date(2026, 10, 1))
    assert not calendar.is_period_start("quarter", date(2026, 11, 1))
    assert calendar.is_period_start("year", date(2026, 1, 1))
