"""The gate: validate one raw table with Great Expectations and apply each policy.

Pure with respect to the warehouse: it takes pandas frames (a schema sample, a
one-row profile, and a lazy iterator of bounded row chunks) and returns a
`TableOutcome`. `quality.run` reads those frames from DuckDB (`quality.read`) and
writes the outcome (quarantine rows, validated copy).

Policies: `block` (the run stops before anything is built), `warn` (reported, the
run goes on), `quarantine` (the offending rows are set aside with the reason; the
rest go on). A quarantine expectation failing on more than its
`max_quarantine_percent` of the rows blocks instead: at that point the input is
broken, not a few bad rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import pandas as pd

from pipeline.quality.inputs import InputState
from pipeline.quality.spec import Expectation, Policy, TableSpec
from pipeline.quality.suite import (
    ROW,
    compile_expectation,
    frame_column,
    gx_frame,
    max_column,
    volume_band,
)

Action = Literal["passed", "warned", "quarantined", "blocked", "skipped"]
# (column, declared type, n) -> (rows breaking the type, the first n of them)
Offenders = Callable[[str, str, int], tuple[int, pd.DataFrame]]

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass
class ExpectationOutcome:
    id: str
    table: str
    kind: str
    level: str
    policy: Policy
    description: str
    location: str
    success: bool = True
    action: Action = "passed"
    element_count: int = 0
    unexpected_count: int = 0
    unexpected_percent: float = 0.0
    observed: Any = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "table": self.table, "kind": self.kind, "level": self.level,
            "policy": self.policy, "action": self.action, "success": self.success,
            "description": self.description, "location": self.location,
            "element_count": self.element_count, "unexpected_count": self.unexpected_count,
            "unexpected_percent": round(self.unexpected_percent, 4),
            "observed": jsonable(self.observed), "samples": self.samples, "note": self.note,
        }


@dataclass
class TableOutcome:
    source: str
    table: str
    raw_rows: int
    expectations: list[ExpectationOutcome]
    # rowid -> [(expectation id, reason)] of the rows set aside
    quarantine: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    gx_result: Any = None  # ExpectationSuiteValidationResult, aggregated over chunks
    chunks: int = 0

    @property
    def quarantined_rows(self) -> int:
        return len(self.quarantine)

    @property
    def passed_rows(self) -> int:
        return self.raw_rows - self.quarantined_rows

    @property
    def status(self) -> Action:
        actions = {e.action for e in self.expectations}
        order: tuple[Action, ...] = ("blocked", "quarantined", "warned")
        for action in order:
            if action in actions:
                return action
        return "passed"

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if e.action not in ("passed",)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "table": self.table, "status": self.status,
            "raw_rows": self.raw_rows, "passed_rows": self.passed_rows,
            "quarantined_rows": self.quarantined_rows, "chunks": self.chunks,
            "expectations": [e.to_dict() for e in self.expectations],
        }


@dataclass(frozen=True)
class Unguarded:
    """A dbt source table that no expectations file guards: read as it is, with a warning."""

    source: str
    table: str
    relation: str
    location: str  # of its dbt source entry
    rows: int | None  # None: the relation does not exist

    @property
    def message(self) -> str:
        state = "does not exist" if self.rows is None else f"{self.rows:,} rows, nothing checked"
        return (f"{self.source}.{self.table} ({self.relation}, {self.location}) has no "
                f"expectations: {state}")

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "table": self.table, "relation": self.relation,
                "location": self.location, "rows": self.rows, "message": self.message}


@dataclass
class GateResult:
    run_id: str
    as_of: datetime
    tables: list[TableOutcome]
    inputs: InputState = field(default_factory=lambda: InputState([]))
    unguarded: list[Unguarded] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"

    @property
    def why_blocked(self) -> str:
        tables = [t.table for t in self.tables if t.status == "blocked"]
        if tables:
            return f"the gate blocked the run: {', '.join(tables)}"
        return f"the gate blocked the run: {self.inputs.message}"

    @property
    def status(self) -> Action:
        statuses: set[str] = {t.status for t in self.tables} | {self.inputs.action}
        if self.unguarded:
            statuses.add("warned")
        order: tuple[Action, ...] = ("blocked", "quarantined", "warned")
        for action in order:
            if action in statuses:
                return action
        return "passed"

    def table(self, name: str) -> TableOutcome:
        for t in self.tables:
            if t.table == name:
                return t
        raise KeyError(name)

    def outcome(self, expectation_id: str) -> ExpectationOutcome:
        for t in self.tables:
            for e in t.expectations:
                if e.id == expectation_id:
                    return e
        raise KeyError(expectation_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "as_of": self.as_of.isoformat(), "status": self.status,
            "blocked": self.blocked, "tables": [t.to_dict() for t in self.tables],
            "inputs": self.inputs.to_dict(),
            "unguarded": [u.to_dict() for u in self.unguarded],
        }


def jsonable(value: Any) -> Any:
    """A value as JSON knows it (timestamps as ISO text, NaN/NaT as null)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


