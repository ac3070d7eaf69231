"""Alert rules as loaded from the metric files (mistakes: tests/fixtures/broken_metrics/12x)."""

from __future__ import annotations

from pipeline.alerts.rules import DEFAULT_URL_ENV, EVENT_KINDS, load_rules
from pipeline.spec.load import load

KPIS = """\
kpis:
  - {name: revenue, category: financial, owner: fin@x, model: orders, time: order_date,
     sum: amount, strategic: true, dimensions: [channel]}
  - {name: orders_placed, category: sales_marketing, model: orders, time: order_date,
     count: "*", owner: ops@x, dimensions: [channel]}
"""


def _load(files):
    spec, issues = load(files)
    rules, found = load_rules(files, spec)
    return rules, [str(i) for i in issues + found]


def test_without_an_alerts_section_the_strategic_kpis_are_watched_by_month():
    rules, issues = _load({"metrics/k.yml": KPIS})
    assert issues == []
    (rule,) = rules.rules
    assert (rule.kpis, rule.grains, rule.slices) == ({"revenue"}, {"month"}, {"total"})
    assert rule.events == set(EVENT_KINDS) and rules.webhook.url_env == DEFAULT_URL_ENV
    assert rules.recipients("status_changed", "revenue", "month", "total") == ("fin@x",)
    assert rules.recipients("status_changed", "revenue", "month", "channel") is None
    assert rules.recipients("status_changed", "orders_placed", "month", "total") is None


def test_rules_add_up_and_owners_are_told_once():
    alerts = """\
alerts:
  rules:
    - {kpis: all, grains: [week, month], notify: [owner, "#kpis"]}
    - {kpis: [orders_placed], slices: [channel], events: [new_deviation], notify: [owner]}
"""
    rules, issues = _load({"metrics/k.yml": KPIS, "metrics/_alerts.yml": alerts})
    assert issues == []
    assert rules.recipients("new_deviation", "orders_placed", "month", "total") == ("ops@x", "#kpis")
    assert rules.recipients("new_deviation", "orders_placed", "month", "channel") == ("ops@x",)
    assert rules.recipients("status_changed", "orders_placed", "month", "channel") is None
    assert rules.recipients("status_changed", "revenue", "week", "total") == ("fin@x", "#kpis")
    assert rules.file == "metrics/_alerts.yml"


def test_alerts_in_two_files_are_refused_at_the_second():
    alerts = "alerts:\n  rules: []\n"
    _, issues = _load({"metrics/k.yml": KPIS, "metrics/a.yml": alerts, "metrics/b.yml": alerts})
    assert issues == [
        "metrics/b.yml:1:1: error: 'alerts' is already set in metrics/a.yml:1:1; set it in one file"
    ]


def test_every_mistake_of_a_rule_is_reported():
    alerts = """\
alerts:
  rules:
    - kpis: [revenu, orders_placd]
      slices: [chanel]
"""
    _, issues = _load({"metrics/k.yml": KPIS, "metrics/_alerts.yml": alerts})
    assert issues == [
        "metrics/_alerts.yml:3:14: error: alert rule 'rule 1': unknown KPI 'revenu' (did you mean 'revenue'?)",
        "metrics/_alerts.yml:3:22: error: alert rule 'rule 1': unknown KPI 'orders_placd' (did you mean 'orders_placed'?)",
        "metrics/_alerts.yml:4:16: error: alert rule 'rule 1': no KPI of the rule has dimension 'chanel' (did you mean 'channel'?)",
    ]


