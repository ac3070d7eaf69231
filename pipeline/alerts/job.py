"""`kpi alerts` and `kpi build --alert`: collect the events, deliver the pending ones."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb

from pipeline import compiler, publish
from pipeline.alerts import events, messages, webhook
from pipeline.alerts.rules import Rules, load_rules
from pipeline.errors import Level, NoWarehouse, UserError, has_errors
from pipeline.project import Project
from pipeline.spec.load import load


def project_rules(project: Project) -> Rules:
    """The project's alert rules; UserError when the metric files or the rules are wrong."""
    files = compiler.read_metric_files(project)
    spec, issues = load(files)
    rules, found = load_rules(files, spec)
    issues += found
    if has_errors(issues):
        raise UserError([i for i in issues if i.level is Level.ERROR])
    return rules


def collect(warehouse: Path, rules: Rules, *, read_only: bool = True) -> messages.AlertReport:
    """The published run's events against the previous published run."""
    if not warehouse.is_file():
        raise NoWarehouse(warehouse)
    con = publish.connect(warehouse, read_only=read_only)
    try:
        return _collect(con, rules)
    finally:
        con.close()


def _collect(con: duckdb.DuckDBPyConnection, rules: Rules) -> messages.AlertReport:
    current, previous = publish.published_run(con), publish.previous_run(con)
    if current is None:
        return messages.AlertReport(None, None, [], "no published run yet: no alerts")
    if previous is None:
        return messages.AlertReport(
            current, None, [], f"run {current} has no previous published run to compare with"
        )
    for run in (current, previous):
        if "kpi_values" not in publish.run_tables(con, run):
            return messages.AlertReport(current, previous, [], f"run {run} has no kpi_values")
    return messages.AlertReport(current, previous, events.compare(con, current, previous, rules))


def send(
    warehouse: Path,
    rules: Rules,
    *,
    wait_seconds: float = 0.0,
    env: Mapping[str, str] | None = None,
) -> tuple[messages.AlertReport, list[events.Event]]:
    """Post the pending events in one message and remember them; nothing is posted when
    none is pending. Returns the report and the events sent. Raises webhook.DeliveryError
    (the events stay pending) and publish.BuildLocked."""
    webhook.webhook_url(rules.webhook, env)  # before any work
    with publish.build_lock(warehouse, wait_seconds=wait_seconds, what="alerts"):
        # read in the mode it is written in: one DuckDB instance configuration per process
        report = collect(warehouse, rules, read_only=False)
        pending = report.pending
        if not pending:
            return report, []
        body = messages.slack_events(report, pending)
        webhook.post(rules.webhook, body, env=env)
        con = publish.connect(warehouse)
        try:
            assert report.published_run and report.previous_run
            events.record_sent(con, pending, report.published_run, report.previous_run)
        finally:
            con.close()
        for event in pending:
            event.sent = True
        return report, pending


def send_build_blocked(
    rules: Rules,
    run_id: str,
    status: str,
    error: str | None,
    *,
    env: Mapping[str, str] | None = None,
) -> None:
    """A blocked or failed build: one 'build blocked' message, never KPI alerts."""
    body = messages.slack_build_blocked(run_id, status, error)
    webhook.post(rules.webhook, body, env=env)