class Validator:
    """A Great Expectations ephemeral context with one pandas dataframe asset."""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = self.context.data_sources.add_pandas("kpi_raw").add_dataframe_asset("frame")
        self._definition = asset.add_batch_definition_whole_dataframe("whole")

    def batch(self, frame: pd.DataFrame) -> Any:
        return self._definition.get_batch(batch_parameters={"dataframe": gx_frame(frame)})


_SUMMARY = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
_COMPLETE = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW],
    "return_unexpected_index_query": False,
}


def validate_table(
    spec: TableSpec,
    *,
    sample: pd.DataFrame,
    profile: pd.DataFrame,
    chunks: Callable[[], Iterable[pd.DataFrame]],
    as_of: datetime,
    baseline: int | None = None,
    validator: Validator | None = None,
    sample_rows: int = 3,
    offenders: Offenders | None = None,
) -> TableOutcome:
    """Run the table's suite: schema on `sample`, table checks on `profile`, row checks on chunks.

    `sample` holds the table's first rows with its plain columns; `profile` one row
    with `row_count` and `max__<col>`; `chunks()` yields frames indexed by `__row`
    with the plain and derived columns, at most a bounded number of rows each, and
    partitioned so that rows sharing a key are in the same chunk. `offenders(column,
    type, n)` counts the rows of the whole table whose column breaks its declared type
    and returns the first `n`, for the report of a failed type check.
    """
    raw_rows = int(profile["row_count"].iloc[0]) if len(profile) else 0
    run = _Run(spec, validator or Validator(), as_of, baseline, sample_rows)
    table = TableOutcome(spec.source, spec.name, raw_rows, list(run.outcomes.values()))
    # 1. schema (block): nothing else is meaningful when the columns are wrong
    schema_ok = run.schema(sample, raw_rows, offenders)
    # 2. table level on exact aggregates (emptiness, volume, freshness)
    run.table_level(profile)
    # 3. rows, chunk by chunk
    run.rows(table, chunks, schema_ok)
    # 4. policies
    _apply_policies(spec, run.outcomes, table)
    table.gx_result = _suite_result(spec, run.outcomes, run.gx_results)
    return table


class _Run:
    """One table's validation: the outcome of each expectation, folded over its batches."""

    def __init__(
        self, spec: TableSpec, validator: Validator, as_of: datetime, baseline: int | None,
        sample_rows: int,
    ) -> None:
        self.spec, self.validator, self.as_of = spec, validator, as_of
        self.baseline, self.sample_rows = baseline, sample_rows
        self.outcomes = {e.id: _outcome(e) for e in spec.expectations}
        self.gx_results: dict[str, Any] = {}

    def level(self, level: str) -> list[Expectation]:
        return [e for e in self.spec.expectations if e.level == level]

    def run(
        self, frame: pd.DataFrame, expectations: list[Expectation], chunk: bool = False
    ) -> list[Expectation]:
        return _run(
            self.validator.batch(frame), expectations, self.outcomes, self.gx_results,
            self.as_of, self.baseline, self.sample_rows, chunk=frame if chunk else None,
        )

    def schema(
        self, sample: pd.DataFrame, raw_rows: int, offenders: Offenders | None
    ) -> bool:
        """Column set and types on the sample; whether they hold."""
        schema = self.level("schema")
        self.run(sample, schema)
        columns_outcome = self.outcomes[f"{self.spec.name}.columns"]
        if not columns_outcome.success:
            got = [str(c) for c in sample.columns]
            missing = [c for c in self.spec.columns if c not in got]
            extra = [c for c in got if c not in self.spec.columns]
            columns_outcome.observed = got
            columns_outcome.note = "; ".join(
                part for part in (
                    f"missing: {', '.join(missing)}" if missing else "",
                    f"unexpected: {', '.join(extra)}" if extra else "",
                ) if part
            )
        for e in schema:
            if e.kind == "type" and not self.outcomes[e.id].success and e.columns[0] in sample.columns:
                _name_type_offenders(self.outcomes[e.id], e, raw_rows, offenders, self.sample_rows)
        return all(self.outcomes[e.id].success for e in schema)

    def table_level(self, profile: pd.DataFrame) -> None:
        """Emptiness, volume and freshness on the profile's one row."""
        usable = []
        for e in self.level("table"):
            if e.kind == "freshness" and max_column(e.columns[0]) not in profile.columns:
                _skip(self.outcomes[e.id], "schema mismatch")
            elif e.kind == "volume" and volume_band(self.baseline, e.params) is None:
                _skip(self.outcomes[e.id], "no baseline yet (no published run)")
            else:
                usable.append(e)
        self.run(profile, usable)
        for e in usable:
            outcome = self.outcomes[e.id]
            column = "row_count" if e.kind in ("volume", "not_empty") else max_column(e.columns[0])
            outcome.observed = profile[column].iloc[0] if len(profile) else None
            outcome.element_count = 1
            if e.kind == "volume":
                low, high = volume_band(self.baseline, e.params) or (None, None)
                outcome.note = f"baseline {self.baseline} rows, allowed {low} to {high}"
            if e.kind == "freshness":
                outcome.note = f"as-of {self.as_of.isoformat()}, max age {e.params['max_age_text']}"

    def rows(
        self, table: TableOutcome, chunks: Callable[[], Iterable[pd.DataFrame]], schema_ok: bool
    ) -> None:
        """Row checks chunk by chunk; the offending rows of quarantine checks under their limit."""
        row_level = self.level("row")
        if not schema_ok:
            for e in row_level:
                _skip(self.outcomes[e.id], "schema mismatch")
            return
        if not table.raw_rows or not row_level:
            return
        limits = {
            e.id: e.max_quarantine_percent / 100 * table.raw_rows
            for e in row_level if e.policy == "quarantine"
        }
        for chunk in chunks():
            table.chunks += 1
            for e in self.run(chunk, row_level, chunk=True):
                if e.policy == "quarantine" and self.outcomes[e.id].unexpected_count <= limits[e.id]:
                    _collect(self.validator, chunk, e, self.as_of, table.quarantine)
        for e in row_level:
            outcome = self.outcomes[e.id]
            outcome.unexpected_percent = 100.0 * outcome.unexpected_count / table.raw_rows


