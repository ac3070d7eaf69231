"""The scorecard: one self-contained HTML page (no network, no scripts from anywhere).

KPIs grouped by category; each card shows the current period's value, target,
attainment, status colour, change against the previous period and against last year, and
a trend chart of value against target (inline SVG drawn here). Below, a section per KPI
with its description, owner, definition and history at each grain. A grain selector (radio
buttons and CSS, no JavaScript) switches every card and section between grains.

Every text from the data (labels, descriptions, owners, definitions) is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.explain.marts import Explanation
from pipeline.explain.render import format_delta, headline, top_drivers
from pipeline.export.cards import (
    CATEGORY_LABELS,
    MISSING,
    STATUS_COLOURS,
    STATUS_LABELS,
    TREND_PERIODS,
    Card,
    Point,
    build_cards,
    format_attainment,
    format_change,
    format_value,
    period_label,
    read_totals,
)
from pipeline.project import Project
from pipeline.spec.model import CATEGORIES, GRAINS
from pipeline.warehouse.names import PUBLISHED_SCHEMA, values_table

DEFAULT_GRAIN = "month"
DRIVERS_SHOWN = 5  # top drivers of the current change in a KPI's section
HISTORY_ROWS = {"day": 14, "week": 12, "month": 13, "quarter": 8, "year": 5}
VALUE_COLOUR = "#0969da"
TARGET_COLOUR = "#8c959f"


def e(text: object) -> str:
    """Escape text for HTML content and attribute values."""
    return html.escape("" if text is None else str(text), quote=True)


def write_scorecard(
    project: Project,
    out: Path,
    *,
    warehouse: Path | None = None,
    schema: str = PUBLISHED_SCHEMA,
    title: str | None = None,
) -> Path:
    """`kpi scorecard --out FILE`: read the published marts, write the page atomically."""
    from pipeline.explain.marts import current_explanations, load_spec
    from pipeline.export.atomic import write_text_atomically
    from pipeline.export.catalog import build_catalog

    source = warehouse or project.warehouse
    rows = read_totals(source, schema=schema)
    drivers = current_explanations(source, load_spec(project), schema=schema)
    page = scorecard_html(rows, build_catalog(project), title=title, drivers=drivers)
    out = Path(out)
    write_text_atomically(out, page)
    return out


def scorecard_html(
    rows: Iterable[Mapping[str, Any]],
    catalog: Mapping[str, Any] | None = None,
    *,
    title: str | None = None,
    default_grain: str = DEFAULT_GRAIN,
    generated_at: datetime | None = None,
    drivers: Mapping[tuple[str, str], Explanation] | None = None,
) -> str:
    """The scorecard page for kpi_values rows (totals are used) and a catalog document;
    `drivers`: per (KPI, grain), what drove the current period's change (`kpi explain`)."""
    cards = build_cards(rows, catalog)
    grains = [g for g in GRAINS if cards.get(g)]
    if default_grain not in grains and grains:
        default_grain = grains[0]
    entries = {k["name"]: k for k in (catalog or {}).get("kpis", [])}
    title = title or "KPI scorecard"
    moment = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    days = cards.get("day") or []
    latest = (
        max(c.period_start for c in days)
        if days
        else max((c.period_start for cs in cards.values() for c in cs), default=None)
    )
    kpi_count = len({c.kpi for cs in cards.values() for c in cs})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_css(grains)}</style>",
        "</head><body>",
    ]
    for grain in grains:  # the selector's state: radio inputs before everything they style
        checked = " checked" if grain == default_grain else ""
        parts.append(
            f'<input type="radio" name="grain" id="grain-{grain}" class="grain-radio" '
            f'value="{grain}"{checked}>'
        )
    parts.append('<header class="top">')
    parts.append(f"<h1>{e(title)}</h1>")
    parts.append(
        f'<p class="meta">Data up to {e(latest.isoformat() if latest else MISSING)} · '
        f"generated {e(moment)} · {kpi_count} KPIs</p>"
    )
    parts.append('<nav class="grain-selector" aria-label="Grain">Grain: ')
    for grain in grains:
        parts.append(f'<label for="grain-{grain}" class="grain-label lbl-{grain}">{grain}</label>')
    parts.append("</nav>")
    parts.append(_legend())
    parts.append("</header><main>")
    for category in _categories(cards):
        parts.append(f'<section class="category" id="category-{e(category)}">')
        parts.append(f"<h2>{e(CATEGORY_LABELS.get(category, category))}</h2>")
        parts.append('<div class="cards">')
        for grain in grains:
            for card in cards[grain]:
                if card.category == category:
                    parts.append(_card_html(card))
        parts.append("</div></section>")
    parts.append('<section class="details"><h2>KPI details</h2>')
    by_kpi: dict[str, dict[str, Card]] = {}
    for grain in grains:
        for card in cards[grain]:
            by_kpi.setdefault(card.kpi, {})[grain] = card
    for kpi, per_grain in by_kpi.items():
        parts.append(_detail_html(kpi, per_grain, entries.get(kpi, {}), grains, drivers or {}))
    parts.append("</section></main>")
    parts.append(
        '<footer><p>Generated by kpi-pipeline from the published KPI marts '
        f"(<code>{e(values_table())}</code>). Status compares with the target, "
        "or with the target to date for a partial period.</p></footer>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _categories(cards: Mapping[str, Sequence[Card]]) -> list[str]:
    present = {c.category for cs in cards.values() for c in cs}
    return [c for c in CATEGORIES if c in present] + sorted(present - set(CATEGORIES))


# --- a card -----------------------------------------------------------------------------


def _card_html(card: Card) -> str:
    status_class = card.status or "none"
    period = period_label(card.period_start, card.grain)
    partial = (
        f' <span class="partial" title="partial period: up to {e(card.period_end.isoformat())}">'
        "partial, to date</span>"
        if card.is_partial
        else ""
    )
    target_name = "Target to date" if card.is_partial else "Target"
    previous_name = "vs previous (to date)" if card.previous_is_to_date else "vs previous"
    trend = card.history[-TREND_PERIODS.get(card.grain, 24):]
    star = '<span class="strategic" title="strategic KPI">★</span> ' if card.strategic else ""
    return (
        f'<article class="card g g-{card.grain} status-{status_class}" data-kpi="{e(card.kpi)}" '
        f'data-grain="{card.grain}" style="border-top-color:{STATUS_COLOURS.get(card.status, STATUS_COLOURS[None])}">'
        f'<h3><a href="#kpi-{e(card.kpi)}">{star}{e(card.label)}</a></h3>'
        f'<p class="period">{e(period)}{partial}</p>'
        f'<p class="value">{e(format_value(card.value, card.format, card.unit))}</p>'
        f'<p class="status"><span class="badge badge-{status_class}">{e(card.status_label)}</span>'
        f' <span class="attainment" title="attainment">{e(format_attainment(card.attainment))}</span></p>'
        '<dl class="facts">'
        f"<dt>{target_name}</dt><dd>{e(format_value(card.target, card.format, card.unit))}</dd>"
        f"<dt>{previous_name}</dt><dd>{_change(card, card.previous_change_rate)}</dd>"
        f"<dt>vs last year</dt><dd>{_change(card, card.last_year_change_rate)}</dd>"
        "</dl>"
        f"{_pace(card)}"
        f"{trend_svg(trend, card.format, card.unit, width=260, height=70, label=card.label)}"
        "</article>"
    )


def _pace(card: Card) -> str:
    pace = card.pace
    if pace is None:
        return ""
    status = card.projected_status or "none"
    return f'<p class="pace pace-{status}">{e(pace[0].upper() + pace[1:])}.</p>'


def _change(card: Card, rate: float | None) -> str:
    good = card.is_good(rate)
    cls = "flat" if good is None else ("good" if good else "bad")
    arrow = "" if rate is None or rate == 0 else ("▲ " if rate > 0 else "▼ ")
    return f'<span class="change {cls}">{arrow}{e(format_change(rate))}</span>'


# --- a KPI's section -------------------------------------------------------------------


def _detail_html(
    kpi: str,
    per_grain: Mapping[str, Card],
    entry: Mapping[str, Any],
    grains: Sequence[str],
    drivers: Mapping[tuple[str, str], Explanation],
) -> str:
    any_card = next(iter(per_grain.values()))
    parts = [f'<section class="kpi-detail" id="kpi-{e(kpi)}">']
    parts.append(f"<h3>{e(any_card.label)} <code>{e(kpi)}</code></h3>")
    if entry.get("description") or any_card.description:
        parts.append(f'<p class="description">{e(entry.get("description") or any_card.description)}</p>')
    parts.append('<dl class="definition">')
    parts.append(f"<dt>Owner</dt><dd>{e(entry.get('owner') or any_card.owner or MISSING)}</dd>")
    if entry.get("definition"):
        parts.append(f"<dt>Definition</dt><dd><code>{e(entry['definition'])}</code></dd>")
    parts.append(
        f"<dt>Category</dt><dd>{e(CATEGORY_LABELS.get(any_card.category, any_card.category))}</dd>"
    )
    parts.append(
        f"<dt>Format</dt><dd>{e(any_card.format)}{' (' + e(any_card.unit) + ')' if any_card.unit else ''},"
        f" {e(any_card.direction)} is better</dd>"
    )
    targets = entry.get("targets") or []
    if targets:
        parts.append("<dt>Targets</dt><dd><ul>")
        parts.extend(f"<li>{e(t.get('source', ''))}</li>" for t in targets)
        parts.append("</ul></dd>")
    if entry.get("metric_file"):
        where = f"{entry['metric_file']}:{entry.get('metric_line', 1)}"
        parts.append(f"<dt>Declared in</dt><dd><code>{e(where)}</code></dd>")
    if entry.get("sql"):
        parts.append(f"<dt>Values model</dt><dd><code>{e(entry['sql'].get('values_model'))}</code></dd>")
    parts.append("</dl>")
    for grain in grains:
        card = per_grain.get(grain)
        parts.append(f'<div class="g g-{grain} history">')
        if card is None:
            parts.append(f'<p class="muted">Not tracked by {e(grain)}.</p></div>')
            continue
        parts.append(f"<h4>History by {e(grain)}</h4>")
        parts.append(
            trend_svg(card.history, card.format, card.unit, width=900, height=180, label=card.label, axes=True)
        )
        if (kpi, grain) in drivers:
            parts.append(_drivers_html(drivers[(kpi, grain)]))
        parts.append(_history_table(card))
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _drivers_html(x: Explanation) -> str:
    """The top drivers of the current change, by the first breakdown `kpi explain` gives."""
    parts = ['<div class="drivers">', f"<h5>What drove the change: {e(headline(x))}</h5>"]
    parts.extend(f'<p class="muted">{e(note)}</p>' for note in x.notes)
    if x.sections:
        section = x.sections[0]
        by = "input KPI" if section.by == "inputs" else section.by
        shown, other = top_drivers(section, DRIVERS_SHOWN)
        heading = "Contribution" if section.exact else "Own change"
        parts.append(
            f'<table class="drivers-table"><thead><tr><th>By {e(by)}</th><th>{heading}</th></tr></thead><tbody>'
        )
        for driver in shown + ([other] if other else []):
            amount = driver.contribution if section.exact else driver.change
            fmt, unit = ("number", None) if not section.exact and section.by == "inputs" else (x.format, x.unit)
            parts.append(f"<tr><td>{e(driver.name)}</td><td>{e(format_delta(amount, fmt, unit))}</td></tr>")
        parts.append("</tbody></table>")
        if section.note:
            parts.append(f'<p class="muted">{e(section.note)}</p>')
    parts.append("</div>")
    return "".join(parts)


def _history_table(card: Card) -> str:
    rows = []
    # the history points carry value and target; the comparisons come from the card rows
    for point in reversed(card.history[-HISTORY_ROWS.get(card.grain, 12):]):
        attainment = _attainment(point, card.direction)
        status = _status_of(attainment)
        rows.append(
            "<tr>"
            f"<td>{e(period_label(point.period_start, card.grain))}{' (partial)' if point.is_partial else ''}</td>"
            f"<td>{e(format_value(point.value, card.format, card.unit, compact=False))}</td>"
            f"<td>{e(format_value(point.target, card.format, card.unit, compact=False))}</td>"
            f"<td>{e(format_attainment(attainment))}</td>"
            f'<td><span class="dot" style="background:{STATUS_COLOURS.get(status, STATUS_COLOURS[None])}"></span></td>'
            "</tr>"
        )
    return (
        '<table class="history-table"><thead><tr><th>Period</th><th>Value</th><th>Target</th>'
        "<th>Attainment</th><th></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _attainment(point: Point, direction: str) -> float | None:
    if point.value is None or point.target is None or point.is_partial:
        return None
    if direction == "lower":
        return None if point.value == 0 else point.target / point.value
    return None if point.target == 0 else point.value / point.target


def _status_of(attainment: float | None) -> str | None:
    # indicative colours in the history table (the default thresholds); the cards show the marts' status
    if attainment is None:
        return None
    return "on_track" if attainment >= 1.0 else "at_risk" if attainment >= 0.9 else "off_track"


# --- charts -----------------------------------------------------------------------------


def trend_svg(
    points: Sequence[Point],
    fmt: str,
    unit: str | None,
    *,
    width: int,
    height: int,
    label: str = "",
    axes: bool = False,
) -> str:
    """An inline SVG line chart: value (solid, blue) against target (dashed, grey)."""
    left = 64 if axes else 4
    bottom = 20 if axes else 4
    top, right = 6, 6
    values = [p.value for p in points if p.value is not None]
    targets = [p.target for p in points if p.target is not None]
    title = f"<title>{e(label)}: value against target</title>"
    if not values:
        return (
            f'<svg class="chart chart-empty" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">{title}'
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" class="muted">no data</text></svg>'
        )
    low = min(values + targets)
    high = max(values + targets)
    if low > 0 and not axes:
        low = min(low, 0.0) if high > 0 and low / high < 0.5 else low
    if high == low:
        high, low = high + (abs(high) or 1) * 0.5, low - (abs(low) or 1) * 0.5
    span = high - low
    n = max(len(points) - 1, 1)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + plot_w * i / n

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / span)

    def paths(attr: str) -> list[str]:
        segments: list[list[str]] = []
        current: list[str] = []
        for i, p in enumerate(points):
            v = getattr(p, attr)
            if v is None:
                if current:
                    segments.append(current)
                current = []
            else:
                current.append(f"{x(i):.1f},{y(v):.1f}")
        if current:
            segments.append(current)
        return [" ".join(s) for s in segments]

    svg = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="none">{title}'
    ]
    if axes:
        for v in (low, (low + high) / 2, high):
            svg.append(
                f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">'
                f"{e(format_value(v, fmt, unit))}</text>"
            )
        first, last = points[0].period_start.isoformat(), points[-1].period_start.isoformat()
        svg.append(
            f'<text x="{left}" y="{height - 4}" class="tick">{e(first)}</text>'
            f'<text x="{width - right}" y="{height - 4}" text-anchor="end" class="tick">{e(last)}</text>'
        )
    for line in paths("target"):
        if " " not in line:  # one point: a short tick
            cx, cy = line.split(",")
            svg.append(f'<circle cx="{cx}" cy="{cy}" r="2" class="target-dot" fill="{TARGET_COLOUR}"/>')
        else:
            svg.append(
                f'<polyline points="{line}" fill="none" stroke="{TARGET_COLOUR}" stroke-width="1.5" '
                'stroke-dasharray="4 3" class="target-line"/>'
            )
    for line in paths("value"):
        if " " not in line:
            cx, cy = line.split(",")
            svg.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{VALUE_COLOUR}" class="value-dot"/>')
        else:
            svg.append(
                f'<polyline points="{line}" fill="none" stroke="{VALUE_COLOUR}" stroke-width="1.8" '
                'stroke-linejoin="round" class="value-line"/>'
            )
    final = points[-1]
    if final.value is not None:
        fill = "#fff" if final.is_partial else VALUE_COLOUR
        svg.append(
            f'<circle cx="{x(len(points) - 1):.1f}" cy="{y(final.value):.1f}" r="3" fill="{fill}" '
            f'stroke="{VALUE_COLOUR}" stroke-width="1.5"/>'
        )
    svg.append("</svg>")
    return "".join(svg)


