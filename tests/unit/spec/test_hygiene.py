"""KPI hygiene: warnings at file:line:col, never errors, and none for a clean KPI."""

from __future__ import annotations

from pipeline.errors import Level
from pipeline.spec.hygiene import hygiene
from pipeline.spec.load import load

CLEAN = """\
version: 1
kpis:
  - name: revenue
    description: Net revenue of non-cancelled orders.
    category: financial
    owner: finance@example.com
    model: orders
    time: order_date
    sum: net_revenue
    filter: not is_cancelled
    targets: [{value: 500000, per: month}]
"""


def warnings_of(files: dict[str, str]) -> list[str]:
    spec, issues = load(files)
    assert not issues, [str(i) for i in issues]
    found = hygiene(spec)
    assert all(i.level is Level.WARNING for i in found)
    return [str(i) for i in found]


def test_a_clean_kpi_has_no_warning():
    assert warnings_of({"metrics/a.yml": CLEAN}) == []


def test_a_kpi_without_owner():
    text = CLEAN.replace("    owner: finance@example.com\n", "")
    assert warnings_of({"metrics/a.yml": text}) == [
        "metrics/a.yml:3:5: warning: kpi 'revenue': no owner: say who answers for it (owner:)"
    ]


def test_a_kpi_without_description():
    text = CLEAN.replace("    description: Net revenue of non-cancelled orders.\n", "")
    assert warnings_of({"metrics/a.yml": text}) == [
        "metrics/a.yml:3:5: warning: kpi 'revenue': no description: say what it measures (description:)"
    ]


def test_a_kpi_without_target():
    text = CLEAN.replace("    targets: [{value: 500000, per: month}]\n", "")
    assert warnings_of({"metrics/a.yml": text}) == [
        "metrics/a.yml:3:5: warning: kpi 'revenue': no target: a KPI needs a target to be judged by (targets:)"
    ]


def test_a_target_declared_apart_counts():
    text = CLEAN.replace("    targets: [{value: 500000, per: month}]\n", "")
    targets = "targets:\n  - {kpi: revenue, value: 500000, per: month}\n"
    assert warnings_of({"metrics/a.yml": text, "metrics/targets.yml": targets}) == []


def test_two_kpis_with_the_same_definition_written_differently():
    twin = (
        CLEAN.split("kpis:\n")[1]
        .replace("name: revenue", "name: net_sales")
        .replace("filter: not is_cancelled", "filter: NOT  (is_cancelled)")
    )
    assert warnings_of({"metrics/a.yml": CLEAN + "\n" + twin}) == [
        "metrics/a.yml:13:5: warning: kpi 'net_sales': same definition as 'revenue'"
        " (metrics/a.yml:3:5); keep one of them"
    ]


def test_same_expression_with_another_filter_is_not_a_duplicate():
    other = (
        CLEAN.split("kpis:\n")[1]
        .replace("name: revenue", "name: cancelled_revenue")
        .replace("filter: not is_cancelled", "filter: is_cancelled")
    )
    assert warnings_of({"metrics/a.yml": CLEAN + "\n" + other}) == []


def test_two_ratios_of_the_same_kpis():
    ratios = """\
  - name: aov
    description: Revenue per order.
    category: financial
    owner: a@example.com
    ratio: {numerator: revenue, denominator: orders}
    targets: [{value: 100}]
  - name: average_order_value
    description: Revenue per order.
    category: financial
    owner: a@example.com
    ratio: {numerator: revenue, denominator: orders}
    targets: [{value: 100}]
"""
    found = warnings_of({"metrics/a.yml": CLEAN + ratios})
    assert found == [
        "metrics/a.yml:18:5: warning: kpi 'average_order_value': same definition as 'aov'"
        " (metrics/a.yml:12:5); keep one of them"
    ]


def test_two_derived_kpis_with_the_same_formula():
    derived = """\
  - name: margin
    description: Margin.
    category: financial
    owner: a@example.com
    derived: (revenue - cogs) / revenue
    targets: [{value: 0.4}]
  - name: margin_rate
    description: Margin.
    category: financial
    owner: a@example.com
    derived: (revenue-cogs)/revenue
    targets: [{value: 0.4}]
"""
    found = warnings_of({"metrics/a.yml": CLEAN + derived})
    assert [f.split(": warning: ")[1] for f in found] == [
        "kpi 'margin_rate': same definition as 'margin' (metrics/a.yml:12:5); keep one of them"
    ]


def _strategic(n: int) -> str:
    items = [
        CLEAN.split("kpis:\n")[1]
        .replace("name: revenue", f"name: kpi_{i}")
        .replace("sum: net_revenue", f"sum: net_revenue * {i + 1}")
        .replace("    category: financial\n", "    category: financial\n    strategic: true\n")
        for i in range(n)
    ]
    return "version: 1\nkpis:\n" + "".join(items)


def test_strategic_kpis_up_to_the_limit_are_fine():
    assert warnings_of({"metrics/a.yml": _strategic(10)}) == []


def test_more_strategic_kpis_than_the_limit():
    text = _strategic(11)
    found = warnings_of({"metrics/a.yml": text})
    eleventh = [n for n, line in enumerate(text.splitlines(), 1) if "strategic: true" in line][10]
    assert found == [
        f"metrics/a.yml:{eleventh}:16: warning: 11 KPIs are marked strategic, more than the"
        " limit of 10 (config.strategic_limit): "
        + ", ".join(f"kpi_{i}" for i in range(11))
        + "; steer by a handful"
    ]


def test_the_limit_is_the_projects():
    config = "config: {strategic_limit: 3}\n"
    found = warnings_of({"metrics/_project.yml": config, "metrics/a.yml": _strategic(4)})
    assert len(found) == 1 and "more than the limit of 3" in found[0]
    assert warnings_of({"metrics/_project.yml": config, "metrics/a.yml": _strategic(3)}) == []
