"""The gate's run on the warehouse: validate every guarded source table where it is,
note the unguarded ones, and write the validated input of the dbt build.

Reads go through `quality.read`; `quality.gate` validates the frames (pure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial

import duckdb
import pandas as pd
from sqlglot import exp

from pipeline import publish
from pipeline.errors import PipelineError
from pipeline.quality import read
from pipeline.quality.gate import GateResult, TableOutcome, Unguarded, Validator, validate_table
from pipeline.quality.inputs import TableInput, compare_with_published, table_input, time_column
from pipeline.quality.sources import INPUT_VAR, SourceTable, guarded
from pipeline.quality.spec import TableSpec
from pipeline.quality.suite import max_column
from pipeline.warehouse.names import Relation
from pipeline.warehouse.sql import fill

DEFAULT_CHUNK_ROWS = 500_000
TableStarted = Callable[[str], None]  # the table the gate starts on
RowsDone = Callable[[str, int, int], None]  # (table, rows validated, rows in all)


class GateError(PipelineError):
    """The gate could not account for every raw row, or a raw table is missing."""


def run_gate(
    con: duckdb.DuckDBPyConnection,
    specs: Sequence[TableSpec],
    tables: Sequence[SourceTable],
    *,
    run_id: str,
    as_of: datetime,
    baselines: Mapping[str, int],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_table: TableStarted | None = None,
    on_rows: RowsDone | None = None,
) -> GateResult:
    """Validate every guarded source table (parents first), where dbt's source says it is;
    note every source table without expectations. Reads only; leaves `__gate_quarantine`.

    `__gate_quarantine` (a temporary table of this connection) lists the quarantined
    rowids per table, so children's foreign keys are checked against passed rows only.
    Raises quality.spec.SpecError for an expectations table that is no dbt source.
    """
    found, unguarded = guarded(specs, tables)
    relations = {name: t.relation for name, t in found.items()}
    con.execute(read.sql(fill(
        "CREATE OR REPLACE TEMP TABLE $q (table_name VARCHAR, row BIGINT)",
        q=exp.to_table(read.QUARANTINE),
    )))
    validator = Validator()
    outcomes: list[TableOutcome] = []
    inputs: list[TableInput] = []
    schema_blocked: set[str] = set()
    for spec in specs:
        if on_table is not None:
            on_table(spec.name)
        outcome, table_inputs = _gate_table(
            con, spec, found[spec.name], relations, schema_blocked, validator,
            as_of=as_of, baseline=baselines.get(spec.name), chunk_rows=chunk_rows, on_rows=on_rows,
        )
        inputs.append(table_inputs)
        outcomes.append(outcome)
    notes = []
    for table in unguarded:
        note, fingerprint = _unguarded(con, table)
        notes.append(note)
        if fingerprint is not None:
            inputs.append(fingerprint)
    return GateResult(run_id=run_id, as_of=as_of, tables=outcomes, unguarded=notes,
                      inputs=compare_with_published(con, inputs))


def _gate_table(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    source: SourceTable,
    relations: Mapping[str, Relation],
    schema_blocked: set[str],
    validator: Validator,
    *,
    as_of: datetime,
    baseline: int | None,
    chunk_rows: int,
    on_rows: RowsDone | None,
) -> tuple[TableOutcome, TableInput]:
    """One guarded table: validated, its quarantined rows noted in `__gate_quarantine`."""
    relation = source.relation
    try:
        columns = list(read.describe(con, relation))
    except duckdb.CatalogException:
        raise GateError(
            f"source table {spec.source}.{spec.name} does not exist in the warehouse: "
            f"{relation} (dbt source at {source.location}, expectations at {spec.location}); "
            "load it first (dbt seed, --raw-parquet) or correct the source's schema"
        ) from None
    usable_refs = [
        r.column for r in spec.references if r.table not in schema_blocked and r.column in columns
    ]
    sample = read.read_sample(con, relation)
    profile = read.read_profile(con, spec, relation, columns)
    raw_rows = int(profile["row_count"].iloc[0])
    column = time_column(spec, columns)

    def chunks() -> Iterator[pd.DataFrame]:
        done = 0
        for chunk in read.read_chunks(con, spec, relations, raw_rows, chunk_rows, usable_refs):
            yield chunk
            done += len(chunk)
            if on_rows is not None:
                on_rows(spec.name, done, raw_rows)

    outcome = validate_table(
        spec, sample=sample, profile=profile, chunks=chunks, as_of=as_of,
        baseline=baseline, validator=validator,
        offenders=partial(read.type_offenders, con, relation),
    )
    for e in outcome.expectations:
        if e.kind in ("references", "cascade") and e.table == spec.name:
            ref = spec.expectation(e.id).params["column"]
            if ref not in usable_refs and e.action != "skipped":
                e.action, e.success, e.note = "skipped", False, "parent table failed its schema checks"
    if not all(e.success for e in outcome.expectations if e.level == "schema"):
        schema_blocked.add(spec.name)
    if outcome.quarantine and not source.gated:
        _block_in_place(outcome, source)
    if outcome.quarantine:
        rows = pd.DataFrame({"table_name": spec.name, "row": sorted(outcome.quarantine)})
        con.register("__gate_rows", rows)
        con.execute(read.sql(fill("INSERT INTO $q SELECT table_name, row FROM __gate_rows",
                                           q=exp.to_table(read.QUARANTINE))))
        con.unregister("__gate_rows")
    return outcome, table_input(spec.source, spec.name, profile, column)


def _block_in_place(outcome: TableOutcome, source: SourceTable) -> None:
    """dbt reads this source where it is, not the gate's input: rows cannot be set aside,
    so what would quarantine them blocks."""
    for e in outcome.expectations:
        if e.action == "quarantined":
            e.action = "blocked"
            e.note = (
                f"dbt reads {source.relation} in place, so rows cannot be set aside: blocked "
                f"(a source whose schema is {{{{ var('{INPUT_VAR}', '{source.relation.schema}') }}}} "
                "reads the gate's input, without them)"
            )
    outcome.quarantine.clear()


def _unguarded(
    con: duckdb.DuckDBPyConnection, table: SourceTable
) -> tuple[Unguarded, TableInput | None]:
    """A source table without expectations: its row count, newest timestamp and digest."""
    relation = table.relation
    try:
        types = read.describe(con, relation)
    except duckdb.CatalogException:
        return Unguarded(table.source, table.table, str(relation), str(table.location), None), None
    column = next((c for c, t in types.items() if t.upper() in ("DATE", "TIMESTAMP")), None)
    newest = {max_column(column): read.column(column, "__t")} if column else {}
    profile = read.digest_profile(con, relation, newest)
    fingerprint = table_input(table.source, table.table, profile, column)
    return (
        Unguarded(table.source, table.table, str(relation), str(table.location), fingerprint.rows),
        fingerprint,
    )


def write_gate_outputs(
    con: duckdb.DuckDBPyConnection,
    gate: GateResult,
    tables: Sequence[SourceTable],
    run_id: str,
    *,
    pause: Callable[[str], None] = lambda point: None,
) -> None:
    """In one transaction: the validated input of every source table, quarantine rows, counts.

    For a source that reads the gate's input (schema following var('raw_schema')), the
    input is a view of its relation when the gate set nothing aside (no copy of a large
    table; builds hold the lock, so it cannot change under a run), else a copy without
    the quarantined rows. raw rows = passed + quarantined is checked per table; a
    mismatch aborts the run. `pause("gate")` is the test hook inside the transaction.
    """
    target = publish.input_schema(run_id)
    by_table = {t.table: t for t in gate.tables}
    present = {(u.source, u.table) for u in gate.unguarded if u.rows is not None}
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(read.sql(fill("CREATE SCHEMA $s", s=exp.to_identifier(target, quoted=True))))
        for table in tables:
            outcome = by_table.get(table.table)
            if outcome is None and (table.source, table.table) not in present:
                continue  # an unguarded table that does not exist: reported by the gate
            _write_input(con, table, outcome, target, run_id, now)
        pause("gate")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _write_input(
    con: duckdb.DuckDBPyConnection, table: SourceTable, outcome: TableOutcome | None,
    target: str, run_id: str, now: datetime,
) -> None:
    raw = table.relation.node("t")
    copy = Relation(target, table.relation.name).node()
    quarantined = outcome.quarantined_rows if outcome is not None else 0
    if table.gated and quarantined:
        con.execute(read.sql(fill(
            "CREATE TABLE $copy AS SELECT * FROM $raw WHERE t.rowid NOT IN "
            "(SELECT row FROM $q WHERE table_name = $name)",
            copy=copy, raw=raw, name=exp.Literal.string(table.table), q=exp.to_table(read.QUARANTINE),
        )))
    elif table.gated:
        con.execute(read.sql(fill("CREATE VIEW $copy AS SELECT * FROM $raw",
                                           copy=copy, raw=raw)))
    if outcome is not None and quarantined:
        records = pd.DataFrame([
            {"row": row, "expectation": eid, "reason": reason}
            for row, reasons in sorted(outcome.quarantine.items()) for eid, reason in reasons
        ])
        con.register("__gate_records", records)
        con.execute(
            read.sql(fill(
                "INSERT INTO $q SELECT ?, ?, ?, q.row, q.expectation, q.reason, to_json(t), ? "
                "FROM $raw JOIN __gate_records AS q ON t.rowid = q.row",
                q=publish.QUARANTINE_TABLE.node(), raw=raw,
            )),
            [run_id, table.source, table.table, now],
        )
        con.unregister("__gate_records")
    raw_rows = read.count_rows(con, table.relation)
    passed = read.count_rows(con, Relation(target, table.relation.name)) if table.gated else raw_rows - quarantined
    if raw_rows != passed + quarantined:
        raise GateError(
            f"{table.table}: {raw_rows} raw rows but {passed} passed + {quarantined} quarantined"
        )
    con.execute(
        read.sql(fill("INSERT INTO $t VALUES (?, ?, ?, ?, ?)",
                               t=publish.COUNTS_TABLE.node())),
        [run_id, table.table, raw_rows, passed, quarantined],
    )
