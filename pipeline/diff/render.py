"""Print a diff report: in the terminal (rich), as Markdown for a pull request, as JSON."""

from __future__ import annotations

import json
from typing import Any

from pipeline.diff.report import DiffReport, KpiChange, Move, Side, ValueDiff


def _number(value: float | None) -> str:
    if value is None:
        return "NULL"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.2f}"
    return f"{value:,.4g}"


def _signed(value: float | None) -> str:
    if value is None:
        return ""
    text = _number(abs(value))
    return f"+{text}" if value > 0 else f"-{text}" if value < 0 else "0"


def _percent(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:+.1%}"


def _slice(move: Move) -> str:
    return "total" if move.dimension == "total" else f"{move.dimension}={move.dimension_value}"


def _side_name(side: Side) -> str:
    return f"{side.name} ({side.commit[:7]})" if side.commit else side.name


def headline(report: DiffReport) -> str:
    parts = [
        f"{len(report.of('added'))} added",
        f"{len(report.of('removed'))} removed",
        f"{len(report.of('changed'))} changed",
        f"{len(report.unchanged)} unchanged",
    ]
    sql = f"{len(report.sql)} generated SQL file(s) changed"
    return f"KPIs: {', '.join(parts)}; {sql}"


def _summary(change: KpiChange, report: DiffReport) -> str:
    """One line: what happened to the KPI."""
    if change.status == "added":
        text = f"renamed from {change.renamed_from}" if change.renamed_from else "new KPI"
        if change.renamed_from and change.values is not None:
            text += "; values identical" if not change.values.changed else "; values moved"
        elif report.values_compared:
            text += f", {change.rows:,} rows"
        return text
    if change.status == "removed":
        text = "removed"
        renamed = next((c.name for c in report.of("added") if c.renamed_from == change.name), None)
        if renamed:
            text = f"renamed to {renamed}"
        elif report.values_compared:
            text += f", {change.rows:,} rows gone"
        return text
    parts = []
    if change.definition:
        parts.append("definition: " + ", ".join(f.field for f in change.definition))
    if change.values is not None:
        parts.append(_values_line(change.values))
    return "; ".join(parts)


def _values_line(values: ValueDiff) -> str:
    if not values.changed:
        return "values unchanged"
    text = f"{values.moved:,} of {values.compared:,} rows moved"
    if values.moved_by_grain:
        text += " (" + ", ".join(f"{g} {n:,}" for g, n in values.moved_by_grain.items()) + ")"
    if values.only_head:
        text += f", {values.only_head:,} new rows"
    if values.only_base:
        text += f", {values.only_base:,} rows gone"
    return text


def _detailed(report: DiffReport) -> list[KpiChange]:
    """KPIs whose definition changed or whose values moved: shown field by field."""
    return [c for c in report.kpis if c.definition or (c.values is not None and c.values.moves)]


def problems(report: DiffReport) -> list[str]:
    lines = []
    for side in (report.base, report.head):
        label = _side_name(side)
        if side.issues:
            lines.append(f"{label} does not compile ({len(side.issues)} error(s)):")
            lines += [f"  {i}" for i in side.issues[:10]]
        if side.build_error:
            lines.append(f"{label}: the build failed: {side.build_error}")
        lines += [f"{label}: {note}" for note in side.notes]
    if report.base.warehouse is None and report.head.warehouse is None:
        lines.append("values not compared: definitions and generated SQL only")
    elif not report.values_compared:
        lines.append("values not compared: kpi_values missing on one side")
    return lines


