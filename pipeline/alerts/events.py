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
from pipeline.publish import quote_ident

SENT_TABLE = f"{publish.META_SCHEMA}._kpi_alerts_sent"


@dataclass(frozen=True)
class EventKind:
    name: str
    description: str
    where: str  # over the pairs' columns (see _PAIRS)
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

# the new run's rows paired with the old run's; `{new}`/`{old}` are quoted run relations,
# $kpis/$grains the rules' KPIs and grains
_PAIRS = """
WITH n AS (
    SELECT kpi, label, format, unit, grain, period_start, period_end, dimension,
           dimension_value, value,
           CASE WHEN is_partial_period THEN target_to_date ELSE target END AS target,
           attainment, status, is_partial_period, is_deviation, projected_value,
           projected_attainment, projected_status
    FROM {new} WHERE list_contains($kpis, kpi) AND list_contains($grains, grain)
),
o AS (
    SELECT kpi, grain, period_start, dimension, dimension_value, status,
           is_partial_period, is_deviation
    FROM {old} WHERE list_contains($kpis, kpi) AND list_contains($grains, grain)
),
n_series AS (
    SELECT kpi, grain, dimension, dimension_value, max(period_start) AS last_start
    FROM n GROUP BY ALL
),
o_series AS (
    SELECT o.kpi, o.grain, o.dimension, o.dimension_value, s.last_start AS previous_last_start,
           o.status AS previous_status
    FROM o JOIN (
        SELECT kpi, grain, dimension, dimension_value, max(period_start) AS last_start
        FROM o GROUP BY ALL
    ) AS s ON o.kpi = s.kpi AND o.grain = s.grain AND o.dimension = s.dimension
        AND o.dimension_value = s.dimension_value AND o.period_start = s.last_start
),
pairs AS (
    SELECT n.*, ns.last_start, os.previous_last_start, os.previous_status,
           o.is_partial_period AS was_partial, o.is_deviation AS was_deviation
    FROM n
    JOIN n_series AS ns USING (kpi, grain, dimension, dimension_value)
    JOIN o_series AS os USING (kpi, grain, dimension, dimension_value)
    LEFT JOIN o USING (kpi, grain, dimension, dimension_value, period_start)
)
"""


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
    relation = "{}.kpi_values"
    selects = [
        f"SELECT '{kind.name}' AS kind, *, CAST({kind.state} AS VARCHAR) AS state "
        f"FROM pairs WHERE {kind.where}"
        for kind in KINDS.values()
    ]
    sql = _PAIRS.format(
        new=relation.format(quote_ident(publish.run_schema(new_run))),
        old=relation.format(quote_ident(publish.run_schema(old_run))),
    ) + " UNION ALL BY NAME ".join(selects)
    result = con.execute(sql, {"kpis": sorted(rules.kpis), "grains": sorted(rules.grains)})
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
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS {SENT_TABLE} (
            kind VARCHAR NOT NULL,
            kpi VARCHAR NOT NULL,
            grain VARCHAR NOT NULL,
            dimension VARCHAR NOT NULL,
            dimension_value VARCHAR NOT NULL,
            period_start DATE NOT NULL,
            state VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            previous_run_id VARCHAR NOT NULL,
            sent_at TIMESTAMP NOT NULL
        )""")


def record_sent(
    con: duckdb.DuckDBPyConnection, events: Iterable[Event], run_id: str, previous_run_id: str
) -> None:
    """Remember delivered events, with the published run they were computed for."""
    ensure_sent_table(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [[*e.key, e.state, run_id, previous_run_id, now] for e in events]
    if rows:
        con.executemany(f"INSERT INTO {SENT_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _sent_states(con: duckdb.DuckDBPyConnection) -> dict[tuple[Any, ...], str]:
    """The last state sent for each event key."""
    if not publish._has_table(con, publish.META_SCHEMA, SENT_TABLE.split(".")[1]):
        return {}
    rows = con.execute(
        f"SELECT kind, kpi, grain, dimension, dimension_value, period_start, "
        f"arg_max(state, sent_at) FROM {SENT_TABLE} GROUP BY ALL"
    ).fetchall()
    return {tuple(r[:6]): str(r[6]) for r in rows}
