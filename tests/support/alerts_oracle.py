"""The alert events of two runs, recomputed in plain Python from their kpi_values rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

Row = Mapping[str, Any]


def expected_events(
    new_rows: Iterable[Row], old_rows: Iterable[Row], wanted: Callable[[str, Row], bool]
) -> set[tuple[Any, ...]]:
    """(kind, kpi, grain, dimension, dimension_value, period_start, state) of every event:
    a series (kpi, grain, slice) must be in both runs; its current period's status differs
    from the old run's current period's; a period newly flagged as a deviation; a period
    complete now, partial or absent before (and after the old run's last), below target; the
    current, partial period projected to end off track."""
    def series(row: Row) -> tuple[Any, ...]:
        return row["kpi"], row["grain"], row["dimension"], row["dimension_value"]

    old = {(*series(r), r["period_start"]): r for r in old_rows}
    old_last: dict[tuple[Any, ...], Any] = {}
    for key in old:
        old_last[key[:4]] = max(old_last.get(key[:4], key[4]), key[4])
    new = list(new_rows)
    new_last: dict[tuple[Any, ...], Any] = {}
    for r in new:
        new_last[series(r)] = max(new_last.get(series(r), r["period_start"]), r["period_start"])
    events = set()
    for r in new:
        s = series(r)
        if s not in old_last:
            continue
        before = old.get((*s, r["period_start"]))
        found = []
        previous_current = old[(*s, old_last[s])]
        if (r["period_start"] == new_last[s] and r["status"] and previous_current["status"]
                and r["status"] != previous_current["status"]):
            found.append(("status_changed", r["status"]))
        if r["is_deviation"] and not (before and before["is_deviation"]):
            found.append(("new_deviation", "flagged"))
        newly_closed = (before is not None and before["is_partial_period"]) or (
            r["period_start"] > old_last[s]
        )
        if (not r["is_partial_period"] and r["attainment"] is not None and r["attainment"] < 1
                and newly_closed):
            found.append(("closed_below_target", "below"))
        if (r["period_start"] == new_last[s] and r["is_partial_period"]
                and r.get("projected_status") == "off_track"):
            found.append(("projected_miss", "off_track"))
        for kind, state in found:
            if wanted(kind, r):
                events.add((kind, *s, r["period_start"], state))
    return events
