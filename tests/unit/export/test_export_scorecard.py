"""The scorecard page and the terminal table, from rows in memory (no warehouse)."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any

from rich.console import Console

from pipeline.export.cards import (
    MISSING,
    STATUS_COLOURS,
    build_cards,
    format_change,
    format_value,
    status_colour,
)
from pipeline.export.scorecard import scorecard_html
from pipeline.export.status import status_table

EVIL = "<script>alert(1)</script>"


def _rows(kpi: str = "revenue", label: str = "Revenue", status: str | None = "on_track") -> list[dict[str, Any]]:
    rows = []
    start = date(2026, 1, 1)
    for i in range(11):
        month = date(start.year, start.month + i, 1)
        partial = i == 10
        rows.append({
            "kpi": kpi, "label": label, "category": "financial", "format": "currency",
            "unit": None, "direction": "higher", "grain": "month",
            "period_start": month, "period_end": month + timedelta(days=27),
            "dimension": "total", "dimension_value": "total",
            "value": 1000.0 + 100 * i, "is_partial_period": partial,
            "previous_value": 900.0 + 100 * i, "previous_change_rate": 0.1,
            "previous_value_to_date": 500.0 if partial else None,
            "last_year_value": 800.0, "last_year_change_rate": 0.25,
            "target": 1000.0, "target_to_date": 480.0 if partial else 1000.0,
            "attainment": 1.1, "status": status,
        })
    return rows


def _catalog(label: str = "Revenue", description: str = "Net sales.") -> dict[str, Any]:
    return {"kpis": [{
        "name": "revenue", "label": label, "description": description, "owner": "finance@example",
        "definition": "sum(net_revenue) over orders by order_date", "strategic": True,
        "targets": [{"kind": "value", "source": "metrics/x.yml:3 (1000 per month)"}],
        "metric_file": "metrics/x.yml", "metric_line": 3, "sql": {"values_model": "kpi_values__orders"},
    }]}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_in_labels_and_descriptions_renders_as_text() -> None:
    page = scorecard_html(_rows(label=EVIL), _catalog(label=EVIL, description=f"a {EVIL} b"))
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags  # the page has no script element at all
    assert any(EVIL in t for t in parser.text)  # …and shows the label as text


def test_the_page_is_self_contained() -> None:
    page = scorecard_html(_rows(), _catalog())
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert page.count("<svg") >= 2 and "<polyline" in page


def test_cards_show_value_target_status_and_changes() -> None:
    page = scorecard_html(_rows(), _catalog())
    card = re.search(r'<article class="card g g-month status-on_track".*?</article>', page, re.S)
    assert card is not None
    text = card.group(0)
    assert "$2,000" in text  # the latest (partial) period's value
    assert "partial, to date" in text and "Target to date" in text
    assert "+300.0%" in text  # against the previous period to date: 2000 vs 500
    assert "+25.0%" in text  # against last year
    assert STATUS_COLOURS["on_track"] in text
    assert 'href="#kpi-revenue"' in page and 'id="kpi-revenue"' in page
    assert "finance@example" in page and "sum(net_revenue)" in page


def test_status_colours() -> None:
    assert status_colour("on_track") == "#1a7f37"
    assert status_colour("at_risk") == "#b35900"
    assert status_colour("off_track") == "#cf222e"
    assert status_colour(None) == status_colour("unknown") == "#6e7781"
    for status in ("at_risk", "off_track"):
        page = scorecard_html(_rows(status=status), _catalog())
        assert f"status-{status}" in page and STATUS_COLOURS[status] in page


def test_formats() -> None:
    assert format_value(512_300.0, "currency") == "$512k"
    assert format_value(0.0205, "percent") == "2.05%"
    assert format_value(36.4, "duration", "hours") == "36.40 hours"
    assert format_value(None, "number") == MISSING
    assert format_change(0.123) == "+12.3%" and format_change(None) == MISSING


def test_a_partial_period_compares_with_the_previous_period_to_date() -> None:
    card = build_cards(_rows())["month"][0]
    assert card.is_partial and card.previous_value == 500.0 and card.target == 480.0
    assert card.previous_change_rate == (2000.0 - 500.0) / 500.0
    assert card.attainment == 2000.0 / 480.0  # against the target to date, as status is


def test_status_table_escapes_markup_and_shows_status() -> None:
    table = status_table(_rows(label="[bold red]x[/]"), _catalog(label="[bold red]x[/]"), grain="month")
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(table)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[bold red]x[/]" in output
    assert "On track" in output and "$2,000" in output


def _projected(target: float | None) -> list[dict[str, Any]]:
    rows = _rows()
    rows[-1].update(
        target=target,
        projected_value=1940.0,
        projected_attainment=None if target is None else 1940.0 / target,
        projected_status=None if target is None else "at_risk",
    )
    return rows


def test_a_partial_period_tells_where_it_ends_at_this_pace() -> None:
    card = build_cards(_projected(2000.0))["month"][0]
    assert card.pace == "at this pace the month ends at 97% of target"
    assert "At this pace the month ends at 97% of target." in scorecard_html(_projected(2000.0), _catalog())
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(status_table(_projected(2000.0), _catalog(), grain="month"))
    assert re.search(r"at this pace.*\n(.*\n)*.*97% ", console.file.getvalue())  # type: ignore[attr-defined]
    # without a target: the projected value; without a projection: nothing
    assert build_cards(_projected(None))["month"][0].pace == "at this pace the month ends at $1,940"
    assert build_cards(_rows())["month"][0].pace is None
    assert "At this pace" not in scorecard_html(_rows(), _catalog())
