"""Every reference KPI of metrics/, as published in the demo warehouse, against the raw-row oracle.

For each KPI, each grain it declares and each dimension it declares (plus the total),
`analytics.kpi_values` must hold exactly the oracle's (period_start, dimension_value) keys
with the oracle's values (relative tolerance 1e-9). The oracle (tests/support/raw_oracle.py)
recomputes everything in Python from the raw seed CSVs; only the KPI list, grains,
dimensions and week start are read from metrics/.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.compiler import read_metric_files
from pipeline.project import Project
from pipeline.spec.load import load
from pipeline.spec.model import GRAINS, Kpi, Spec
from tests.support import raw_oracle
from tests.support.raw_oracle import Measure, Ratio

pytestmark = pytest.mark.dbt

REPO_ROOT = Path(__file__).resolve().parents[2]
REL = 1e-9
Published = dict[tuple[dt.date, str], tuple[float | None, float | None, float | None]]


def _spec() -> Spec:
    spec, _ = load(read_metric_files(Project(REPO_ROOT)))
    return spec


SPEC = _spec()


@pytest.fixture(scope="module")
def published(demo_warehouse: Path) -> dict[tuple[str, str, str], Published]:
    """kpi_values as {(kpi, grain, dimension): {(period_start, dimension_value): (value, num, den)}}."""
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        frame = con.execute(
            "select kpi, grain, dimension, period_start, dimension_value, value, numerator, denominator from analytics.kpi_values"
        ).df()
    out: dict[tuple[str, str, str], Published] = {}
    for row in frame.itertuples(index=False):
        key = (row.period_start.date(), row.dimension_value)
        series = out.setdefault((row.kpi, row.grain, row.dimension), {})
        assert key not in series, f"duplicate row {row.kpi} {row.grain} {row.dimension} {key}"
        series[key] = (_float(row.value), _float(row.numerator), _float(row.denominator))
    return out


@pytest.fixture(scope="module")
def raw() -> raw_oracle.RawOracle:
    return raw_oracle.RawOracle(raw_oracle.RawShop(REPO_ROOT / "seeds"), SPEC.config.week_start)


def _float(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def _slices(kpi: Kpi) -> Iterator[tuple[str, str]]:
    """(published dimension name, column the oracle slices by): the total, then each dimension."""
    yield "total", raw_oracle.TOTAL
    for dimension in kpi.dimensions:
        yield dimension.name, dimension.column


def _differs(expected: Fraction | None, actual: float | None) -> bool:
    if expected is None or actual is None:
        return expected is not actual
    return not math.isclose(float(expected), actual, rel_tol=REL, abs_tol=1e-12)


def _check_definition(kpi: Kpi, definition: raw_oracle.Definition) -> None:
    """The oracle entry describes the KPI of metrics/ (its how is the oracle's own)."""
    if isinstance(definition, Measure):
        assert kpi.kind == "simple", (
            f"{kpi.name}: the oracle has a simple KPI, metrics/ a {kpi.kind}"
        )
        assert (kpi.model, kpi.time, kpi.agg) == (definition.model, definition.time, definition.agg)
    elif isinstance(definition, Ratio):
        assert kpi.kind == "ratio", f"{kpi.name}: the oracle has a ratio, metrics/ a {kpi.kind}"
        assert (kpi.numerator, kpi.denominator) == (definition.numerator, definition.denominator)
    elif isinstance(definition, raw_oracle.Offset):
        assert kpi.kind == "offset" and kpi.inputs == (definition.of,), kpi.name
    elif isinstance(definition, raw_oracle.Kind):
        assert kpi.kind == definition.kind, (
            f"{kpi.name}: the oracle has a {definition.kind}, metrics/ a {kpi.kind}"
        )
    else:
        assert kpi.kind == "derived", (
            f"{kpi.name}: the oracle has a derived KPI, metrics/ a {kpi.kind}"
        )


def test_every_kpi_of_metrics_has_an_oracle() -> None:
    names = {k.name for k in SPEC.kpis}
    assert len(names) >= 55, "metrics/ did not load"
    missing = sorted(names - set(raw_oracle.ORACLE))
    assert not missing, f"KPIs without an oracle entry in tests/support/raw_oracle.py: {missing}"


@pytest.mark.parametrize("kpi", SPEC.kpis, ids=lambda k: k.name)
def test_published_values_match_the_raw_oracle(kpi: Kpi, published, raw) -> None:
    if kpi.name not in raw_oracle.ORACLE:
        pytest.fail(f"{kpi.name} has no oracle entry in tests/support/raw_oracle.py")
    definition = raw_oracle.ORACLE[kpi.name]
    _check_definition(kpi, definition)
    # exactly the declared grains and slices are published
    declared = {(g, name) for g in kpi.grains for name, _ in _slices(kpi)}
    present = {(g, d) for (k, g, d) in published if k == kpi.name and g in GRAINS}
    assert present == declared, f"{kpi.name}: published (grain, dimension) differ from metrics/"
    problems = []
    for grain in kpi.grains:
        for name, column in _slices(kpi):
            expected = raw.values(kpi.name, grain, column)
            actual = published[(kpi.name, grain, name)]
            if set(actual) != set(expected):
                extra, missing = set(actual) - set(expected), set(expected) - set(actual)
                problems.append(
                    f"{grain}/{name}: keys differ; extra {sorted(extra)[:3]} ({len(extra)}), missing {sorted(missing)[:3]} ({len(missing)})"
                )
                continue
            for key in sorted(expected):
                value, numerator, denominator = actual[key]
                if _differs(expected[key], value):
                    problems.append(
                        f"{grain}/{name} {key}: expected {_show(expected[key])}, got {value}"
                    )
                if isinstance(definition, Ratio):
                    sides = (definition.numerator, definition.denominator)
                    for side, got in zip(sides, (numerator, denominator), strict=True):
                        want = raw.values(side, grain, column).get(key)
                        if _differs(want, got):
                            problems.append(
                                f"{grain}/{name} {key}: {side} expected {_show(want)}, got {got}"
                            )
    assert not problems, f"{kpi.name}: {len(problems)} mismatches, e.g.\n" + "\n".join(
        problems[:15]
    )


def _show(value: Fraction | None) -> str:
    return "NULL" if value is None else repr(float(value))


def test_the_oracle_covers_every_combination(raw) -> None:
    """Sanity of the oracle itself: a non-empty series for each (kpi, grain, dimension)."""
    combinations = 0
    for kpi in SPEC.kpis:
        if kpi.name not in raw_oracle.ORACLE:
            continue
        for grain in kpi.grains:
            for _, column in _slices(kpi):
                assert raw.values(kpi.name, grain, column), (kpi.name, grain, column)
                combinations += 1
    assert combinations >= 55 * 5


# --- known answers on the demo, straight from the published table


def _series(published, kpi: str, grain: str, dimension: str = "total") -> Published:
    return published[(kpi, grain, dimension)]


def test_revenue_adds_up_to_the_same_total_at_every_grain(published, raw) -> None:
    totals = {
        grain: math.fsum(v for v, _, _ in _series(published, "revenue", grain).values() if v)
        for grain in GRAINS
    }
    for grain in GRAINS:
        assert totals[grain] == pytest.approx(totals["day"], rel=REL), grain
    # and it is Σ net revenue of the non-cancelled orders of the raw rows
    expected = sum(o["net_revenue"] for o in raw.shop.orders if not o["is_cancelled"])
    assert totals["year"] == pytest.approx(float(expected), rel=REL)
    # slices add up to the total too (every order has a channel)
    by_channel = math.fsum(
        v for v, _, _ in _series(published, "revenue", "year", "channel").values() if v
    )
    assert by_channel == pytest.approx(totals["year"], rel=REL)


def test_monthly_conversion_rate_is_a_ratio_of_sums_not_an_average_of_daily_rates(
    published,
) -> None:
    daily = _series(published, "conversion_rate", "day")
    monthly = _series(published, "conversion_rate", "month")
    checked = 0
    for (start, _), (value, numerator, denominator) in monthly.items():
        days = [v for (d, _), v in daily.items() if (d.year, d.month) == (start.year, start.month)]
        converted = math.fsum(n for _, n, _ in days if n is not None)
        sessions = math.fsum(d for _, _, d in days if d is not None)
        assert (numerator, denominator) == (pytest.approx(converted), pytest.approx(sessions))
        assert value == pytest.approx(converted / sessions, rel=REL)
        mean_of_rates = sum(v for v, _, _ in days if v is not None) / len(days)
        checked += value != pytest.approx(mean_of_rates, rel=1e-6)
    assert checked > len(monthly) / 2  # the two readings do differ on the demo


def test_distinct_customers_are_recounted_per_period_not_summed(published) -> None:
    for (start, _), (value, _, _) in _series(published, "active_customers", "year").items():
        months = [
            v
            for (d, _), (v, _, _) in _series(published, "active_customers", "month").items()
            if d.year == start.year
        ]
        assert value is not None and value <= sum(v for v in months if v)
    years = sum(v for v, _, _ in _series(published, "active_customers", "year").values() if v)
    assert years < sum(
        v for v, _, _ in _series(published, "active_customers", "month").values() if v
    )


def test_cac_is_spend_over_new_customers(published) -> None:
    for grain in ("month", "year"):
        spend = _series(published, "marketing_spend", grain)
        new = _series(published, "new_customers", grain)
        for key, (value, numerator, denominator) in _series(published, "cac", grain).items():
            assert numerator == pytest.approx(spend[key][0], rel=REL)
            assert denominator == pytest.approx(new[key][0], rel=REL)
            spent, customers = spend[key][0], new[key][0]
            assert spent is not None and customers is not None  # sums: never NULL
            if customers:
                assert value == pytest.approx(spent / customers, rel=REL)
            else:
                assert value is None