# --- style ------------------------------------------------------------------------------


def _legend() -> str:
    items = "".join(
        f'<span class="legend-item"><span class="dot" style="background:{STATUS_COLOURS[s]}"></span>'
        f"{e(STATUS_LABELS[s])}</span>"
        for s in ("on_track", "at_risk", "off_track", None)
    )
    lines = (
        f'<span class="legend-item"><svg width="22" height="8" aria-hidden="true"><line x1="0" x2="22" y1="4" y2="4" '
        f'stroke="{VALUE_COLOUR}" stroke-width="2"/></svg>value</span>'
        f'<span class="legend-item"><svg width="22" height="8" aria-hidden="true"><line x1="0" x2="22" y1="4" y2="4" '
        f'stroke="{TARGET_COLOUR}" stroke-width="2" stroke-dasharray="4 3"/></svg>target</span>'
    )
    return f'<p class="legend">{items}{lines}</p>'


def _css(grains: Sequence[str]) -> str:
    shown = "\n".join(
        f"#grain-{g}:checked ~ main .g-{g} {{ display: block; }}\n"
        f"#grain-{g}:checked ~ header .lbl-{g} {{ background: #0969da; color: #fff; border-color: #0969da; }}"
        for g in grains
    )
    return f"""
:root {{ color-scheme: light; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1f2328; background: #f6f8fa; }}
header.top {{ padding: 16px 24px 8px; background: #fff; border-bottom: 1px solid #d0d7de; }}
h1 {{ margin: 0 0 4px; font-size: 22px; }}
h2 {{ font-size: 18px; margin: 24px 0 8px; }}
h3 {{ font-size: 14px; margin: 0 0 2px; }}
h3 a {{ color: inherit; text-decoration: none; }}
main {{ padding: 0 24px 24px; }}
.meta, .muted, .period {{ color: #59636e; margin: 0; }}
.grain-radio {{ position: absolute; opacity: 0; pointer-events: none; }}
.grain-selector {{ margin: 8px 0; }}
.grain-label {{ display: inline-block; padding: 2px 10px; margin-right: 4px; border: 1px solid #d0d7de;
  border-radius: 12px; cursor: pointer; background: #fff; }}
.legend {{ margin: 4px 0; color: #59636e; }}
.legend-item {{ margin-right: 12px; white-space: nowrap; }}
.legend svg {{ vertical-align: middle; margin-right: 4px; }}
.dot {{ display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px; vertical-align: middle; }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 12px; }}
.card {{ background: #fff; border: 1px solid #d0d7de; border-top: 4px solid #6e7781; border-radius: 6px; padding: 10px 10px 6px; }}
.g {{ display: none; }}
.value {{ font-size: 26px; font-weight: 600; margin: 2px 0; }}
.status {{ margin: 0 0 4px; }}
.badge {{ display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; background: #6e7781; }}
.badge-on_track {{ background: #1a7f37; }}
.badge-at_risk {{ background: #b35900; }}
.badge-off_track {{ background: #cf222e; }}
.attainment {{ color: #59636e; }}
.partial {{ font-size: 11px; background: #fff8c5; border: 1px solid #d4a72c; border-radius: 8px; padding: 0 6px; }}
.pace {{ margin: 2px 0; font-size: 12px; color: #59636e; }}
.pace-on_track {{ color: #1a7f37; }} .pace-at_risk {{ color: #b35900; }} .pace-off_track {{ color: #cf222e; }}
.facts {{ display: grid; grid-template-columns: auto 1fr; gap: 0 8px; margin: 4px 0; font-size: 12px; }}
.facts dt {{ color: #59636e; }} .facts dd {{ margin: 0; text-align: right; }}
.change.good {{ color: #1a7f37; }} .change.bad {{ color: #cf222e; }} .change.flat {{ color: #59636e; }}
.chart {{ display: block; width: 100%; height: auto; }}
.chart .grid {{ stroke: #eaeef2; }}
.chart .tick {{ font-size: 10px; fill: #59636e; }}
.strategic {{ color: #bf8700; }}
.kpi-detail {{ background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 12px; margin: 12px 0; }}
.definition {{ display: grid; grid-template-columns: 120px 1fr; gap: 2px 12px; }}
.definition dt {{ color: #59636e; }} .definition dd {{ margin: 0; }}
.definition ul {{ margin: 0; padding-left: 16px; }}
.drivers h5 {{ margin: 8px 0 2px; font-size: 13px; }}
.drivers-table {{ border-collapse: collapse; font-size: 12px; }}
.drivers-table th, .drivers-table td {{ padding: 2px 10px; text-align: right; border-bottom: 1px solid #eaeef2; }}
.drivers-table th:first-child, .drivers-table td:first-child {{ text-align: left; }}
.history-table {{ border-collapse: collapse; margin-top: 8px; font-size: 12px; }}
.history-table th, .history-table td {{ padding: 2px 10px; text-align: right; border-bottom: 1px solid #eaeef2; }}
.history-table th:first-child, .history-table td:first-child {{ text-align: left; }}
footer {{ padding: 8px 24px 24px; color: #59636e; font-size: 12px; }}
{shown}
"""
