"""An explanation as a terminal table, markdown or JSON; the largest contributions first."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from pipeline.explain.decompose import Driver
from pipeline.explain.marts import INPUTS, Explanation, Section
from pipeline.export.cards import MISSING, format_change, format_value, period_label

METHODS = {
    "additive": "each slice's change (the slices add up to the total)",
    "mix_rate": "mix + rate effects per slice",
    "shapley": "Shapley values of the inputs",
    "own_change": "each one's own change (not a decomposition)",
}


def format_delta(value: float | None, fmt: str, unit: str | None = None) -> str:
    """A signed change in the KPI's format: +$1.2k, -3.40 pp, +12."""
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    if fmt == "percent":
        return f"{value * 100:+.2f} pp"
    sign = "-" if value < 0 else "+"
    return sign + format_value(abs(value), fmt, unit)


def headline(x: Explanation) -> str:
    """'Nov 2026 (to date) vs Oct 2026 to date: $10.2k against $9.4k, +$800 (+8.5%)'."""
    now = period_label(x.period_start, x.grain) + (" (to date)" if x.is_partial else "")
    then = period_label(x.base_start, x.grain) + (" to date" if x.to_date else "")
    rate = None if x.base_value == 0 else x.change / abs(x.base_value)
    return (
        f"{now} vs {then}: {format_value(x.value, x.format, x.unit)} against "
        f"{format_value(x.base_value, x.format, x.unit)}, "
        f"{format_delta(x.change, x.format, x.unit)} ({format_change(rate)})"
    )


def top_drivers(section: Section, top: int) -> tuple[list[Driver], Driver | None]:
    """The first `top` drivers and the rest summed as one 'other' line (None: no rest)."""
    shown, rest = list(section.drivers[:top]), section.drivers[top:]
    if not rest:
        return shown, None
    contribution = sum(d.contribution or 0.0 for d in rest) if section.exact else None
    return shown, Driver(f"{len(rest)} other" + ("s" if len(rest) > 1 else ""), None, None, contribution)


def _title(x: Explanation, section: Section) -> str:
    by = "by input KPI" if section.by == INPUTS else f"by {section.by}"
    return f"{x.label} {by}: {METHODS[section.method]}"


def _cells(x: Explanation, section: Section, driver: Driver) -> list[str]:
    # slices of a ratio show their rate; inputs their own value (in plain numbers)
    fmt = "number" if section.by == INPUTS else x.format
    unit = None if section.by == INPUTS else x.unit
    cells = [
        driver.name,
        format_value(driver.value, fmt, unit),
        format_value(driver.base, fmt, unit),
    ]
    if section.exact:
        cells.append(format_delta(driver.contribution, x.format, x.unit))
    else:
        cells.append(format_delta(driver.change, fmt, unit))
    if section.method == "mix_rate":
        cells += [format_delta(driver.mix, x.format, x.unit), format_delta(driver.rate, x.format, x.unit)]
    return cells


def _headers(section: Section) -> list[str]:
    first = "input" if section.by == INPUTS else section.by
    headers = [first, "value", "base", "contribution" if section.exact else "own change"]
    return headers + (["mix", "rate"] if section.method == "mix_rate" else [])


def _footer(x: Explanation, section: Section) -> str:
    if section.exact:
        return f"sum of contributions {format_delta(section.total, x.format, x.unit)} = the change"
    return ""


def render_terminal(x: Explanation, console: Console, *, top: int = 10) -> None:
    parts: list[Any] = [Text(f"{x.label} ({x.kpi}) by {x.grain}", style="bold"), Text(headline(x))]
    parts += [Text(f"note: {n}", style="yellow") for n in x.notes]
    for section in x.sections:
        table = Table(title=_title(x, section), title_justify="left", caption_justify="left")
        for i, header in enumerate(_headers(section)):
            table.add_column(header, justify="left" if i == 0 else "right")
        shown, other = top_drivers(section, top)
        for driver in shown + ([other] if other else []):
            table.add_row(*(Text(c) for c in _cells(x, section, driver)))
        table.caption = "\n".join(t for t in (_footer(x, section), section.note) if t)
        parts.append(table)
    console.print(Group(*parts))


def render_markdown(x: Explanation, *, top: int = 10) -> str:
    lines = [f"### {_md(x.label)} (`{x.kpi}`) by {x.grain}", "", _md(headline(x)), ""]
    lines += [f"> {_md(n)}" for n in x.notes] + ([""] if x.notes else [])
    for section in x.sections:
        headers = _headers(section)
        lines += [f"**{_md(_title(x, section))}**", "", "| " + " | ".join(headers) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
        shown, other = top_drivers(section, top)
        for driver in shown + ([other] if other else []):
            lines.append("| " + " | ".join(_md(c) for c in _cells(x, section, driver)) + " |")
        lines.append("")
        lines += [f"_{_md(t)}_" for t in (_footer(x, section), section.note) if t]
        lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def as_dict(x: Explanation) -> dict[str, Any]:
    """Every number, every driver (no top cut)."""
    return {
        "kpi": x.kpi,
        "label": x.label,
        "grain": x.grain,
        "format": x.format,
        "unit": x.unit,
        "period": {"start": x.period_start.isoformat(), "end": x.period_end.isoformat(), "partial": x.is_partial},
        "vs": x.vs,
        "base": {"start": x.base_start.isoformat(), "end": x.base_end.isoformat(), "to_date": x.to_date},
        "value": x.value,
        "base_value": x.base_value,
        "change": x.change,
        "notes": list(x.notes),
        "sections": [_section(s) for s in x.sections],
    }


def _section(section: Section) -> dict[str, Any]:
    return {
        "by": section.by,
        "method": section.method,
        "exact": section.exact,
        "sum_of_contributions": section.total,
        "note": section.note,
        "drivers": [_driver(d, section.method) for d in section.drivers],
    }


def _driver(driver: Driver, method: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": driver.name,
        "value": driver.value,
        "base_value": driver.base,
        "change": driver.change,
        "contribution": driver.contribution,
    }
    if method == "mix_rate":
        out |= {"mix": driver.mix, "rate": driver.rate, "share": driver.share, "base_share": driver.base_share}
    return out


def render_json(x: Explanation) -> str:
    return json.dumps(as_dict(x), indent=2)


def summary(x: Explanation, *, top: int = 3) -> str:
    """One line of the top drivers of the first exact section: 'web +$1.2k, app -$300'."""
    section = next((s for s in x.sections if s.exact), None)
    if section is None:
        return ""
    return ", ".join(
        f"{d.name} {format_delta(d.contribution, x.format, x.unit)}" for d in section.drivers[:top]
    )

