"""Reports of a gate run: terminal (rich) and Great Expectations Data Docs (the JSON is
`GateResult.to_dict`, in the run report: `pipeline/report.py`)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pipeline.quality.gate import GateResult, jsonable

STYLES = {  # rich style of each status: of a table, an expectation, a run
    "passed": "green", "warned": "yellow", "quarantined": "magenta",
    "blocked": "bold red", "skipped": "dim", "published": "bold green",
    "checked": "bold green", "failed": "bold red",
}


def render_gate(gate: GateResult, console: Console, *, samples: int = 3) -> None:
    """Per table: status and counts; each failed expectation with its count, %, samples, policy."""
    summary = Table(title=f"Input gate (as-of {gate.as_of.isoformat(sep=' ')})", show_lines=False)
    for column in ("table", "status", "raw rows", "passed", "quarantined", "newest", "failed checks"):
        summary.add_column(column, justify="right" if column[0] in "rpq" else "left")
    newest = {i.table: i.newest for i in gate.inputs.tables}
    for t in gate.tables:
        style = STYLES.get(t.status, "")
        failed = [e for e in t.failed if e.action != "skipped"]
        summary.add_row(
            f"{t.source}.{t.table}", f"[{style}]{t.status}[/]", f"{t.raw_rows:,}",
            f"{t.passed_rows:,}", f"{t.quarantined_rows:,}",
            (newest.get(t.table) or "").replace("T", " "), str(len(failed)),
        )
    console.print(summary)
    for table in gate.unguarded:
        console.print(f"[{STYLES['warned']}]UNGUARDED[/] {table.message}", markup=True)
    if gate.inputs.unchanged:
        action = gate.inputs.action
        console.print(f"[{STYLES[action]}]{action.upper()}[/] {gate.inputs.message}")
    for t in gate.tables:
        failed = t.failed
        if not [e for e in failed if e.action != "skipped"]:
            continue
        console.print(f"\n[bold]{t.source}.{t.table}[/]")
        skipped: dict[str, int] = {}
        for e in failed:
            style = STYLES.get(e.action, "")
            if e.action == "skipped":
                skipped[e.note] = skipped.get(e.note, 0) + 1
                continue
            if e.level == "row" or (e.level == "schema" and e.unexpected_count):
                counts = f"{e.unexpected_count:,} rows ({e.unexpected_percent:.3g}%)"
            else:
                counts = f"observed {jsonable(e.observed)}"
            console.print(
                f"  [{style}]{e.action.upper()}[/] {e.id}: {e.description} — {counts}; "
                f"policy {e.policy}  [dim]{e.location}[/]"
            )
            if e.note:
                console.print(f"      {e.note}")
            for row in e.samples[:samples]:
                plain = {k: v for k, v in row.items() if not k.startswith("__") or k.startswith("__orphan")}
                console.print(f"      [dim]e.g. {json.dumps(plain, default=str)}[/]")
        for why, count in skipped.items():
            console.print(f"  [dim]{count} expectation(s) not evaluated: {why}[/]")


def write_data_docs(gate: GateResult, root: Path) -> Path:
    """Great Expectations Data Docs (HTML) of the gate's suites and results; the index path."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    root.mkdir(parents=True, exist_ok=True)
    context: Any = gx.get_context(mode="file", project_root_dir=str(root))
    run_id = RunIdentifier(run_name=gate.run_id, run_time=gate.as_of)
    for t in gate.tables:
        result = t.gx_result
        if result is None:
            continue
        suite_name = f"raw.{t.table}"
        suite = gx.ExpectationSuite(
            name=suite_name,
            expectations=[r.expectation_config.to_domain_obj() for r in result.results],
        )
        with contextlib.suppress(Exception):  # absent on a first run
            context.suites.delete(suite_name)
        context.suites.add(suite)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=run_id,
            batch_identifier=f"raw.{t.table}",
        )
        context.validation_results_store.set(key, result)
    context.build_data_docs()
    sites = context.get_docs_sites_urls()
    index = root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    for site in sites:
        url = site.get("site_url") or ""
        if url.startswith("file://"):
            index = Path(url[len("file://"):])
    return index