def render_markdown(report: DiffReport, *, sql_diff_lines: int = 80) -> str:
    """The report as Markdown for a pull-request comment."""
    out: list[str] = [
        f"## KPI diff: `{_side_name(report.base)}` → {_side_name(report.head)}",
        "",
        f"**{headline(report)}**",
        "",
    ]
    found = problems(report)
    if found:
        out += ["> [!WARNING]"] + [f"> {_md(p)}  " for p in found] + [""]
    if report.kpis:
        out += ["| | KPI | what changed |", "|---|---|---|"]
        icons = {"added": "🟢 added", "removed": "🔴 removed", "changed": "🟡 changed"}
        for change in report.kpis:
            out.append(
                f"| {icons[change.status]} | `{change.name}` | {_md(_summary(change, report))} |"
            )
        out.append("")
    else:
        out += ["No KPI changed.", ""]
    for change in _detailed(report):
        title = f"### `{change.name}`"
        if change.renamed_from:
            title += f" (renamed from `{change.renamed_from}`)"
        out += [title, ""]
        if change.definition:
            out += ["| field | base | head |", "|---|---|---|"]
            out += [f"| {f.field} | {_code(f.base)} | {_code(f.head)} |" for f in change.definition]
            out.append("")
        if change.values is not None:
            out += [_md(_values_line(change.values)).capitalize(), ""]
            if change.values.moves:
                shown = len(change.values.moves)
                out += [
                    f"Largest moves (top {shown} of {change.values.moved:,}):",
                    "",
                    "| grain | period | slice | base | head | change | change % |",
                    "|---|---|---|--:|--:|--:|--:|",
                ]
                out += [
                    f"| {m.grain} | {m.period_start} | {_md(_slice(m))} | {_number(m.base)}"
                    f" | {_number(m.head)} | {_signed(m.change)} | {_percent(m.relative)} |"
                    for m in change.values.moves
                ]
                out.append("")
    if report.sql:
        out += [
            f"<details><summary>Generated SQL: {len(report.sql)} file(s) changed</summary>",
            "",
            "| file | change | lines |",
            "|---|---|--:|",
        ]
        out += [
            f"| `{s.path}` | {s.status} | +{s.added_lines} -{s.removed_lines} |" for s in report.sql
        ]
        budget = sql_diff_lines
        diff_lines: list[str] = []
        for s in report.sql:
            lines = s.diff.splitlines()
            if s.status != "changed" or len(lines) > budget:
                continue
            diff_lines += lines
            budget -= len(lines)
        if diff_lines:
            out += ["", "```diff", *diff_lines, "```"]
        out += ["", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    if not text:
        return "—"
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def render_json(report: DiffReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)


def render_terminal(report: DiffReport, console: Any) -> None:
    """The report with rich tables, printed on `console` (a rich Console)."""
    from rich.table import Table

    console.print(f"[bold]KPI diff[/]: {_side_name(report.base)} → {_side_name(report.head)}")
    console.print(headline(report))
    for line in problems(report):
        console.print(line, style="yellow", markup=False)
    if report.kpis:
        table = Table("", "KPI", "what changed", show_edge=False)
        styles = {"added": "green", "removed": "red", "changed": "yellow"}
        for change in report.kpis:
            table.add_row(
                f"[{styles[change.status]}]{change.status}[/]",
                change.name,
                _summary(change, report),
            )
        console.print(table)
    for change in _detailed(report):
        title = change.name + (
            f" (renamed from {change.renamed_from})" if change.renamed_from else ""
        )
        console.print(f"\n[bold]{title}[/]")
        if change.definition:
            table = Table("field", "base", "head", show_edge=False)
            for f in change.definition:
                table.add_row(f.field, f.base or "—", f.head or "—")
            console.print(table)
        if change.values is not None:
            console.print(_values_line(change.values), markup=False)
            if change.values.moves:
                table = Table(
                    "grain",
                    "period",
                    "slice",
                    "base",
                    "head",
                    "change",
                    "change %",
                    show_edge=False,
                )
                for m in change.values.moves:
                    table.add_row(
                        m.grain,
                        m.period_start,
                        _slice(m),
                        _number(m.base),
                        _number(m.head),
                        _signed(m.change),
                        _percent(m.relative),
                    )
                console.print(table)
    if report.sql:
        table = Table("generated file", "change", "lines", show_edge=False)
        for s in report.sql:
            table.add_row(s.path, s.status, f"+{s.added_lines} -{s.removed_lines}")
        console.print()
        console.print(table)
