"""The run report: what one build or check did (`BuildReport`), written as JSON beside the
gate's Data Docs and printed in the terminal."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from pipeline.errors import EXIT_FAILED
from pipeline.publish import AuditFailure
from pipeline.quality.gate import GateResult
from pipeline.quality.report import STYLES, render_gate, write_data_docs


@dataclass
class BuildReport:
    run_id: str
    status: str  # published | blocked | failed | checked
    as_of: datetime
    gate: GateResult | None = None
    audit_failures: list[AuditFailure] = field(default_factory=list)
    error: str | None = None
    published_run: str | None = None
    previous_run: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    report_path: Path | None = None
    data_docs: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.status in ("published", "checked") else EXIT_FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "as_of": self.as_of.isoformat(),
            "error": self.error,
            "published_run": self.published_run,
            "previous_run": self.previous_run,
            "timings_seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "audit_failures": [
                {"check": f.name, "offending_rows": f.offending, "detail": f.detail}
                for f in self.audit_failures
            ],
            "notes": self.notes,
            "gate": self.gate.to_dict() if self.gate else None,
            "data_docs": str(self.data_docs) if self.data_docs else None,
        }


def write_reports(report: BuildReport, reports_dir: Path, *, data_docs: bool = True) -> None:
    """run_<id>.json and last_run.json; Great Expectations Data Docs under data_docs/."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    if data_docs and report.gate is not None:
        try:
            report.data_docs = write_data_docs(report.gate, reports_dir / "gx")
        except Exception as error:  # the docs are a convenience; never fail a build on them
            report.error = (report.error or "") + f" (Data Docs not written: {error})"
    text = json.dumps(report.to_dict(), indent=2, default=str)
    path = reports_dir / f"run_{report.run_id}.json"
    path.write_text(text, encoding="utf-8")
    (reports_dir / "last_run.json").write_text(text, encoding="utf-8")
    report.report_path = path


def print_report(report: BuildReport, console: Console) -> None:
    if report.gate is not None:
        render_gate(report.gate, console)
    for note in report.notes:
        console.print(f"[yellow]note[/] {note}")
    for failure in report.audit_failures:
        console.print(f"[bold red]AUDIT[/] {failure.name}: {failure.offending} rows {failure.detail}")
    style = STYLES.get(report.status, "")
    console.print(f"\nrun {report.run_id}: [{style}]{report.status}[/]"
                  + (f" — {report.error}" if report.error else ""))
    if report.status == "published":
        console.print(f"analytics now reads run {report.published_run}"
                      + (f" (rollback target: {report.previous_run})" if report.previous_run else ""))
    elif report.status in ("blocked", "failed"):
        console.print("the published marts are unchanged")
    if report.report_path:
        console.print(f"[dim]report: {report.report_path}[/]")
    if report.data_docs:
        console.print(f"[dim]Data Docs: {report.data_docs}[/]")
