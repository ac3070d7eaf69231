"""Alert events: what changed in `kpi_values` between the published run and the one before.

Both runs' schemas exist (the previous one is kept for rollback), so the comparison is
one query over `run_<new>.kpi_values` and `run_<old>.kpi_values`. Rows of both runs are
paired by (kpi, grain, dimension, dimension_value, period_start); only series (a KPI's
grain and slice) present in both runs are compared. Each event kind is a predicate over
those pairs and a `state`: an event is keyed by (kind, kpi, grain, slice, period) and is
sent again only when its state differs from the last one sent for that key
(`kpi_meta._kpi_alerts_sent`, written when a delivery succeeds).

Each kind is one `EventKind`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from pipeline import publish
from pipeline.alerts.rules import Rules
from pipeline.warehouse import sql
from pipeline.warehouse.names import SENT_TABLE, run_schema, values_table


@dataclass(frozen=True)
class EventKind:
    name: str
    description: str
    where: str  # over the pairs' columns (see `sql.ALERT_PAIRS`)
    state: str  # what makes a repeat of the same key a new event


KINDS = {
    k.name: k
    for k in (
        EventKind(
            "status_changed",
            "the status of the current period differs from the previous run's current period",
            "period_start = last_start AND status IS NOT NULL AND previous_status IS NOT NULL "
            "AND status <> previous_status",
            "status",
        ),
        EventKind(
            "new_deviation",
            "a period is flagged as a deviation that was not flagged in the previous run",
            "is_deviation AND NOT coalesce(was_deviation, false)",
            "'flagged'",
        ),
        EventKind(
            "closed_below_target",
            "a period complete in this run (partial or not yet there before) is below its target",
            "NOT is_partial_period AND attainment < 1 "
            "AND (coalesce(was_partial, false) OR period_start > previous_last_start)",
            "'below'",
        ),
        EventKind(
            "projected_miss",
            "at this pace the current, partial period ends off track (its projected status)",
            "period_start = last_start AND is_partial_period AND projected_status = 'off_track'",
            "projected_status",
        ),
    )
}

@dataclass
class Event:
    kind: str
    kpi: str
    label: str
    format: str
    unit: str | None
    grain: str
    dimension: str
    dimension_value: str
    period_start: date
    period_end: date
    is_partial_period: bool
    value: float | None
    target: float | None  # to date in a partial period
    attainment: float | None
    status: str | None
    previous_status: str | None  # of the previous run's current period
    previous_period_start: date | None
    state: str
    projected_value: float | None = None  # where the partial period ends at this pace
    projected_attainment: float | None = None
    recipients: tuple[str, ...] = ()
    sent: bool = False  # delivered before (same key, same state)
    rules: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[str, str, str, str, str, date]:
        return (self.kind, self.kpi, self.grain, self.dimension, self.dimension_value,
                self.period_start)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("period_start", "period_end", "previous_period_start"):
            out[name] = out[name].isoformat() if out[name] else None
        out["recipients"] = list(self.recipients)
        out["rules"] = list(self.rules)
        return out


_FROM_QUERY = (
    "kind", "kpi", "label", "format", "unit", "grain", "dimension", "dimension_value",
    "period_start", "period_end", "is_partial_period", "value", "target", "attainment",
    "status", "previous_status", "state", "projected_value", "projected_attainment",
)


def compare(
    con: duckdb.DuckDBPyConnection, new_run: str, old_run: str, rules: Rules
) -> list[Event]:
    """The events of `new_run` against `old_run` that a rule wants, each marked `sent`
    when it was delivered before."""
    if not rules.kpis or not rules.grains:
        return []
    query = sql.alert_events(
        values_table(run_schema(new_run)).node(),
        values_table(run_schema(old_run)).node(),
        [(kind.name, kind.where, kind.state) for kind in KINDS.values()],
    )
    result = sql.execute(con, query, {"kpis": sorted(rules.kpis), "grains": sorted(rules.grains)})
    names = [d[0] for d in result.description]
    rows = result.fetchall()
    sent = _sent_states(con)
    events = []
    for row in rows:
        record = dict(zip(names, row, strict=True))
        told = rules.recipients(record["kind"], record["kpi"], record["grain"], record["dimension"])
        if told is None:
            continue
        event = Event(
            **{f: record[f] for f in _FROM_QUERY},
            previous_period_start=record["previous_last_start"],
            recipients=told,
            rules=tuple(r.name for r in rules.rules if r.wants(
                record["kind"], record["kpi"], record["grain"], record["dimension"])),
        )
        event.sent = sent.get(event.key) == event.state
        events.append(event)
    events.sort(key=lambda e: (e.kpi, e.grain, e.dimension, e.dimension_value, e.period_start,
                               list(KINDS).index(e.kind)))
    return events


def ensure_sent_table(con: duckdb.DuckDBPyConnection) -> None:
    publish.ensure_meta(con)
    for statement in sql.create_table(sql.SENT_DEF):
        sql.execute(con, statement)


def record_sent(
    con: duckdb.DuckDBPyConnection, events: Iterable[Event], run_id: str, previous_run_id: str
) -> None:
    """Remember delivered events, with the published run they were computed for."""
    ensure_sent_table(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [[*e.key, e.state, run_id, previous_run_id, now] for e in events]
    if rows:
        sql.executemany(con, sql.insert_row(sql.SENT_DEF), rows)


def _sent_states(con: duckdb.DuckDBPyConnection) -> dict[tuple[Any, ...], str]:
    """The last state sent for each event key."""
    if not publish.has_table(con, SENT_TABLE):
        return {}
    rows = sql.execute(con, sql.sent_states()).fetchall()
    return {tuple(r[:6]): str(r[6]) for r in rows}
