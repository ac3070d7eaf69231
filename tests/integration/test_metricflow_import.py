"""`kpi import metricflow` end to end on tests/fixtures/metricflow: import, `kpi validate`,
`kpi compile` and a real dbt build of a copy, then the built KPIs against what the
MetricFlow definitions mean (tests/support/metricflow_oracle.py, over the raw CSV rows)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from pipeline.project import Project
from tests.support import metricflow_oracle as mf

ROOT = Path(__file__).resolve().parents[2]
KPI = str(Path(sys.executable).with_name("kpi"))
NOT_CONVERTED = {
    "p90_order_amount": "percentile other than",
    "amount_on_last_day": "non_additive_dimension",
    "revenue_l1m": "window '1 month'",
    "signup_conversions": "calculation: conversions",
    "order_to_reorder": "not the primary entity",
    "revenue_of_big_buyers": "unsupported Jinja",
}


def kpi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KPI, *args], cwd=cwd, capture_output=True, text=True, env=os.environ)


@dataclass(frozen=True)
class Built:
    imported: subprocess.CompletedProcess[str]
    values: list[tuple]  # kpi_values: kpi, grain, period_start, dimension, dimension_value, value
    windows: list[tuple]  # kpi_windows at day grain, totals: kpi, window_name, period_start, value
    project: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    project = tmp_path_factory.mktemp("mf") / "shop"
    shutil.copytree(mf.FIXTURE, project)
    imported = kpi("import", "metricflow", "models", cwd=project)
    validated = kpi("validate", cwd=project)
    compiled = kpi("compile", cwd=project)
    for result in (imported, validated, compiled):
        assert result.returncode == 0, result.stdout + result.stderr
    warehouse = project / "shop.duckdb"
    Project(project, env={"KPI_WAREHOUSE": str(warehouse)}).dbt(["build"])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        values = con.execute(
            "select kpi, grain, period_start, dimension, dimension_value, value"
            " from analytics.kpi_values"
        ).fetchall()
        windows = con.execute(
            "select kpi, window_name, period_start, value from analytics.kpi_windows"
            " where grain = 'day' and dimension = 'total'"
        ).fetchall()
    return Built(imported, values, windows, project)


def _ours(built: Built, kpi_name: str, grain: str, dimension: str = "total") -> mf.Values:
    return {
        (start, slice_ if dimension != "total" else "total"): value
        for name, g, start, dim, slice_, value in built.values
        if name == kpi_name and g == grain and dim == dimension
    }


def _window(built: Built, kpi_name: str, window: str) -> mf.Values:
    return {
        (start, "total"): value
        for name, w, start, value in built.windows
        if name == kpi_name and w == window
    }


def _agrees(
    ours: mf.Values, meant: mf.Values, *, empty: tuple[float | None, ...] = (None,)
) -> None:
    """Every period MetricFlow returns has our value; our other periods are empty ones."""
    assert meant, "the oracle has no period: the fixture does not exercise this metric"
    for key, value in meant.items():
        assert key in ours, key
        if value is None:
            assert ours[key] is None, key
        else:
            assert ours[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
    for key in set(ours) - set(meant):
        assert ours[key] in empty, key


SHOP = mf.shop()
ORDERS, CUSTOMERS = SHOP.orders, SHOP.customers
AMOUNT = lambda r: r["amount"]  # noqa: E731
ORDER_ID = lambda r: r["order_id"]  # noqa: E731
COMPLETED = lambda r: r["status"] == "completed"  # noqa: E731
RETURNED = lambda r: r["status"] == "returned"  # noqa: E731
TRADE = lambda r: SHOP.segment.get(r["customer_id"]) == "trade"  # noqa: E731
LARGE_WEB = lambda r: r["channel"] == "web" and r["amount"] >= 100  # noqa: E731
SINCE_FEB = lambda r: r["day"] >= dt.date(2024, 2, 1) and r["customer_id"] is not None  # noqa: E731

SIMPLE = {  # name: (aggregation, value, filter, our value of a period without rows)
    "revenue": ("sum", AMOUNT, None, 0),
    "orders": ("count", ORDER_ID, None, 0),
    "buyers": ("count_distinct", lambda r: r["customer_id"], None, 0),
    "average_order_amount": ("average", AMOUNT, None, None),
    "smallest_order": ("min", AMOUNT, None, None),
    "largest_order": ("max", AMOUNT, None, None),
    "median_order_amount": ("median", AMOUNT, None, None),
    "p50_order_amount": ("median", AMOUNT, None, None),
    "completed_revenue": ("sum", AMOUNT, COMPLETED, 0),
    "trade_revenue": ("sum", AMOUNT, TRADE, 0),
    "large_web_orders": ("count", ORDER_ID, LARGE_WEB, 0),
    "revenue_since_february": ("sum", AMOUNT, SINCE_FEB, 0),
    "gift_orders": ("sum", lambda r: int(r["is_gift"]), None, 0),
}


def _simple(name: str, grain: str) -> mf.Values:
    agg, value, keep, _ = SIMPLE[name]
    return mf.simple(ORDERS, agg, value, grain, keep or (lambda r: True))


@pytest.mark.dbt
def test_the_import_lists_what_it_cannot_convert_with_place_and_reason(built: Built) -> None:
    out = built.imported.stdout
    for name, reason in NOT_CONVERTED.items():
        line = next(line for line in out.splitlines() if f"metric '{name}'" in line)
        assert line.startswith("models/semantic/"), line
        assert ": warning: " in line and "not converted: " in line and reason in line, line
    assert "25 metric(s) converted, 6 not converted" in built.imported.stderr
    header = (built.project / "metrics/metricflow/semantic/metrics.yml").read_text()
    assert header.startswith("# Imported from MetricFlow definitions in semantic/metrics.yml")


@pytest.mark.dbt
@pytest.mark.parametrize("grain", ["day", "month"])
@pytest.mark.parametrize("name", sorted(SIMPLE))
def test_simple_metrics(built: Built, name: str, grain: str) -> None:
    _agrees(_ours(built, name, grain), _simple(name, grain), empty=(SIMPLE[name][3],))


@pytest.mark.dbt
def test_dimensions_of_the_model_and_of_a_joined_one(built: Built) -> None:
    by_channel = mf.simple(
        ORDERS, "sum", AMOUNT, "month", slice_of=lambda r: r["channel"] or "(null)"
    )
    _agrees(_ours(built, "revenue", "month", "channel"), by_channel, empty=(0, None))
    segment = lambda r: SHOP.segment.get(r["customer_id"]) or "(null)"  # noqa: E731
    by_segment = mf.simple(ORDERS, "sum", AMOUNT, "month", slice_of=segment)
    _agrees(_ours(built, "revenue", "month", "customer__segment"), by_segment, empty=(0, None))


@pytest.mark.dbt
@pytest.mark.parametrize("grain", ["day", "month"])
def test_ratio_and_derived_metrics(built: Built, grain: str) -> None:
    revenue, orders, buyers = (_simple(n, grain) for n in ("revenue", "orders", "buyers"))
    completed = mf.simple(ORDERS, "count", ORDER_ID, grain, COMPLETED)
    returned = mf.simple(ORDERS, "sum", AMOUNT, grain, RETURNED)
    meant = {
        "aov": mf.combine(mf.divide, revenue, orders),
        "completed_share": mf.combine(mf.divide, completed, orders),
        "mean_to_median": mf.combine(
            mf.divide, _simple("average_order_amount", grain), _simple("median_order_amount", grain)
        ),
        "net_revenue_per_buyer": mf.combine(
            lambda r, x, b: mf.divide(r - x, b), revenue, returned, buyers
        ),
    }
    for name, values in meant.items():
        ours = _ours(built, name, grain)
        # where MetricFlow has no row for an input, ours has 0 for it (docs/metricflow.md)
        _agrees({k: v for k, v in ours.items() if k in values}, values)


@pytest.mark.dbt
def test_a_derived_metric_over_an_offset_window(built: Built) -> None:
    # revenue - revenue 1 week earlier (an offset KPI of revenue), then over revenue
    revenue = _simple("revenue", "day")
    week_before = {(d + dt.timedelta(days=7), s): v for (d, s), v in revenue.items()}
    growth = mf.combine(lambda now, before: now - before, revenue, week_before)
    meant = {"revenue_growth": growth, "growth_share": mf.combine(mf.divide, growth, revenue)}
    for name, values in meant.items():
        ours = _ours(built, name, "day")
        _agrees({k: v for k, v in ours.items() if k in values}, values)
        assert {g for n, g, *_ in built.values if n == name} == {"day", "week"}  # where 1 week fits


@pytest.mark.dbt
def test_cumulative_metrics(built: Built) -> None:
    spine = [dt.date(2023, 12, 1) + dt.timedelta(days=i) for i in range(213)]
    since_start = lambda d: dt.date.min  # noqa: E731
    days = {d for (d, _) in _ours(built, "revenue_all_time", "day")}
    all_time = mf.running(ORDERS, "sum", AMOUNT, spine, since_start)
    _agrees(
        _ours(built, "revenue_all_time", "day"), {k: v for k, v in all_time.items() if k[0] in days}
    )
    # period_agg: last, so a month has its last day's value
    last_days = {mf.period("month", d): v for (d, _), v in sorted(all_time.items()) if d in days}
    _agrees(
        _ours(built, "revenue_all_time", "month"), {(m, "total"): v for m, v in last_days.items()}
    )
    orders_all_time = mf.running(ORDERS, "count", ORDER_ID, spine, since_start)
    _agrees(
        _ours(built, "orders_all_time", "day"),
        {k: v for k, v in orders_all_time.items() if k[0] in days},
    )
    assert not _ours(built, "orders_all_time", "month")  # period_agg first: day grain only

    def trailing(n: int):
        return lambda d: d - dt.timedelta(days=n - 1)

    checks = {
        ("revenue_7d", "trailing_7_day"): mf.running(ORDERS, "sum", AMOUNT, spine, trailing(7)),
        ("buyers_2w", "trailing_14_day"): mf.running(
            ORDERS, "count_distinct", lambda r: r["customer_id"], spine, trailing(14)
        ),
        ("revenue_mtd", "month_to_date"): mf.running(
            ORDERS, "sum", AMOUNT, spine, lambda d: d.replace(day=1)
        ),
    }
    for (name, window), meant in checks.items():
        ours = _window(built, name, window)
        shared = set(ours) & set(meant)
        assert len(shared) > 90, (name, len(shared))
        _agrees({k: ours[k] for k in shared}, {k: meant[k] for k in shared})
        # a trailing window is shown once complete; every day MetricFlow has after that is ours
        first = min(d for d, _ in ours)
        last = max(d for d, _ in ours)
        assert {k for k in meant if first <= k[0] <= last} <= set(ours), name


@pytest.mark.dbt
@pytest.mark.parametrize("grain", ["day", "month"])
def test_conversion_metric(built: Built, grain: str) -> None:
    meant = mf.conversion_rate(CUSTOMERS, ORDERS, 7, grain, lambda r: "total")
    ours = _ours(built, "signup_to_order_7d", grain)
    # a period whose signups none converted: MetricFlow has no conversions row, ours is 0
    _agrees(ours, meant, empty=(0, None))
    by_region = mf.conversion_rate(CUSTOMERS, ORDERS, 7, "month", lambda r: r["region"] or "(null)")
    _agrees(_ours(built, "signup_to_order_7d", "month", "region"), by_region, empty=(0, None))


def _fixture_copy(folder: Path) -> Path:
    shutil.copytree(mf.FIXTURE, folder / "shop")
    return folder / "shop"


def test_an_import_never_overwrites_without_force(tmp_path: Path) -> None:
    project = _fixture_copy(tmp_path)
    out = tmp_path / "out"
    first = kpi("import", "metricflow", "models", "--out", str(out), cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    imported = out / "metricflow/semantic/metrics.yml"
    imported.write_text("# edited\n")
    again = kpi("import", "metricflow", "models", "--out", str(out), cwd=project)
    assert again.returncode == 2
    assert f"would overwrite {imported}" in again.stderr and "--force" in again.stderr
    assert imported.read_text() == "# edited\n"
    assert not (project / "metrics").exists()
    forced = kpi("import", "metricflow", "models", "--out", str(out), "--force", cwd=project)
    assert forced.returncode == 0
    assert imported.read_text().startswith("# Imported from MetricFlow")


def test_nothing_to_convert_or_broken_yaml_exits_2(tmp_path: Path) -> None:
    project = _fixture_copy(tmp_path)
    only = project / "models/semantic/metrics.yml"
    only.write_text(
        "metrics:\n  - {name: wow, type: derived, label: Wow, type_params: {expr: a,"
        " metrics: [{name: revenue, alias: a, offset_to_grain: month}]}}\n"
    )
    (project / "models/semantic/orders.yml").unlink()
    nothing = kpi("import", "metricflow", "models/semantic/metrics.yml", cwd=project)
    assert nothing.returncode == 2
    assert "metrics.yml:2:67: warning: metric 'wow': not converted: offset_to_grain" in (
        nothing.stdout
    ), nothing.stdout
    assert "0 metric(s) converted, 1 not converted" in nothing.stderr
    only.write_text("metrics:\n  - name: a\n    name: b\n")
    broken = kpi("import", "metricflow", "models", cwd=project)
    assert broken.returncode == 2
    assert "metrics.yml:3:5: error: duplicate key 'name'" in broken.stderr
    assert "Traceback" not in broken.stdout + broken.stderr
