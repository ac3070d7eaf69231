"""The scorecard's data: per KPI and grain, the current period and its history.

Shared by the HTML scorecard (`scorecard.py`) and the terminal table (`status.py`). The
current period of a KPI at a grain is its latest period; when that period is partial
(`is_partial_period`), the card says so, compares with the previous period *to date*
(`previous_value_to_date`) and with the target *to date* (`target_to_date`), and tells
where the period ends at this pace (`projected_value`, `projected_attainment`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.errors import NoWarehouse
from pipeline.spec.model import CATEGORIES, GRAINS
from pipeline.warehouse import sql
from pipeline.warehouse.names import PUBLISHED_SCHEMA, values_table

# the columns of kpi_values the scorecard reads (totals only: dimension = 'total')
COLUMNS = (
    "kpi",
    "label",
    "category",
    "format",
    "unit",
    "direction",
    "grain",
    "period_start",
    "period_end",
    "value",
    "is_partial_period",
    "previous_value",
    "previous_change_rate",
    "previous_value_to_date",
    "last_year_value",
    "last_year_change_rate",
    "target",
    "target_to_date",
    "attainment",
    "status",
    "projected_value",
    "projected_attainment",
    "projected_status",
)
STATUSES = ("on_track", "at_risk", "off_track")
STATUS_LABELS = {"on_track": "On track", "at_risk": "At risk", "off_track": "Off track", None: "No target"}
STATUS_COLOURS = {
    "on_track": "#1a7f37",
    "at_risk": "#b35900",
    "off_track": "#cf222e",
    None: "#6e7781",
}
CATEGORY_LABELS = {
    "financial": "Financial",
    "customer": "Customer",
    "sales_marketing": "Sales & marketing",
    "operational": "Operational",
    "people": "People",
}
MISSING = "\u2013"  # an en dash: no value
# how many periods a card's trend shows, per grain
TREND_PERIODS = {"day": 60, "week": 26, "month": 24, "quarter": 12, "year": 10}


def status_colour(status: str | None) -> str:
    """The colour of a status (on_track green, at_risk amber, off_track red, none grey)."""
    return STATUS_COLOURS.get(status, STATUS_COLOURS[None])


@dataclass(frozen=True)
class Point:
    period_start: date
    value: float | None
    target: float | None
    is_partial: bool = False


@dataclass(frozen=True)
class Card:
    """One KPI at one grain: its current (latest) period and its history."""

    kpi: str
    label: str
    category: str
    format: str
    unit: str | None
    direction: str
    grain: str
    period_start: date
    period_end: date
    is_partial: bool
    value: float | None
    target: float | None  # the target the status compares with (to date when partial)
    full_target: float | None  # the whole period's target
    attainment: float | None  # value against `target` (to date when partial)
    status: str | None
    previous_value: float | None  # to date when partial and the KPI adds up over days
    previous_change_rate: float | None
    last_year_value: float | None
    last_year_change_rate: float | None
    history: tuple[Point, ...]
    previous_is_to_date: bool = False  # previous_value covers as many days as the partial period
    # where a partial period ends at this pace, against the whole period's target
    projected_value: float | None = None
    projected_attainment: float | None = None
    projected_status: str | None = None
    strategic: bool = False
    description: str = ""
    owner: str | None = None

    @property
    def colour(self) -> str:
        return status_colour(self.status)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status or "No target")

    @property
    def pace(self) -> str | None:
        """'at this pace the month ends at 97% of target' (or at its projected value without
        a target); None without a projection."""
        if self.projected_value is None:
            return None
        ends = (
            f"{format_attainment(self.projected_attainment)} of target"
            if self.projected_attainment is not None
            else format_value(self.projected_value, self.format, self.unit)
        )
        return f"at this pace the {self.grain} ends at {ends}"

    def is_good(self, change: float | None) -> bool | None:
        """Whether a change is an improvement given the KPI's direction (None: no change)."""
        if change is None or change == 0:
            return None
        return (change > 0) == (self.direction != "lower")