def _apply_policies(
    spec: TableSpec, outcomes: Mapping[str, ExpectationOutcome], table: TableOutcome
) -> None:
    """Each failed expectation's action from its policy; what is set aside in the end."""
    for e in spec.expectations:
        outcome = outcomes[e.id]
        if outcome.action == "skipped" or outcome.success:
            continue
        if e.policy == "quarantine" and e.level == "row":
            if outcome.unexpected_percent > e.max_quarantine_percent:
                outcome.action = "blocked"
                outcome.note = (
                    f"{outcome.unexpected_percent:.2f}% of rows fail, over the quarantine "
                    f"limit of {e.max_quarantine_percent:g}%: blocked"
                )
            else:
                outcome.action = "quarantined"
        elif e.policy == "warn":
            outcome.action = "warned"
        else:
            outcome.action = "blocked"
    if any(o.action == "blocked" for o in outcomes.values()):
        table.quarantine.clear()  # nothing is set aside when the run stops
    else:
        # rows of an escalated expectation are not kept apart partially
        table.quarantine = {
            row: reasons for row, reasons in table.quarantine.items()
            if any(outcomes[eid].action == "quarantined" for eid, _ in reasons)
        }


def _name_type_offenders(
    outcome: ExpectationOutcome, e: Expectation, raw_rows: int,
    offenders: Offenders | None, sample_rows: int,
) -> None:
    """A failed type check names the rows that break it (GX only saw the column's dtype)."""
    declared = e.params["type"]
    outcome.note = f"column type {outcome.observed}, declared {declared}"
    if offenders is None:
        return
    count, rows = offenders(e.columns[0], declared, sample_rows)
    outcome.element_count = raw_rows
    outcome.unexpected_count = count
    outcome.unexpected_percent = 100.0 * count / raw_rows if raw_rows else 0.0
    outcome.samples = [
        {str(k): jsonable(v) for k, v in record.items()}
        for record in rows.to_dict(orient="records")
    ]
    if count:
        outcome.note += f"; {count:,} value(s) are not {declared}"
    else:
        outcome.note += f"; every value converts to {declared}"


def _outcome(e: Expectation) -> ExpectationOutcome:
    return ExpectationOutcome(
        id=e.id, table=e.table, kind=e.kind, level=e.level, policy=e.policy,
        description=e.description, location=str(e.location),
    )


def _skip(outcome: ExpectationOutcome, why: str) -> None:
    outcome.action = "skipped"
    outcome.success = False
    outcome.note = why


