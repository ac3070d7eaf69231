"""Alert events on hand-made published runs (DuckDB, no dbt): every kind, the rules'
filters, dedupe, and delivery to receivers on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from pipeline import publish
from pipeline.alerts import job, messages, webhook
from pipeline.alerts.rules import load_rules
from pipeline.spec.load import load
from tests.support.alerts_oracle import expected_events
from tests.support.receiver import receiver, silent_receiver

COLUMNS = (
    "kpi", "label", "format", "unit", "grain", "period_start", "period_end", "dimension",
    "dimension_value", "value", "target", "target_to_date", "attainment", "status",
    "is_partial_period", "is_deviation", "projected_value", "projected_attainment",
    "projected_status",
)
SEP, OCT, NOV = date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)
END = {SEP: date(2026, 9, 30), OCT: date(2026, 10, 31), NOV: date(2026, 11, 30)}

METRICS = """\
kpis:
  - name: revenue
    label: Online sales <b>
    category: financial
    owner: finance@example.com
    model: orders
    time: order_date
    sum: amount
    dimensions: [channel]
    format: currency
  - name: orders_placed
    category: sales_marketing
    model: orders
    time: order_date
    count: "*"
alerts:
  webhook: {url_env: TEST_ALERT_URL, timeout_seconds: 0.3, retries: 2, backoff_seconds: 0.01}
  rules:
    - name: sales
      kpis: [revenue]
      grains: [month]
      slices: all
      notify: [owner, "<!channel>"]
