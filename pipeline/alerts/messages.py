"""Alert events as people and programs read them: terminal, JSON, Markdown, Slack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from pipeline.alerts.events import Event
from pipeline.export.cards import STATUS_LABELS, format_attainment, format_value, period_label

SLACK_MAX_EVENTS = 40  # Slack takes up to 50 blocks per message


@dataclass
class AlertReport:
    """The events of the published run against the previous one (or why there are none)."""

    published_run: str | None
    previous_run: str | None
    events: list[Event]
    note: str | None = None  # e.g. no previous run to compare with

    @property
    def pending(self) -> list[Event]:
        return [e for e in self.events if not e.sent]

    def to_dict(self) -> dict[str, Any]:
        return {
            "published_run": self.published_run,
            "previous_run": self.previous_run,
            "note": self.note,
            "events": [e.to_dict() for e in self.events],
        }


def _status(status: str | None) -> str:
    return STATUS_LABELS.get(status, status or "No target")


def what(event: Event) -> str:
    """The change in a few words."""
    if event.kind == "status_changed":
        return f"{_status(event.previous_status)} → {_status(event.status)}"
    if event.kind == "new_deviation":
        return "new deviation"
    if event.kind == "projected_miss":
        reached = event.projected_attainment
        return "at this pace ends off track" + (f" ({reached:.0%} of target)" if reached is not None else "")
    return "closed below target"


def slice_label(event: Event) -> str:
    return "total" if event.dimension == "total" else f"{event.dimension}={event.dimension_value}"


def period(event: Event) -> str:
    text = period_label(event.period_start, event.grain)
    return text + " (to date)" if event.is_partial_period else text


def summary(report: AlertReport) -> str:
    if report.note:
        return report.note
    pending = len(report.pending)
    return (
        f"{len(report.events)} KPI alert(s) in run {report.published_run} against "
        f"{report.previous_run}, {pending} not sent yet"
    )


def as_table(report: AlertReport) -> Table:
    table = Table(title=summary(report), title_justify="left")
    for name in ("KPI", "grain", "slice", "period", "event", "value", "target", "attain.",
                 "notify", "sent"):
        table.add_column(name)
    for e in report.events:
        table.add_row(*(Text(cell) for cell in _cells(e)), Text("yes" if e.sent else ""))
    return table


def as_json(report: AlertReport) -> str:
    return json.dumps(report.to_dict(), indent=2)


def as_markdown(report: AlertReport) -> str:
    lines = ["## KPI alerts", "", _md(summary(report)), ""]
    if report.events:
        lines += ["| KPI | grain | slice | period | event | value | target | attainment | notify | sent |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for e in report.events:
            cells = [*_cells(e), "yes" if e.sent else ""]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _cells(e: Event) -> list[str]:
    return [
        e.label, e.grain, slice_label(e), period(e), what(e),
        format_value(e.value, e.format, e.unit), format_value(e.target, e.format, e.unit),
        format_attainment(e.attainment), ", ".join(e.recipients),
    ]


def _md(text: str) -> str:
    """A table cell: pipes escaped, HTML shown as text."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def slack_events(report: AlertReport, events: Sequence[Event]) -> dict[str, Any]:
    """A Slack incoming-webhook body: `text` (the notification) and mrkdwn blocks."""
    head = f"KPI alerts: {len(events)} change(s) in run {report.published_run}"
    blocks: list[dict[str, Any]] = [_section(f"*{_slack(head)}*")]
    for e in events[:SLACK_MAX_EVENTS]:
        line = (
            f"*{_slack(e.label)}* ({e.grain}, {_slack(slice_label(e))}, {_slack(period(e))}): "
            f"{_slack(what(e))}; value {_slack(format_value(e.value, e.format, e.unit))}, "
            f"target {_slack(format_value(e.target, e.format, e.unit))}"
        )
        if e.recipients:  # mentions are the rules' own text (<@U…>, <!channel>)
            line += " · " + ", ".join(e.recipients)
        blocks.append(_section(line))
    if len(events) > SLACK_MAX_EVENTS:
        blocks.append(_section(f"… and {len(events) - SLACK_MAX_EVENTS} more (`kpi alerts`)"))
    return {"text": head, "blocks": blocks}


def slack_build_blocked(run_id: str, status: str, error: str | None) -> dict[str, Any]:
    """A blocked or failed build: the published KPIs did not change, so no KPI alerts."""
    head = f"KPI build {status}: run {run_id}; the published KPIs are unchanged"
    detail = _slack((error or "")[:2500])
    return {"text": head, "blocks": [_section(f"*{_slack(head)}*" + (f"\n{detail}" if detail else ""))]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _slack(text: str) -> str:
    """Slack's control characters escaped (its mrkdwn reads <…> as links and mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
