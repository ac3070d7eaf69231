"""`kpi explain` on the demo warehouse: every KPI's decomposition sums to its change, the
drivers match a raw-row oracle, and the command's output and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from fractions import Fraction
from itertools import permutations
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.explain import marts
from pipeline.explain.marts import Explanation, Rows
from pipeline.project import Project
from tests.integration.test_cli import kpi as run_kpi
from tests.support import raw_oracle
from tests.support.raw_oracle import Ratio

pytestmark = pytest.mark.dbt

ROOT = Path(__file__).resolve().parents[2]
REL = 1e-9
SEP, AUG, SEP_LAST_YEAR = dt.date(2026, 9, 1), dt.date(2026, 8, 1), dt.date(2025, 9, 1)


@pytest.fixture(scope="module")
def project(demo_warehouse: Path) -> Project:
    return Project(ROOT, env={"KPI_WAREHOUSE": str(demo_warehouse)})


@pytest.fixture(scope="module")
def spec(project: Project) -> Any:
    return marts.load_spec(project)


@pytest.fixture(scope="module")
def totals(demo_warehouse: Path) -> dict[tuple[str, str, dt.date], dict[str, Any]]:
    """The marts' own comparisons: total rows by (kpi, grain, period_start)."""
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        result = con.execute("select * from analytics.kpi_values where dimension = 'total'")
        names = [d[0] for d in result.description]
        rows = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    return {(r["kpi"], r["grain"], r["period_start"]): r for r in rows}


@pytest.fixture(scope="module")
def raw(spec: Any) -> raw_oracle.RawOracle:
    return raw_oracle.RawOracle(raw_oracle.RawShop(ROOT / "seeds"), spec.config.week_start)


def _check(x: Explanation, mart: dict[str, Any], methods: dict[str, set[str]], kind: str) -> None:
    """The explanation's numbers are the marts' and every exact breakdown sums to the change."""
    assert math.isclose(x.value, mart["value"], rel_tol=REL), x.kpi
    if x.vs == "last_year":
        base = mart["last_year_value"]
    elif x.to_date:
        base = mart["previous_value_to_date"] if kind != "derived" else None  # derived: f(inputs to date)
    else:
        base = mart["previous_value"]
    if base is not None:
        assert math.isclose(x.base_value, base, rel_tol=REL, abs_tol=1e-12), x.kpi
    scale = max(abs(x.value), abs(x.base_value), abs(x.change))
    for section in x.sections:
        methods[kind].add(section.method)
        if section.exact:
            assert section.total is not None
            assert math.isclose(section.total, x.change, rel_tol=REL, abs_tol=REL * scale), (
                f"{x.kpi} {x.grain} by {section.by}: contributions {section.total} != change {x.change}"
            )
        else:
            assert "not decomposable" in section.note and all(d.contribution is None for d in section.drivers)


def _kind(kpi: Any) -> str:
    return kpi.agg if kpi.kind == "simple" else kpi.kind


def test_the_scorecards_drivers_sum_to_every_current_change(demo_warehouse: Path, spec: Any, totals):
    """Every KPI and grain: the latest period against the one before (to date when partial)."""
    explanations = marts.current_explanations(demo_warehouse, spec)
    methods: dict[str, set[str]] = defaultdict(set)
    for (name, grain), x in explanations.items():
        _check(x, totals[(name, grain, x.period_start)], methods, _kind(spec.kpi(name)))
    for kpi in spec.kpis:
        for grain in kpi.grains:
            if (kpi.name, grain) not in explanations:  # only when a value is missing
                latest = [totals[key] for key in sorted(key for key in totals if key[:2] == (kpi.name, grain))]
                assert None in (latest[-1]["value"], latest[-2]["value"]), (kpi.name, grain)
    partial = explanations[("revenue", "month")]
    assert partial.is_partial and partial.to_date and partial.sections[0].by == "channel"
    assert methods["sum"] == {"additive"} and methods["derived"] == {"shapley"}
    assert methods["ratio"] >= {"mix_rate", "shapley"} and "mix_rate" in methods["average"]
    assert methods["median"] == {"own_change"}


