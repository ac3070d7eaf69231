"""The raw inputs' fingerprint: has anything changed since the published run?

Per source table (guarded or not): its row count, its newest timestamp (the column
of its freshness check; without one, its first date or timestamp column) and a digest of its rows (order-independent: the sum of
DuckDB's hash of every row). The gate reads them with the table's profile, every run
stores them in `kpi_meta._kpi_runs.inputs`, and a run whose inputs equal the published
run's says so: republishing stale inputs is a warning, or blocks with
KPI_UNCHANGED_INPUTS=block.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import duckdb
import pandas as pd

from pipeline import publish
from pipeline.errors import UserError
from pipeline.quality.spec import TableSpec
from pipeline.quality.suite import max_column

POLICY_ENV = "KPI_UNCHANGED_INPUTS"
DIGEST = "digest"  # the profile's column holding the rows' digest


@dataclass(frozen=True)
class TableInput:
    source: str
    table: str
    rows: int
    newest: str | None  # ISO timestamp of the newest row, None without a time column
    digest: str | None


@dataclass
class InputState:
    tables: list[TableInput]
    published_run: str | None = None
    unchanged: bool = False  # equal to the published run's inputs
    policy: Literal["warn", "block"] = "warn"

    @property
    def action(self) -> str:
        if not self.unchanged:
            return "passed"
        return "blocked" if self.policy == "block" else "warned"

    @property
    def message(self) -> str:
        return (
            f"the raw inputs are unchanged since the published run {self.published_run} "
            "(same rows, newest timestamps and content in every table)"
        )

    def fingerprint(self) -> list[dict[str, Any]]:
        return [asdict(t) for t in self.tables]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": self.fingerprint(), "published_run": self.published_run,
            "unchanged": self.unchanged, "policy": self.policy, "action": self.action,
        }


def time_column(spec: TableSpec, columns: Sequence[str]) -> str | None:
    """The column whose newest value the fingerprint records: the freshness check's, else
    the first column declared a date or timestamp."""
    for e in spec.expectations:
        if e.kind == "freshness" and e.columns[0] in columns:
            return e.columns[0]
    return next(
        (c for c, t in spec.columns.items() if t in ("date", "timestamp") and c in columns), None
    )


def table_input(
    source: str, table: str, profile: pd.DataFrame, column: str | None
) -> TableInput:
    """One table's fingerprint from its profile (row_count, digest, max__<column>)."""
    row = profile.iloc[0] if len(profile) else pd.Series(dtype=object)
    newest = row.get(max_column(column)) if column else None
    digest = row.get(DIGEST)
    return TableInput(
        source, table, int(row.get("row_count", 0)),
        None if newest is None or pd.isna(newest) else pd.Timestamp(newest).isoformat(),
        None if digest is None or pd.isna(digest) else str(digest),
    )


def unchanged_policy() -> Literal["warn", "block"]:
    value = (os.environ.get(POLICY_ENV) or "warn").strip().lower()
    if value not in ("warn", "block"):
        raise UserError(f"{POLICY_ENV}={value!r}: use warn (the default) or block")
    return "block" if value == "block" else "warn"


def compare_with_published(
    con: duckdb.DuckDBPyConnection, tables: Sequence[TableInput]
) -> InputState:
    """The inputs, and whether they equal those stored with the published run."""
    state = InputState(list(tables), policy=unchanged_policy())
    state.published_run = publish.published_run(con)
    if state.published_run is not None:
        stored = publish.run_inputs(con, state.published_run)
        state.unchanged = stored is not None and json.loads(stored) == state.fingerprint()
    return state
