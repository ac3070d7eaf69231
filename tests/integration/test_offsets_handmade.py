"""Offset KPIs (a KPI shifted back in time) on real DuckDB against a plain Python oracle, at
every grain: month ends (March 31 one month before is February 28 or 29), a leap day, and
ISO week 53 of 2020, which has no same week the year before. Both dialects' SQL runs.

The oracle shifts periods by plain date arithmetic (or by position in the list of periods
for 'N periods') over values it computes itself from the rows (tests/support/oracle.py).
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from functools import cache

import duckdb
import pandas as pd
import pytest

from pipeline.compiler import compile_files
from tests.support import oracle
from tests.support import tracking_oracle as to
from tests.support.generated import catalog_of, run

GRAINS = ("day", "week", "month", "quarter", "year")
D = dt.date
FIRST, LAST = D(2019, 11, 4), D(2021, 3, 31)
EDGES = [D(2020, 1, 31), D(2020, 2, 29), D(2020, 3, 31), D(2020, 12, 28), D(2020, 12, 31),
         D(2021, 1, 3), D(2021, 1, 31), D(2021, 2, 28), D(2021, 3, 29), D(2021, 3, 31)]  # fmt: skip
QUIET = (D(2020, 6, 1), D(2020, 6, 30))  # no rows: revenue 0, the average NULL

METRICS = """
kpis:
  - {name: revenue, category: financial, model: orders, time: order_date, sum: amount, dimensions: [channel]}
  - {name: orders_placed, category: sales_marketing, model: orders, time: order_date, count: order_id, dimensions: [channel]}
  - {name: aov, category: financial, ratio: {numerator: revenue, denominator: orders_placed}, dimensions: [channel]}
  - {name: revenue_previous_period, category: financial, offset: {of: revenue, by: 1 period}, dimensions: [channel]}
  - name: revenue_previous_month
    category: financial
    offset: {of: revenue, by: 1 month}
    grains: [day, month]
    dimensions: [channel]
    targets: [{value: 1000, per: month}]
  - {name: revenue_last_year, category: financial, offset: {of: revenue, by: 1 year}, dimensions: [channel]}
  - {name: revenue_two_weeks_before, category: financial, offset: {of: revenue, by: 14 days}, grains: [day, week]}
  - {name: revenue_two_quarters_before, category: financial, offset: {of: revenue, by: 2 quarters}, grains: [day, month, quarter]}
  - name: aov_last_year
    category: financial
    offset: {of: aov, by: 1 year}
    dimensions: [channel]
    targets: [{value: 50}]
  - {name: aov_previous_quarter, category: financial, offset: {of: aov, by: 1 quarter}, grains: [month, quarter]}
  - name: revenue_mom_growth
    category: financial
    format: percent
    derived: (revenue - revenue_previous_month) / revenue_previous_month
    grains: [day, month]
  - {name: aov_change_on_last_year, category: financial, derived: aov - aov_last_year}
  - {name: revenue_on_last_year, category: financial, ratio: {numerator: revenue, denominator: revenue_last_year}, dimensions: [channel]}
