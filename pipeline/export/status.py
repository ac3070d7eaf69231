"""`kpi status`: the scorecard in a terminal, as a rich table.

One row per KPI at the chosen grain: category, KPI, current period (marked when partial),
value, target (to date when partial), attainment, status (coloured), change against the
previous period (to date when partial) and last year, where a partial period ends at this
pace (against the whole period's target), and a trend sparkline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipeline.export.cards import (
    CATEGORY_LABELS,
    Card,
    build_cards,
    format_attainment,
    format_change,
    format_value,
    period_label,
    read_totals,
    status_colour,
)
from pipeline.warehouse.names import PUBLISHED_SCHEMA

SPARK = "▁▂▃▄▅▆▇█"
SPARK_PERIODS = 12


def sparkline(values: Sequence[float | None]) -> str:
    """Unicode bars for a series (a space for a missing value)."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = high - low
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif span == 0:
            out.append(SPARK[len(SPARK) // 2])
        else:
            out.append(SPARK[min(int((v - low) / span * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)])
    return "".join(out)


def status_table(
    rows: Iterable[Mapping[str, Any]],
    catalog: Mapping[str, Any] | None = None,
    *,
    grain: str = "month",
    categories: Sequence[str] | None = None,
) -> Table:
    """The scorecard of `grain` as a rich Table (labels are plain text, never markup)."""
    cards = build_cards(rows, catalog, grains=(grain,))[grain]
    if categories:
        cards = [c for c in cards if c.category in categories]
    table = Table(
        title=f"KPI scorecard by {grain}",
        title_justify="left",
        caption="partial periods: target and previous period to date; "
        "at this pace: where the period ends, against its whole target",
        caption_justify="left",
    )
    for name, justify in (
        ("category", "left"), ("KPI", "left"), ("period", "left"), ("value", "right"),
        ("target", "right"), ("attain.", "right"), ("status", "left"),
        ("vs prev.", "right"), ("vs LY", "right"), ("at this pace", "right"), ("trend", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    previous_category = None
    for card in cards:
        category = CATEGORY_LABELS.get(card.category, card.category)
        table.add_row(
            Text(category if category != previous_category else ""),
            Text(("★ " if card.strategic else "") + card.label),
            Text(period_label(card.period_start, card.grain) + (" (to date)" if card.is_partial else "")),
            Text(format_value(card.value, card.format, card.unit)),
            Text(format_value(card.target, card.format, card.unit)),
            Text(format_attainment(card.attainment)),
            Text(card.status_label, style=f"bold {status_colour(card.status)}"),
            _change(card, card.previous_change_rate),
            _change(card, card.last_year_change_rate),
            _pace(card),
            Text(sparkline([p.value for p in card.history[-SPARK_PERIODS:]]), style="#0969da"),
        )
        previous_category = category
    return table


def _change(card: Card, rate: float | None) -> Text:
    good = card.is_good(rate)
    style = "" if good is None else ("green" if good else "red")
    return Text(format_change(rate), style=style)


def _pace(card: Card) -> Text:
    """The projected attainment (or value, without a target), coloured by its status."""
    if card.projected_value is None:
        return Text("")
    if card.projected_attainment is None:
        return Text(format_value(card.projected_value, card.format, card.unit))
    return Text(format_attainment(card.projected_attainment), style=status_colour(card.projected_status))


def print_status(
    warehouse: Path,
    catalog: Mapping[str, Any] | None = None,
    *,
    grain: str = "month",
    console: Console | None = None,
    schema: str = PUBLISHED_SCHEMA,
) -> None:
    """`kpi status`: read the published marts and print the table."""
    table = status_table(read_totals(warehouse, schema=schema), catalog, grain=grain)
    (console or Console()).print(table)