def read_totals(warehouse: Path, *, schema: str = PUBLISHED_SCHEMA) -> list[dict[str, Any]]:
    """The unsliced rows of `kpi_values` (dimension 'total'), by KPI, grain and period."""
    import duckdb

    if not Path(warehouse).is_file():
        raise NoWarehouse(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        sql.execute(con, sql.setting("enable_progress_bar", False))
        result = sql.execute(con, sql.totals(values_table(schema), COLUMNS))
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def build_cards(
    rows: Iterable[Mapping[str, Any]],
    catalog: Mapping[str, Any] | None = None,
    grains: Sequence[str] = GRAINS,
) -> dict[str, list[Card]]:
    """Cards per grain, ordered by category, strategic KPIs first, then label.

    `rows`: kpi_values rows (totals; other slices are ignored); `catalog`: the catalog
    document (`catalog.build_catalog`) for descriptions, owners and the strategic flag.
    """
    entries = {k["name"]: k for k in (catalog or {}).get("kpis", [])}
    series: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("dimension", "total") != "total" or row["grain"] not in grains:
            continue
        series[(row["kpi"], row["grain"])].append(row)
    out: dict[str, list[Card]] = {g: [] for g in grains}
    for (kpi, grain), history in series.items():
        history.sort(key=lambda r: r["period_start"])
        out[grain].append(_card(history, entries.get(kpi, {})))
    order = {c: i for i, c in enumerate(CATEGORIES)}
    for cards in out.values():
        cards.sort(key=lambda c: (order.get(c.category, len(order)), not c.strategic, c.label.lower()))
    return out


def _card(history: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]) -> Card:
    last = history[-1]
    partial = bool(last.get("is_partial_period"))
    value = _num(last.get("value"))
    previous = _num(last.get("previous_value"))
    change_rate = _num(last.get("previous_change_rate"))
    to_date = _num(last.get("previous_value_to_date"))
    previous_to_date = partial and to_date is not None
    if previous_to_date:
        previous = to_date
        change_rate = _rate(value, to_date)
    target = _num(last.get("target"))
    target_to_date = _num(last.get("target_to_date"))
    attainment = _num(last.get("attainment"))
    if partial and target_to_date is not None:  # what status compares with: the target to date
        attainment = _attainment(value, target_to_date, str(last.get("direction") or "higher"))
    return Card(
        kpi=str(last["kpi"]),
        label=str(entry.get("label") or last.get("label") or last["kpi"]),
        category=str(last.get("category") or entry.get("category") or ""),
        format=str(last.get("format") or entry.get("format") or "number"),
        unit=last.get("unit") or entry.get("unit"),
        direction=str(last.get("direction") or entry.get("direction") or "higher"),
        grain=str(last["grain"]),
        period_start=last["period_start"],
        period_end=last["period_end"],
        is_partial=partial,
        value=value,
        target=target_to_date if partial and target_to_date is not None else target,
        full_target=target,
        attainment=attainment,
        status=last.get("status"),
        previous_value=previous,
        previous_change_rate=change_rate,
        previous_is_to_date=previous_to_date,
        projected_value=_num(last.get("projected_value")),
        projected_attainment=_num(last.get("projected_attainment")),
        projected_status=last.get("projected_status"),
        last_year_value=_num(last.get("last_year_value")),
        last_year_change_rate=_num(last.get("last_year_change_rate")),
        history=tuple(
            Point(
                r["period_start"],
                _num(r.get("value")),
                _num(r.get("target")),
                bool(r.get("is_partial_period")),
            )
            for r in history
        ),
        strategic=bool(entry.get("strategic", False)),
        description=str(entry.get("description") or ""),
        owner=entry.get("owner"),
    )


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def _attainment(value: float | None, target: float | None, direction: str) -> float | None:
    if value is None or target is None:
        return None
    if direction == "lower":
        return None if value == 0 else target / value
    return None if target == 0 else value / target


def _rate(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return (value - base) / abs(base)


# --- formatting -------------------------------------------------------------------------


def format_value(value: float | None, fmt: str, unit: str | None = None, *, compact: bool = True) -> str:
    """A KPI value as people read it: $512.3k, 2.05%, 36.4 hours, 1,234."""
    if value is None:
        return MISSING
    if fmt == "percent":
        return f"{value * 100:.{1 if abs(value) >= 0.1 else 2}f}%"
    if fmt == "currency":
        return ("-" if value < 0 else "") + "$" + _number(abs(value), compact)
    text = _number(value, compact)
    if fmt == "duration" or unit:
        return f"{text} {unit}" if unit else text
    return text


def _number(value: float, compact: bool) -> str:
    magnitude = abs(value)
    if compact:
        for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if magnitude >= size * 10 or (magnitude >= size and size >= 1e6):
                return f"{value / size:,.{1 if magnitude < size * 100 else 0}f}{suffix}"
    if magnitude >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def format_change(rate: float | None) -> str:
    """A relative change: +12.3%, -4.0%, or an en dash when there is nothing to compare with."""
    if rate is None:
        return MISSING
    return f"{rate * 100:+.1f}%"


def format_attainment(attainment: float | None) -> str:
    return MISSING if attainment is None else f"{attainment * 100:.0f}%"


def period_label(start: date, grain: str) -> str:
    """2026-11-15, week of 2026-11-09, Nov 2026, 2026 Q4, 2026."""
    if grain == "day":
        return start.isoformat()
    if grain == "week":
        return f"week of {start.isoformat()}"
    if grain == "month":
        return start.strftime("%b %Y")
    if grain == "quarter":
        return f"{start.year} Q{(start.month - 1) // 3 + 1}"
    return str(start.year)