"""
# offset KPI → (base, count, unit)
OFFSETS = {
    "revenue_previous_period": ("revenue", 1, "period"),
    "revenue_previous_month": ("revenue", 1, "month"),
    "revenue_last_year": ("revenue", 1, "year"),
    "revenue_two_weeks_before": ("revenue", 14, "day"),
    "revenue_two_quarters_before": ("revenue", 6, "month"),
    "aov_last_year": ("aov", 1, "year"),
    "aov_previous_quarter": ("aov", 3, "month"),
}
GRAINS_OF = {"revenue_previous_month": ("day", "month"), "revenue_two_weeks_before": ("day", "week"),
             "revenue_two_quarters_before": ("day", "month", "quarter"),
             "aov_previous_quarter": ("month", "quarter")}  # fmt: skip


@cache
def orders() -> list[dict]:
    rng = random.Random(140)
    rows: list[dict] = []
    day = FIRST
    while day <= LAST:
        quiet = QUIET[0] <= day <= QUIET[1]
        count = 0 if quiet else (2 if day in EDGES else rng.choice([0, 1, 1, 2]))
        for _ in range(count):
            rows.append(
                {
                    "order_id": len(rows) + 1,
                    "order_date": day,
                    "amount": round(rng.uniform(5, 120), 2),
                    "channel": rng.choice(["web", "app"]),
                }
            )
        day += dt.timedelta(days=1)
    return rows


@cache
def built(dialect: str) -> duckdb.DuckDBPyConnection:
    tables = {"orders": pd.DataFrame(orders())}
    compiled = compile_files({"metrics/offsets.yml": METRICS}, catalog_of(tables), dialect)
    assert compiled.ok, "\n".join(str(i) for i in compiled.issues)
    return run(compiled, tables)


# --- the oracle ---------------------------------------------------------------------------


def base_values(name: str, grain: str, dimension: str) -> dict[tuple, tuple]:
    """{(period_start, slice): (value, numerator, denominator)} of revenue or aov."""

    def simple(agg: str) -> dict[tuple, float | None]:
        kpi = oracle.Simple(
            agg, "order_date", lambda r: r["amount"] if agg == "sum" else 1,
            dimensions={"channel": lambda r: r["channel"]},
        )  # fmt: skip
        return oracle.simple_values(orders(), kpi, grain, dimension)

    revenue = simple("sum")
    if name == "revenue":
        return {k: (v, None, None) for k, v in revenue.items()}
    count = simple("count")
    return {k: (v / count[k] if count[k] else None, v, count[k]) for k, v in revenue.items()}


def shifted(grain: str, start: dt.date, count: int, unit: str, starts: list[dt.date]) -> dt.date | None:
    """The period `count` `unit`s before, by date arithmetic; None: none (ISO week 53)."""
    if unit == "period":
        i = starts.index(start) - count
        return starts[i] if i >= 0 else D(1900, 1, 1)  # before the data
    if unit == "day":
        return start - dt.timedelta(days=count)
    if grain == "week":  # 1 year: the same ISO week of the previous ISO year
        year, week, _ = start.isocalendar()
        try:
            return dt.date.fromisocalendar(year - 1, week, 1)
        except ValueError:
            return None
    months = count * (12 if unit == "year" else 1)
    year, month = divmod(start.year * 12 + start.month - 1 - months, 12)
    return D(year, month + 1, min(start.day, calendar.monthrange(year, month + 1)[1]))


def expected(name: str, grain: str, dimension: str = "total") -> dict[tuple, tuple]:
    base, count, unit = OFFSETS[name]
    values = base_values(base, grain, dimension)
    starts = sorted({s for s, _ in values})
    out = {}
    for start, slice_value in values:
        earlier = shifted(grain, start, count, unit, starts)
        out[(start, slice_value)] = values.get((earlier, slice_value), (None, None, None))
    return out


# --- the checks ---------------------------------------------------------------------------


def _close(actual, wanted, what: str) -> None:
    if wanted is None:
        assert actual is None, what
    else:
        assert actual == pytest.approx(wanted, rel=1e-9, abs=1e-9), what


def _rows(con, name: str, grain: str, dimension: str, columns: str) -> dict[tuple, tuple]:
    found = con.execute(
        f"select period_start, dimension_value, {columns} from kpi_values"
        " where kpi = ? and grain = ? and dimension = ?",
        [name, grain, dimension],
    ).fetchall()
    return {(r[0], r[1]): r[2:] for r in found}


CASES = [(n, g, d) for n in OFFSETS for g in GRAINS_OF.get(n, GRAINS)
         for d in (("total", "channel") if n not in ("revenue_two_weeks_before",
                   "revenue_two_quarters_before", "aov_previous_quarter") else ("total",))]  # fmt: skip


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize(("name", "grain", "dimension"), CASES)
def test_an_offset_kpi_is_its_base_at_the_shifted_period(dialect, name, grain, dimension):
    actual = _rows(built(dialect), name, grain, dimension, "value, numerator, denominator")
    wanted = expected(name, grain, dimension)
    assert set(actual) == set(wanted)
    for key, (value, numerator, denominator) in wanted.items():
        what = f"{name} {grain} {key}"
        _close(actual[key][0], value, what)
        _close(actual[key][1], numerator, what + " numerator")
        _close(actual[key][2], denominator, what + " denominator")


def test_month_ends_clamp_and_iso_week_53_has_no_last_year():
    con = built("duckdb")
    day = _rows(con, "revenue_previous_month", "day", "total", "value")
    revenue = _rows(con, "revenue", "day", "total", "value")
    # March 29-31 a month before are all February's last day (leap and common years)
    for march in (D(2020, 3, 29), D(2020, 3, 30), D(2020, 3, 31)):
        assert day[(march, "total")] == revenue[(D(2020, 2, 29), "total")]
    for march in (D(2021, 3, 29), D(2021, 3, 31)):
        assert day[(march, "total")] == revenue[(D(2021, 2, 28), "total")]
    assert revenue[(D(2021, 2, 28), "total")][0] > 0  # the edge day has orders
    yearly = _rows(con, "revenue_last_year", "day", "total", "value")
    assert yearly[(D(2021, 2, 28), "total")] == revenue[(D(2020, 2, 28), "total")]
    weekly = _rows(con, "revenue_last_year", "week", "total", "value")
    assert weekly[(D(2020, 12, 28), "total")] == (None,)  # ISO 2020-W53: 2019 had 52 weeks
    # 2021-W01 (from 2021-01-04) is last year's 2020-W01, which starts 2019-12-30
    weeks = _rows(con, "revenue", "week", "total", "value")
    assert weekly[(D(2021, 1, 4), "total")] == weeks[(D(2019, 12, 30), "total")]


def test_a_derived_growth_reads_the_offset_kpi_at_the_same_period():
    con = built("postgres")
    for grain in ("day", "month"):
        revenue = base_values("revenue", grain, "total")
        previous = expected("revenue_previous_month", grain)
        growth = _rows(con, "revenue_mom_growth", grain, "total", "value")
        assert set(growth) == set(revenue)
        for key, (now, _, _) in revenue.items():
            before = previous[key][0]
            wanted = (now - before) / before if before else None
            _close(growth[key][0], wanted, f"growth {grain} {key}")
    # a ratio over an offset KPI: numerator and denominator at the same period and slice
    ratio = _rows(con, "revenue_on_last_year", "month", "channel", "value, numerator, denominator")
    last_year = expected("revenue_last_year", "month", "channel")
    for key, (now, _, _) in base_values("revenue", "month", "channel").items():
        before = last_year[key][0]
        wanted = now / before if before else None
        for got, want in zip(ratio[key], (wanted, now, before), strict=True):
            _close(got, want, f"ratio {key}")
    # a ratio's offset read by a derived KPI: computed after the ratio's model
    change = _rows(con, "aov_change_on_last_year", "month", "total", "value")
    for key, (now, _, _) in base_values("aov", "month", "total").items():
        before = expected("aov_last_year", "month")[key][0]
        _close(change[key][0], None if now is None or before is None else now - before, str(key))
    assert sum(v is not None for v, in change.values()) == 5  # November 2020 to March 2021
    monthly = _rows(con, "revenue_mom_growth", "month", "total", "value")
    assert monthly[(D(2020, 7, 1), "total")] == (None,)  # June had no orders: no growth on 0
    assert monthly[(FIRST.replace(day=1), "total")] == (None,)  # nothing before the data


def test_offset_kpis_have_targets_status_wide_columns_and_a_catalog_entry_but_no_windows():
    con = built("duckdb")
    def rows(name: str, grain: str) -> list[tuple]:
        return con.execute(
            "select period_start, value, target, target_to_date, status, previous_value_to_date"
            " from kpi_values where kpi = ? and grain = ? and dimension = 'total'", [name, grain],
        ).fetchall()  # fmt: skip

    # an amount's target applies at the grain it is stated for only, to the whole shifted
    # period, even in the period still running (2021-W13 and 2021 hold the last day)
    monthly = rows("revenue_previous_month", "month")
    assert len(monthly) == 17
    for start, value, target, to_date, status, previous_to_date in monthly:
        assert (target, to_date, previous_to_date) == (1000, 1000, None), start
        assert status == to.status(value, 1000.0, "higher"), start
    assert {r[2] for r in rows("revenue_previous_month", "day")} == {None}
    # a rate's target holds at every grain, running periods included
    for grain in GRAINS:
        for start, value, target, to_date, status, _ in rows("aov_last_year", grain):
            assert (target, to_date) == (50, 50), (grain, start)
            assert status == to.status(value, 50.0, "higher"), (grain, start)
    running = [r for r in rows("aov_last_year", "year") if r[0] == D(2021, 1, 1)]  # all of 2020
    assert running[0][1] == pytest.approx(base_values("aov", "year", "total")[(D(2020, 1, 1), "total")][0])
    # no windows nor periods to date: its days do not add up to its months
    windows = con.execute(
        "select count(*) from kpi_windows where kpi in ('revenue_previous_month', 'aov_last_year')"
    ).fetchone()
    assert windows == (0,)
    # a column of the wide tables at the grains it is tracked by
    wide = dict(con.execute("select period_start, revenue_previous_month from kpi_monthly").fetchall())
    assert wide == {r[0]: r[1] for r in monthly}
    daily = [c[0] for c in con.execute("describe kpi_daily").fetchall()]
    weekly = [c[0] for c in con.execute("describe kpi_weekly").fetchall()]
    assert "revenue_previous_month" in daily and "revenue_previous_month" not in weekly
    catalog = con.execute(
        "select kpi, kind, additivity, grains, dimensions from kpi_catalog where kind = 'offset'"
        " and kpi like 'aov%' order by kpi"
    ).fetchall()
    assert catalog == [
        ("aov_last_year", "offset", "none", "day,week,month,quarter,year", "channel"),
        ("aov_previous_quarter", "offset", "none", "month,quarter", ""),
    ]
