"""Alerts over two consecutive real builds (gate, dbt, publish) with a changed input, and
`kpi build --alert` / `kpi alerts` against receivers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from test_gate import copy_warehouse, project_for, with_defects
from test_gate import published_demo as published_demo  # the shared session fixture

from pipeline import compiler, publish
from pipeline.alerts import job
from pipeline.alerts.rules import load_rules
from pipeline.build import build
from pipeline.project import Project
from pipeline.spec.load import load
from tests.support.alerts_oracle import expected_events
from tests.support.receiver import receiver

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-15"
EVERYTHING = """\
alerts:
  webhook: {url_env: TEST_ALERT_URL, timeout_seconds: 2, retries: 2, backoff_seconds: 0.01}
  rules:
    - {kpis: all, grains: [day, week, month, quarter, year], slices: all}
"""
COLUMNS = ("kpi", "grain", "dimension", "dimension_value", "period_start", "status",
           "attainment", "is_partial_period", "is_deviation", "projected_status")


def _rules(text: str = EVERYTHING):
    files = compiler.read_metric_files(Project(REPO))
    files["metrics/_alerts.yml"] = text
    spec, issues = load(files)
    rules, found = load_rules(files, spec)
    assert not issues + found
    return rules


def _rows(warehouse: Path, run_id: str) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        result = con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM {publish.run_schema(run_id)}.kpi_values"
        )
        return [dict(zip(COLUMNS, r, strict=True)) for r in result.fetchall()]


@pytest.fixture(scope="module")
def two_builds(published_demo, tmp_path_factory):
    """The demo published, then built again with three times the ad spend since August."""
    folder = tmp_path_factory.mktemp("alerts")
    warehouse = copy_warehouse(published_demo, folder / "wh.duckdb")
    con = publish.connect(warehouse)
    con.execute("UPDATE raw.ad_spend SET spend = spend * 3 WHERE spend_date >= DATE '2026-08-01'")
    first = publish.published_run(con)
    con.close()
    report = build(project_for(warehouse), as_of=AS_OF, do_seed=False, data_docs=False,
                   reports_dir=folder / "reports")
    assert report.status == "published", report.error
    assert report.previous_run == first
    return warehouse, first, report.published_run


@pytest.mark.dbt
def test_the_events_of_two_builds_are_the_oracles(two_builds):
    warehouse, first, second = two_builds
    rules = _rules()
    report = job.collect(warehouse, rules)
    assert (report.published_run, report.previous_run) == (second, first)
    oracle = expected_events(_rows(warehouse, second), _rows(warehouse, first), lambda k, r: True)
    found = {(*e.key, e.state) for e in report.events}
    assert found == oracle
    kinds = {e[0] for e in oracle}
    assert {"status_changed", "new_deviation"} <= kinds, kinds
    assert {e[1] for e in oracle} >= {"cac", "marketing_spend"}


@pytest.mark.dbt
def test_the_demo_rules_send_once_after_a_receiver_error(two_builds, tmp_path):
    warehouse = copy_warehouse(two_builds[0], tmp_path / "wh.duckdb")
    rules = _rules(EVERYTHING.replace("{kpis: all, grains: [day, week, month, quarter, year], "
                                      "slices: all}", "{kpis: [cac], grains: [month]}"))
    with receiver(500, 200) as (url, bodies):
        _, sent = job.send(warehouse, rules, env={"TEST_ALERT_URL": url})
        assert sent and len(bodies) == 2
        assert {(e.kpi, e.grain, e.dimension) for e in sent} == {("cac", "month", "total")}
        _, again = job.send(warehouse, rules, env={"TEST_ALERT_URL": url})
    assert again == [] and len(bodies) == 2
    assert all(e.sent for e in job.collect(warehouse, rules).events)


def _kpi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("kpi")), *args], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "false", **env}, timeout=600,
    )


def _env(warehouse: Path, url: str) -> dict[str, str]:
    return {
        "KPI_WAREHOUSE": str(warehouse),
        "DBT_TARGET_PATH": str(warehouse.parent / "target"),
        "DBT_LOG_PATH": str(warehouse.parent / "logs"),
        "KPI_EXPORT_DIR": str(warehouse.parent / "exports"),
        "KPI_ALERT_WEBHOOK_URL": url,
    }


@pytest.mark.dbt
def test_kpi_alerts_prints_json_and_a_dead_webhook_exits_1(two_builds, tmp_path):
    warehouse = copy_warehouse(two_builds[0], tmp_path / "wh.duckdb")
    shown = _kpi("alerts", "--format", "json", env=_env(warehouse, ""))
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["published_run"] == two_builds[2]
    assert all(e["kpi"] in job.project_rules(Project(REPO)).kpis for e in document["events"])
    missing = _kpi("alerts", "--send", env=_env(warehouse, ""))
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: set KPI_ALERT_WEBHOOK_URL to the webhook URL to send alerts"
    with receiver(500) as (url, _):
        dead = _kpi("alerts", "--send", env=_env(warehouse, url))
    assert dead.returncode == 1
    assert dead.stderr.strip().startswith("error: alerts not delivered to the webhook in "
                                          "KPI_ALERT_WEBHOOK_URL (127.0.0.1:")


@pytest.mark.dbt
def test_a_blocked_build_sends_only_build_blocked(two_builds, tmp_path, monkeypatch):
    from pipeline.cli import _send_alerts

    warehouse, _ = with_defects(two_builds[0], tmp_path, "empty_table")
    rules = job.project_rules(Project(REPO))
    pending = job.collect(warehouse, rules).pending
    assert pending  # KPI alerts are waiting, from the two builds
    report = build(project_for(warehouse), as_of=AS_OF, do_seed=False, data_docs=False,
                   reports_dir=tmp_path / "reports")
    assert report.status == "blocked"
    with receiver(200) as (url, bodies):
        monkeypatch.setenv("KPI_ALERT_WEBHOOK_URL", url)
        _send_alerts(project_for(warehouse), rules, report)
    (body,) = bodies
    assert body["text"] == (
        f"KPI build blocked: run {report.run_id}; the published KPIs are unchanged"
    )
    assert "the gate blocked the run: returns" in body["blocks"][0]["text"]["text"]
    assert [e.key for e in job.collect(warehouse, rules).pending] == [e.key for e in pending]


def test_build_alert_without_the_variable_refuses_before_building(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    result = _kpi("build", "--alert", env={**_env(warehouse, ""), "KPI_ALERT_WEBHOOK_URL": ""})
    assert result.returncode == 2
    assert result.stderr.strip() == "error: set KPI_ALERT_WEBHOOK_URL to the webhook URL to send alerts"
    assert not warehouse.exists()