@pytest.mark.parametrize(("vs", "base"), [("previous", AUG), ("last_year", SEP_LAST_YEAR)])
def test_every_kpi_by_every_dimension_sums_to_its_change(demo_warehouse: Path, spec: Any, totals, vs, base):
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        result = con.execute(
            f"select {', '.join(marts.COLUMNS)} from analytics.kpi_values where grain = 'month' and period_start in (?, ?)",
            [SEP, base],
        )
        names = [d[0] for d in result.description]
        rows = Rows(dict(zip(names, r, strict=True)) for r in result.fetchall())
    methods: dict[str, set[str]] = defaultdict(set)
    explained = 0
    for kpi in spec.kpis:
        if "month" not in kpi.grains or totals.get((kpi.name, "month", base)) is None:
            continue
        dimensions = [] if kpi.kind == "derived" else [d.name for d in kpi.dimensions]
        try:
            x = marts.explain_period(spec, rows, kpi, period=SEP, base=base, vs=vs, dimensions=dimensions)
        except marts.NoChange:  # no value in one of the months (a survey not run, a cohort's year)
            assert None in (totals[(kpi.name, "month", SEP)]["value"], totals[(kpi.name, "month", base)]["value"])
            continue
        _check(x, totals[(kpi.name, "month", SEP)], methods, _kind(kpi))
        explained += 1
    assert explained >= 55
    # the demo's kinds: sums, counts, cumulative and snapshot levels add up; averages, ratios,
    # conversion, retention and churn split into mix and rate; formulas into their inputs
    assert {"additive"} == methods["sum"] == methods["count"] == methods["cumulative"] == methods["snapshot"]
    assert {"mix_rate", "shapley"} <= methods["ratio"] and methods["conversion"] == {"mix_rate"}
    assert methods["count_distinct"] <= {"additive", "own_change"} and methods["derived"] == {"shapley"}


def _exact(values: dict[tuple[dt.date, str], Fraction | None], start: dt.date) -> dict[str, Fraction]:
    return {s: v for (p, s), v in values.items() if p == start and v is not None}


def test_revenue_by_channel_matches_the_raw_orders(project: Project, raw):
    x = marts.explain(project, "revenue", period="2026-09", by=["channel"])
    oracle = raw.values("revenue", "month", "channel")
    now, then = _exact(oracle, SEP), _exact(oracle, AUG)
    got = {d.name: d.contribution for d in x.sections[0].drivers}
    assert got.keys() == now.keys() | then.keys()
    for name, contribution in got.items():
        want = now.get(name, Fraction(0)) - then.get(name, Fraction(0))
        assert math.isclose(contribution, float(want), rel_tol=REL, abs_tol=1e-9)


def test_aov_mix_and_rate_by_device_match_the_raw_orders(project: Project, raw, spec):
    x = marts.explain(project, "aov", period="2026-09", vs="last_year", by=["device"])
    definition = raw_oracle.ORACLE["aov"]
    assert isinstance(definition, Ratio)
    sides = [raw.values(side, "month", "device") for side in (definition.numerator, definition.denominator)]
    ratios = {}
    for start in (SEP, SEP_LAST_YEAR):
        num, den = _exact(sides[0], start), _exact(sides[1], start)
        ratios[start] = {k: (num.get(k, Fraction(0)), den[k]) for k in den if den[k]}
    # the decomposition in exact arithmetic, straight from docs/explain.md
    level = {s: sum(n for n, _ in r.values()) / sum(d for _, d in r.values()) for s, r in ratios.items()}
    mean = (level[SEP] + level[SEP_LAST_YEAR]) / 2
    drivers = {d.name: d for d in x.sections[0].drivers}
    for name in ratios[SEP].keys() | ratios[SEP_LAST_YEAR].keys():
        shares, rates = {}, {}
        for start, r in ratios.items():
            total = sum(d for _, d in r.values())
            shares[start] = r[name][1] / total if name in r else Fraction(0)
            rates[start] = r[name][0] / r[name][1] if name in r else None
        r1 = rates[SEP] if rates[SEP] is not None else rates[SEP_LAST_YEAR]
        r0 = rates[SEP_LAST_YEAR] if rates[SEP_LAST_YEAR] is not None else rates[SEP]
        mix = (shares[SEP] - shares[SEP_LAST_YEAR]) * ((r0 + r1) / 2 - mean)
        rate = (r1 - r0) * (shares[SEP] + shares[SEP_LAST_YEAR]) / 2
        assert math.isclose(drivers[name].mix, float(mix), rel_tol=REL, abs_tol=1e-9)
        assert math.isclose(drivers[name].rate, float(rate), rel_tol=REL, abs_tol=1e-9)
    assert math.isclose(x.change, float(level[SEP] - level[SEP_LAST_YEAR]), rel_tol=REL)