"""


def row(kpi, start, value, attainment, status, *, partial=False, deviation=False,
        dim=("total", "total"), projected=(None, None, None)):
    return {
        "kpi": kpi, "label": "Online sales <b>" if kpi == "revenue" else kpi, "format": "currency", "unit": None, "grain": "month",
        "period_start": start, "period_end": END[start], "dimension": dim[0],
        "dimension_value": dim[1], "value": value, "target": 100.0,
        "target_to_date": 50.0 if partial else None, "attainment": attainment,
        "status": status, "is_partial_period": partial, "is_deviation": deviation,
        "projected_value": projected[0], "projected_attainment": projected[1],
        "projected_status": projected[2],
    }


WEB, APP = ("channel", "web"), ("channel", "app")
OLD = [  # as of mid-October
    row("revenue", SEP, 110, 1.1, "on_track"),
    row("revenue", OCT, 47.5, 0.95, "at_risk", partial=True),
    row("revenue", SEP, 50, 1.0, "on_track", dim=WEB),
    row("revenue", OCT, 30, 1.2, "on_track", partial=True, dim=WEB),
    row("orders_placed", OCT, 10, 0.5, "at_risk", partial=True),
]
NEW = [  # as of early November: October closed
    row("revenue", SEP, 110, 1.1, "on_track"),
    row("revenue", OCT, 80, 0.8, "off_track", deviation=True),
    row("revenue", NOV, 52.5, 1.05, "on_track", partial=True, projected=(105, 1.05, "on_track")),
    row("revenue", SEP, 50, 1.0, "on_track", dim=WEB),
    row("revenue", OCT, 99, 0.99, "on_track", dim=WEB),
    # on track to date, but at this pace November ends at 70% of its target
    row("revenue", NOV, 60, 1.2, "on_track", partial=True, dim=WEB, projected=(70, 0.7, "off_track")),
    row("revenue", NOV, 1, 0.02, "off_track", partial=True, deviation=True, dim=APP),  # new slice
    row("orders_placed", OCT, 10, 0.5, "off_track", deviation=True),
]


def publish_run(con, rows) -> str:
    run_id = publish.new_run_id()
    publish.start_run(con, run_id, as_of=datetime(2026, 11, 3))
    schema = publish.run_schema(run_id)
    con.execute(f"CREATE SCHEMA {schema}")
    con.execute(
        f"CREATE TABLE {schema}.kpi_values (kpi VARCHAR, label VARCHAR, format VARCHAR, "
        "unit VARCHAR, grain VARCHAR, period_start DATE, period_end DATE, dimension VARCHAR, "
        "dimension_value VARCHAR, value DOUBLE, target DOUBLE, target_to_date DOUBLE, "
        "attainment DOUBLE, status VARCHAR, is_partial_period BOOLEAN, is_deviation BOOLEAN, "
        "projected_value DOUBLE, projected_attainment DOUBLE, projected_status VARCHAR)"
    )
    con.executemany(
        f"INSERT INTO {schema}.kpi_values VALUES ({', '.join('?' * len(COLUMNS))})",
        [[r[c] for c in COLUMNS] for r in rows],
    )
    publish.swap(con, run_id)
    return run_id


@pytest.fixture()
def rules():
    files = {"metrics/m.yml": METRICS}
    spec, issues = load(files)
    loaded, found = load_rules(files, spec)
    assert not issues + found, [str(i) for i in issues + found]
    return loaded


@pytest.fixture()
def warehouse(tmp_path):
    path = tmp_path / "wh.duckdb"
    con = publish.connect(path)
    publish.ensure_meta(con)
    publish_run(con, OLD)
    publish_run(con, NEW)
    con.close()
    return path


def keys(found):
    return {(*e.key, e.state) for e in found}


def test_every_kind_is_found_as_the_oracle_finds_it(warehouse, rules):
    report = job.collect(warehouse, rules)
    oracle = expected_events(
        NEW, OLD, lambda kind, r: rules.recipients(kind, r["kpi"], r["grain"], r["dimension"]) is not None
    )
    assert keys(report.events) == oracle
    # the oracle itself, by hand: the new app slice and orders_placed (no rule) say nothing
    assert oracle == {
        ("status_changed", "revenue", "month", "total", "total", NOV, "on_track"),
        ("new_deviation", "revenue", "month", "total", "total", OCT, "flagged"),
        ("closed_below_target", "revenue", "month", "total", "total", OCT, "below"),
        ("closed_below_target", "revenue", "month", "channel", "web", OCT, "below"),
        ("projected_miss", "revenue", "month", "channel", "web", NOV, "off_track"),
    }
    changed = next(e for e in report.events if e.kind == "status_changed")
    assert (changed.previous_status, changed.previous_period_start) == ("at_risk", OCT)
    assert changed.target == 50.0  # to date in the partial period
    assert changed.recipients == ("finance@example.com", "<!channel>")
    assert not any(e.sent for e in report.events)


def test_a_first_run_has_nothing_to_compare_with(tmp_path, rules):
    path = tmp_path / "wh.duckdb"
    con = publish.connect(path)
    publish.ensure_meta(con)
    run_id = publish_run(con, OLD)
    con.close()
    report = job.collect(path, rules)
    assert report.events == [] and report.published_run == run_id
    assert "no previous published run" in (report.note or "")


def test_events_are_sent_once_and_again_when_their_state_changes(warehouse, rules):
    env = {}
    with receiver(200) as (url, bodies):
        env["TEST_ALERT_URL"] = url
        report, sent = job.send(warehouse, rules, env=env)
        assert len(sent) == 5 and len(bodies) == 1
        again, resent = job.send(warehouse, rules, env=env)
        assert resent == [] and len(bodies) == 1  # nothing posted twice
        assert all(e.sent for e in again.events) and keys(again.events) == keys(report.events)
        # the next run: November back at risk is news; October's events are not
        con = publish.connect(warehouse)
        third = [r | {"status": "at_risk"} if r["period_start"] == NOV else r for r in NEW]
        publish_run(con, third)
        con.close()
        _, sent = job.send(warehouse, rules, env=env)
    wanted = lambda kind, r: r["kpi"] == "revenue"  # noqa: E731 - the rule
    # what was sent before in the same state (November's projected miss) is not sent again
    assert keys(sent) == expected_events(third, NEW, wanted) - keys(report.events)
    assert {(e.kind, e.dimension_value) for e in sent} == {
        ("status_changed", "total"), ("status_changed", "web"), ("status_changed", "app"),
    }
    assert len(bodies) == 2


def test_the_webhook_body_is_a_slack_message(warehouse, rules):
    with receiver(200) as (url, bodies):
        job.send(warehouse, rules, env={"TEST_ALERT_URL": url})
    (body,) = bodies
    assert set(body) == {"text", "blocks"} and body["text"].startswith("KPI alerts: 5 change(s)")
    assert all(b["type"] == "section" and b["text"]["type"] == "mrkdwn" for b in body["blocks"])
    lines = "\n".join(b["text"]["text"] for b in body["blocks"])
    assert "Online sales &lt;b&gt;" in lines  # labels escaped, mentions kept
    assert "At risk → On track" in lines and "<!channel>" in lines


def test_a_receiver_failing_once_gets_the_message_on_the_retry(warehouse, rules):
    with receiver(500, 200) as (url, bodies):
        _, sent = job.send(warehouse, rules, env={"TEST_ALERT_URL": url})
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert len(sent) == 5
    assert all(e.sent for e in job.collect(warehouse, rules).events)


def test_a_receiver_that_never_answers_times_out_and_the_events_stay_pending(warehouse, rules):
    with silent_receiver() as url, pytest.raises(webhook.DeliveryError) as info:
        job.send(warehouse, rules, env={"TEST_ALERT_URL": url})
    message = str(info.value)
    assert message == (
        f"alerts not delivered to the webhook in TEST_ALERT_URL ({url.split('/')[2]}): "
        "no answer in 0.3 s (after 3 attempts)"
    )
    assert not any(e.sent for e in job.collect(warehouse, rules).events)


def test_a_refused_request_is_not_retried_and_the_url_is_not_printed(warehouse, rules):
    with receiver(404) as (url, bodies), pytest.raises(webhook.DeliveryError) as info:
        job.send(warehouse, rules, env={"TEST_ALERT_URL": url})
    assert len(bodies) == 1
    assert "HTTP 404 (after 1 attempt)" in str(info.value) and "secret" not in str(info.value)


def test_without_the_variable_nothing_is_read_or_sent(warehouse, rules):
    with pytest.raises(webhook.NoWebhook, match="set TEST_ALERT_URL to the webhook URL"):
        job.send(warehouse, rules, env={})
    with pytest.raises(webhook.NoWebhook, match="http"):
        job.send(warehouse, rules, env={"TEST_ALERT_URL": "file:///etc/passwd"})


def test_a_blocked_build_sends_one_build_blocked_message(rules):
    with receiver(200) as (url, bodies):
        job.send_build_blocked(rules, "r20261115t000000_abcdef", "blocked",
                               "the gate blocked the run: orders", env={"TEST_ALERT_URL": url})
    (body,) = bodies
    assert body["text"] == (
        "KPI build blocked: run r20261115t000000_abcdef; the published KPIs are unchanged"
    )
    assert "the gate blocked the run: orders" in body["blocks"][0]["text"]["text"]


def test_markdown_and_json_list_every_event(warehouse, rules):
    report = job.collect(warehouse, rules)
    markdown = messages.as_markdown(report)
    assert markdown.count("| Online sales &lt;b&gt; |") == 5
    assert "at this pace ends off track (70% of target)" in markdown
    assert "| status_changed" not in markdown and "At risk → On track" in markdown
    document = json.loads(messages.as_json(report))
    assert [e["kind"] for e in document["events"]].count("closed_below_target") == 2
    assert document["events"][0]["period_start"] == "2026-10-01"