def _run(
    batch: Any,
    expectations: list[Expectation],
    outcomes: Mapping[str, ExpectationOutcome],
    gx_results: dict[str, Any],
    as_of: datetime,
    baseline: int | None,
    sample_rows: int,
    chunk: pd.DataFrame | None = None,
) -> list[Expectation]:
    """Validate `expectations` on one batch; fold counts into `outcomes`; return the failed."""
    import great_expectations as gx

    compiled = []
    for e in expectations:
        gx_expectation = compile_expectation(e, as_of=as_of, baseline=baseline)
        if gx_expectation is not None:
            compiled.append(gx_expectation)
    if not compiled:
        return []
    suite = gx.ExpectationSuite(name="chunk", expectations=compiled)
    result = batch.validate(suite, result_format=_SUMMARY)
    by_id = {e.id: e for e in expectations}
    failed: list[Expectation] = []
    for r in result.results:
        kpi_id = r.expectation_config.meta["kpi_id"]
        e, outcome = by_id[kpi_id], outcomes[kpi_id]
        gx_results.setdefault(kpi_id, r)
        info = r.exception_info or {}
        raised = info.get("raised_exception") if isinstance(info, Mapping) else False
        details = r.result or {}
        outcome.element_count += int(details.get("element_count") or 0)
        if raised:
            outcome.success = False
            outcome.note = f"error: {info.get('exception_message')}"
            failed.append(e)
            continue
        if "observed_value" in details and outcome.observed is None:
            outcome.observed = details["observed_value"]
        if not r.success:
            outcome.success = False
            count = int(details.get("unexpected_count") or 0)
            outcome.unexpected_count += count
            if chunk is not None and len(outcome.samples) < sample_rows:
                outcome.samples.extend(
                    _samples(chunk, details, sample_rows - len(outcome.samples))
                )
            failed.append(e)
    return failed


def _row_id(item: Any) -> int | None:
    if isinstance(item, Mapping):
        item = item.get(ROW)
    try:
        return int(item)
    except (TypeError, ValueError):
        return None


def _samples(chunk: pd.DataFrame, details: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    rows = [r for r in (_row_id(i) for i in details.get("partial_unexpected_index_list") or [])
            if r is not None]
    out = []
    for row in rows[:n]:
        if row in chunk.index:
            record = chunk.loc[row]
            if isinstance(record, pd.DataFrame):
                record = record.iloc[0]
            out.append({str(k): jsonable(v) for k, v in record.items()})
    return out


def _collect(
    validator: Validator,
    chunk: pd.DataFrame,
    e: Expectation,
    as_of: datetime,
    quarantine: dict[int, list[tuple[str, str]]],
) -> None:
    """Ask GX for every offending row of one failed quarantine expectation in this chunk."""
    gx_expectation = compile_expectation(e, as_of=as_of)
    if gx_expectation is None:
        return
    result = validator.batch(chunk).validate(gx_expectation, result_format=_COMPLETE)
    shown = [frame_column(c) for c in e.columns] or []
    if e.kind in ("references", "cascade"):
        shown = [e.params["column"]]
    for item in (result.result or {}).get("unexpected_index_list") or []:
        row = _row_id(item)
        if row is None:
            continue
        values = ", ".join(
            f"{c}={jsonable(chunk.at[row, c])!r}" for c in shown if c in chunk.columns
        )
        quarantine.setdefault(row, []).append((e.id, f"{e.description} (got {values})"))


def _suite_result(
    spec: TableSpec, outcomes: Mapping[str, ExpectationOutcome], gx_results: Mapping[str, Any]
) -> Any:
    """One GX suite validation result for the table, counts summed over its chunks."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )

    results = []
    for e in spec.expectations:
        outcome = outcomes[e.id]
        first = gx_results.get(e.id)
        if first is None:
            continue
        result = dict(first.result or {})
        if e.level == "row":
            result.update(
                element_count=outcome.element_count,
                unexpected_count=outcome.unexpected_count,
                unexpected_percent=outcome.unexpected_percent,
                partial_unexpected_list=[s.get(frame_column(e.columns[0])) for s in outcome.samples]
                if e.columns else [],
            )
        results.append(
            ExpectationValidationResult(
                success=outcome.success,
                expectation_config=first.expectation_config,
                result=result,
                exception_info=first.exception_info,
                meta={"policy": e.policy, "action": outcome.action, "note": outcome.note},
            )
        )
    evaluated = len(results)
    successful = sum(1 for r in results if r.success)
    return ExpectationSuiteValidationResult(
        success=all(r.success for r in results),
        results=results,
        suite_name=f"raw.{spec.name}",
        statistics={
            "evaluated_expectations": evaluated,
            "successful_expectations": successful,
            "unsuccessful_expectations": evaluated - successful,
            "success_percent": 100.0 * successful / evaluated if evaluated else None,
        },
        meta={"table": spec.name, "source": spec.source},
    )