def test_active_customers_by_segment_split_exactly_as_each_customer_has_one_segment(project: Project, raw):
    x = marts.explain(project, "active_customers", period="2026-09", by=["segment"])
    [section] = x.sections
    assert section.method == "additive"
    oracle = raw.values("active_customers", "month", "customers.segment")
    now, then = _exact(oracle, SEP), _exact(oracle, AUG)
    assert {d.name: d.contribution for d in section.drivers} == {k: float(now[k] - then[k]) for k in now}


@pytest.mark.parametrize("name", ["gross_profit_margin", "net_profit_margin", "nps"])
def test_derived_kpis_inputs_match_shapley_values_over_the_raw_inputs(project: Project, raw, name):
    x = marts.explain(project, name, period="2026-09")
    definition = raw_oracle.ORACLE[name]
    values = {
        start: {i: raw.values(i, "month")[(start, raw_oracle.TOTAL)] for i in definition.inputs}
        for start in (SEP, AUG)
    }
    # brute force over every order of moving the inputs from August to September
    orders = list(permutations(definition.inputs))
    want = dict.fromkeys(definition.inputs, Fraction(0))
    for order in orders:
        point = dict(values[AUG])
        for i in order:
            before = definition.formula(*(point[k] for k in definition.inputs))
            point[i] = values[SEP][i]
            want[i] += definition.formula(*(point[k] for k in definition.inputs)) - before
    got = {d.name: d.contribution for d in x.sections[0].drivers}
    assert got == pytest.approx({k: float(v / len(orders)) for k, v in want.items()}, rel=REL)


def test_the_command_prints_table_markdown_and_json_and_refuses_mistakes(demo_warehouse: Path):
    env = {"KPI_WAREHOUSE": str(demo_warehouse)}
    result = run_kpi("explain", "aov", "--period", "2026-09", "--by", "channel", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["period"]["start"], document["base"]["start"]) == ("2026-09-01", "2026-08-01")
    by_channel = document["sections"][0]
    assert by_channel["method"] == "mix_rate" and by_channel["exact"]
    contributions = [d["contribution"] for d in by_channel["drivers"]]
    assert math.isclose(math.fsum(contributions), document["change"], rel_tol=REL)
    assert contributions == sorted(contributions, key=lambda c: -abs(c))  # largest first
    markdown = run_kpi("explain", "revenue", "--period", "2026-Q3", "--vs", "last_year", "--format", "markdown", env=env)
    assert markdown.returncode == 0 and "| channel | value | base | contribution |" in markdown.stdout
    assert "2026 Q3 vs 2025 Q3" in markdown.stdout
    table = run_kpi("explain", "active_customers", "--period", "2026-W40", env=env)
    assert table.returncode == 0 and "by segment" in table.stdout
    for args, message in [
        (("revenu",), "unknown KPI 'revenu' (did you mean 'revenue'?)"),
        (("revenue", "--period", "2030-01"), "no data for the month holding 2030-01-01"),
        (("revenue", "--by", "chanel"), "not sliced by 'chanel' (did you mean 'channel'?)"),
        (("nps", "--by", "segment"), "explained by its inputs"),
        (("revenue", "--period", "2026-Q5"), "cannot read period"),
        (("revenue", "--vs", "yesterday"), "use previous or last_year"),
    ]:
        wrong = run_kpi("explain", *args, env=env)
        assert wrong.returncode == 2 and message in wrong.stdout + wrong.stderr, (args, wrong.stdout, wrong.stderr)
        assert "Traceback" not in wrong.stderr


def test_the_scorecard_shows_each_kpis_drivers(project: Project, tmp_path: Path):
    from pipeline.export.scorecard import write_scorecard

    page = write_scorecard(project, tmp_path / "scorecard.html").read_text(encoding="utf-8")
    revenue = page[page.index('id="kpi-revenue"'):]
    revenue = revenue[: revenue.index("</section>")]
    assert revenue.count('class="drivers"') == 5  # one per grain
    assert "What drove the change: Nov 2026 (to date) vs Oct 2026 to date" in revenue
    assert "<th>By channel</th>" in revenue
