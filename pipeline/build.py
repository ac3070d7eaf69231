"""One build: seed -> gate -> dbt build into the run schema -> audit -> publish.

Each stage is a plain function; `build` chains them under the warehouse lock and
returns a `BuildReport` (`pipeline/report.py`). The published marts (`analytics`) change
only in the last stage, in one transaction; any failure or kill before it leaves them as
they were. Progress goes out as typed events; the test hooks at the stages are in
`pipeline/progress.py`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from pipeline import publish
from pipeline.errors import PipelineError
from pipeline.progress import Detail, Progress, Stage, on_wait, pause, start_stage
from pipeline.project import DbtError, NodeEvent, Project
from pipeline.publish import quote_ident as _q
from pipeline.publish import quote_literal as _literal
from pipeline.quality.gate import GateResult, TableOutcome, Validator, validate_table
from pipeline.quality.inputs import DIGEST, TableInput, compare_with_published, table_input
from pipeline.quality.spec import TableSpec, load_specs
from pipeline.quality.suite import ROW, cascade_column, max_column, orphan_column, ref_column
from pipeline.quality.values import converts, type_offenders
from pipeline.report import BuildReport, write_reports

DEFAULT_CHUNK_ROWS = 500_000
SAMPLE_ROWS = 1_000


class GateError(PipelineError):
    """The gate could not account for every raw row, or a raw table is missing."""


# --- as-of ----------------------------------------------------------------------------


def resolve_as_of(value: str | date | datetime | None = None) -> datetime:
    """The reference time of freshness and not-in-the-future checks (naive UTC).

    `value`, else env KPI_AS_OF, else now. A date alone (2026-11-15) means the end of
    that day, so that the whole day's data is neither "in the future" nor stale.
    """
    if value is None:
        value = os.environ.get("KPI_AS_OF") or None
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), dtime()) - timedelta(microseconds=1)
    text = value.strip()
    if len(text) == 10:
        return resolve_as_of(date.fromisoformat(text))
    return resolve_as_of(datetime.fromisoformat(text))


# --- reading raw tables (the gate's input) ------------------------------------------


def raw_tables(con: duckdb.DuckDBPyConnection, schema: str = publish.RAW_SCHEMA) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY 1",
        [schema],
    ).fetchall()
    return [str(r[0]) for r in rows]


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return [str(r[0]) for r in rows]


def read_sample(con: duckdb.DuckDBPyConnection, table: str, rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    return con.execute(f"SELECT * FROM {publish.RAW_SCHEMA}.{_q(table)} LIMIT {int(rows)}").df()


def read_profile(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, columns: Sequence[str]
) -> pd.DataFrame:
    """One row of exact aggregates: row_count, the max of every freshness column, and
    the rows' digest (`quality.inputs`)."""
    digest = f"sum(hash(__t)::HUGEINT)::VARCHAR AS {DIGEST}"
    parts = ["count(*) AS row_count", digest]
    for e in spec.expectations:
        col = e.columns[0] if e.columns else ""
        if e.kind == "freshness" and col in columns:
            parts.append(f"max({_q(col)})::TIMESTAMP AS {_q(max_column(col))}")
    try:
        return con.execute(
            f"SELECT {', '.join(dict.fromkeys(parts))} FROM {publish.RAW_SCHEMA}.{_q(spec.name)} __t"
        ).df()
    except duckdb.Error:  # a retyped freshness column: the schema checks report it
        return con.execute(
            f"SELECT count(*) AS row_count, {digest} FROM {publish.RAW_SCHEMA}.{_q(spec.name)} __t"
        ).df()


def derived_query(spec: TableSpec, usable_refs: Sequence[str]) -> tuple[str, list[str]] | None:
    """SQL of the derived columns of every row (`__row` and the columns), or None.

    A foreign key is an orphan when no parent row has it, a cascade when every parent
    row holding it was quarantined; `__ref__` columns carry a parent's column for
    cross-table order checks. Only rows with something to say are kept, unless the
    table needs parent columns on every row.
    """
    select = [f"t.rowid AS {ROW}"]
    columns: list[str] = []
    joins = []
    anomalies = []
    cross = [c for e in spec.expectations if e.kind == "in_order" for c in e.columns if "." in c]
    for i, ref in enumerate(spec.references):
        if ref.column not in usable_refs:
            continue
        extra = sorted({c.split(".", 1)[1] for c in cross if c.split(".", 1)[0] == ref.table})
        where = next(
            (e.params.get("where") for e in spec.expectations
             if e.kind == "references" and e.params["column"] == ref.column),
            None,
        )
        cols = "".join(f", any_value({_q(c)}) FILTER (WHERE ok) AS {_q(c)}" for c in extra)
        inner = "".join(f", {_q(c)}" for c in extra)
        parent = (
            f"SELECT k, bool_or(ok) AS passed{cols} FROM ("
            f"SELECT {_q(ref.to)} AS k, p.rowid NOT IN (SELECT row FROM __gate_quarantine "
            f"WHERE table_name = '{ref.table}') AS ok{inner} "
            f"FROM {publish.RAW_SCHEMA}.{_q(ref.table)} p "
            f"{'WHERE (' + where + ')' if where else ''}) GROUP BY k"
        )
        alias = f"p{i}"
        joins.append(f"LEFT JOIN ({parent}) {alias} ON t.{_q(ref.column)} = {alias}.k")
        orphan, cascade = orphan_column(ref.column), cascade_column(ref.column)
        select.append(
            f"CASE WHEN t.{_q(ref.column)} IS NOT NULL AND {alias}.k IS NULL "
            f"THEN t.{_q(ref.column)} END AS {_q(orphan)}"
        )
        select.append(
            f"CASE WHEN {alias}.k IS NOT NULL AND NOT {alias}.passed "
            f"THEN t.{_q(ref.column)} END AS {_q(cascade)}"
        )
        columns += [orphan, cascade]
        anomalies += [f"{_q(orphan)} IS NOT NULL", f"{_q(cascade)} IS NOT NULL"]
        for c in extra:
            select.append(f"{alias}.{_q(c)} AS {_q(ref_column(ref.table + '.' + c))}")
            columns.append(ref_column(ref.table + "." + c))
    if not columns:
        return None
    query = (
        f"SELECT {', '.join(select)} FROM {publish.RAW_SCHEMA}.{_q(spec.name)} AS t "
        + " ".join(joins)
    )
    if len(columns) == len(anomalies):
        query = f"SELECT * FROM ({query}) WHERE {' OR '.join(anomalies)}"
    return query, columns


def read_chunks(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    raw_rows: int,
    chunk_rows: int,
    usable_refs: Sequence[str],
) -> Iterator[pd.DataFrame]:
    """The table's rows with their derived columns, at most about `chunk_rows` at a time.

    Chunks are rowid ranges, read cheaply; rows whose key occurs more than once are left
    out of them and come last, partitioned by the key's hash, so rows sharing a key are
    always in the same chunk and uniqueness checked per chunk is exact. DuckDB computes
    the table-wide facts (duplicated keys, derived columns) once, into temporary tables.
    """
    t = f"{publish.RAW_SCHEMA}.{_q(spec.name)}"
    chunk_rows = max(1, chunk_rows)
    derived = derived_query(spec, usable_refs)
    join, extra = False, ""
    if derived is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE __gate_derived AS {derived[0]}")
        row = con.execute("SELECT count(*) FROM __gate_derived").fetchone()
        join = bool(row and row[0])
        extra = "".join(
            f", d.{_q(c)}" if join else f", NULL AS {_q(c)}" for c in derived[1]
        )
    duplicated = _duplicated_rows(con, spec, chunk_rows)

    def read(where: str, derived_where: str) -> pd.DataFrame | None:
        joined = (
            f" LEFT JOIN (SELECT * FROM __gate_derived WHERE {derived_where}) d "
            f"ON d.{ROW} = t.rowid" if join else ""
        )
        frame = _frame(con.execute(
            f"SELECT t.rowid AS {ROW}, t.*{extra} FROM {t} AS t{joined} WHERE {where}"
        ))
        return frame.set_index(ROW, drop=False) if len(frame) else None

    unique = " AND t.rowid NOT IN (SELECT row FROM __gate_duplicated)" if duplicated else ""
    starts = range(0, max(1, raw_rows), chunk_rows)
    for start in starts:
        last = start == starts[-1]  # open-ended: rowids past the row count too
        bounds = f"{{}} >= {start}" + ("" if last else f" AND {{}} < {start + chunk_rows}")
        frame = read(bounds.format("t.rowid", "t.rowid") + unique, bounds.format(ROW, ROW))
        if frame is not None:
            yield frame
    for part in range(duplicated):
        rows = f"(SELECT row FROM __gate_duplicated WHERE part = {part})"
        frame = read(f"t.rowid IN {rows}", f"{ROW} IN {rows}")
        if frame is not None:
            yield frame


def _frame(result: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """A query's rows as pandas, through Arrow (twice as fast as `.df()` on text);
    integer columns stay integers where they hold NULLs, dates are timestamps as in `.df()`."""
    return result.to_arrow_table().to_pandas(
        types_mapper=_NULLABLE_INTS.get, date_as_object=False
    )


_NULLABLE_INTS = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(),
}


def _duplicated_rows(con: duckdb.DuckDBPyConnection, spec: TableSpec, chunk_rows: int) -> int:
    """`__gate_duplicated` (row, part): the rows whose key is not unique, partitioned by
    the key's hash into parts of about `chunk_rows`; returns the number of parts."""
    t = f"{publish.RAW_SCHEMA}.{_q(spec.name)}"
    key = ", ".join(_q(c) for c in spec.key)
    parts = 0
    if key:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE __gate_duplicated_keys AS SELECT {key}, count(*) AS n "
            f"FROM {t} GROUP BY ALL HAVING count(*) > 1"
        )
        row = con.execute("SELECT coalesce(sum(n), 0) FROM __gate_duplicated_keys").fetchone()
        parts = math.ceil(int(row[0] if row else 0) / chunk_rows)
    if not parts:
        con.execute("CREATE OR REPLACE TEMP TABLE __gate_duplicated (row BIGINT, part UBIGINT)")
        return 0
    match = " AND ".join(f"d.{_q(c)} IS NOT DISTINCT FROM t.{_q(c)}" for c in spec.key)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __gate_duplicated AS "
        f"SELECT t.rowid AS row, hash({', '.join('t.' + _q(c) for c in spec.key)}) % {parts} "
        f"AS part FROM {t} AS t WHERE EXISTS (SELECT 1 FROM __gate_duplicated_keys d WHERE {match})"
    )
    return parts


# --- stages ---------------------------------------------------------------------------


def seed(project: Project, progress: Progress | None = None) -> str | None:
    """Load seeds/ into the `raw` schema (replacing the tables) with `dbt seed`.

    When dbt cannot load a CSV with its declared column types (a retyped column: text
    in a DECIMAL column), the CSVs are loaded by `load_raw_csvs` instead, keeping such
    columns as text, so that the gate can say which column drifted and show sample
    values. Returns dbt's error in that case (None when dbt seed succeeded). A table
    dbt loaded by reading values its own way (it drops a timestamp's time-zone offset)
    is loaded again by `load_raw_csvs`, so that the gate sees those values as written.
    """
    start_stage("seed", progress)
    try:
        project.dbt(["seed", "--full-refresh"])
    except DbtError as error:
        con = publish.connect(project.warehouse)
        try:
            load_raw_csvs(con, project.seeds_dir)
        finally:
            con.close()
        return str(error)
    con = publish.connect(project.warehouse)
    try:
        load_raw_csvs(con, project.seeds_dir, misread_only=True)
    finally:
        con.close()
    return None


def load_parquet(
    project: Project, folder: Path, specs: Sequence[TableSpec], progress: Progress | None = None
) -> None:
    """Load `raw` from <folder>/<source>/<table>.parquet (KPI_RAW_PARQUET), replacing the
    tables: the data that does not fit in seeds. Every table the expectations declare
    must have its file."""
    start_stage("load", progress)
    missing = [
        f"{folder / s.source / s.name}.parquet (declared at {s.location})"
        for s in specs if not (folder / s.source / f"{s.name}.parquet").is_file()
    ]
    if missing:
        raise GateError("no Parquet file for raw table(s): " + "; ".join(missing))
    con = publish.connect(project.warehouse)
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {publish.RAW_SCHEMA}")
        for spec in specs:
            if progress is not None:
                progress(Stage("load", spec.name))
            path = folder / spec.source / f"{spec.name}.parquet"
            con.execute(
                f"CREATE OR REPLACE TABLE {publish.RAW_SCHEMA}.{_q(spec.name)} AS "
                f"SELECT * FROM read_parquet({_literal(str(path))})"
            )
    finally:
        con.close()


def _seed_noting_errors(project: Project, report: BuildReport, progress: Progress | None) -> None:
    seed_error = seed(project, progress)
    if seed_error:
        report.notes.append(
            "dbt seed could not load the CSVs with their declared types; they "
            f"were loaded with text columns where needed ({seed_error[:300]})"
        )


def seed_column_types(seeds_dir: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """seed name -> (relation name, column_types), from the YAML files of seeds/."""
    from ruamel.yaml import YAML

    out: dict[str, tuple[str, dict[str, str]]] = {}
    for path in sorted(seeds_dir.rglob("*.yml")):
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("seeds") or []:
            config = entry.get("config") or {}
            types = config.get("column_types") or {}
            name = str(entry["name"])
            out[name] = (str(config.get("alias") or name), {str(k): str(v) for k, v in types.items()})
    return out


def load_raw_csvs(
    con: duckdb.DuckDBPyConnection, seeds_dir: Path, tables: Sequence[str] | None = None,
    *, misread_only: bool = False,
) -> list[str]:
    """Load the seed CSVs (all, or those of `tables`) into `raw`, replacing the tables;
    with `misread_only`, only those holding a value that does not convert.

    A column gets its declared `column_types` type when every value converts exactly
    (`quality.values.converts`: no rounding, no time-zone offset), else stays text
    (VARCHAR), so that the gate reports the column and the rows that break it.
    """
    types = seed_column_types(seeds_dir)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {publish.RAW_SCHEMA}")
    loaded = []
    for path in sorted(seeds_dir.rglob("*.csv")):
        table, declared_types = types.get(path.stem, (path.stem, {}))
        if tables is not None and table not in tables:
            continue
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __seed_text AS SELECT * FROM "
            f"read_csv({_literal(str(path))}, all_varchar = true, header = true)"
        )
        columns = [str(r[0]) for r in con.execute("DESCRIBE __seed_text").fetchall()]
        typed = [c for c in columns if c in declared_types]
        fits: dict[str, bool] = {}
        if typed:
            row = con.execute(
                "SELECT " + ", ".join(
                    f"count(*) FILTER ({_q(c)} IS NOT NULL AND "
                    f"NOT {converts(_q(c), declared_types[c])}) = 0"
                    for c in typed
                ) + " FROM __seed_text"
            ).fetchone()
            fits = dict(zip(typed, row or (), strict=True))
        if misread_only and all(fits.values()):
            continue
        select = [
            f"CAST({_q(c)} AS {declared_types[c]}) AS {_q(c)}" if fits.get(c) else _q(c)
            for c in columns
        ]
        con.execute(
            f"CREATE OR REPLACE TABLE {publish.RAW_SCHEMA}.{_q(table)} AS "
            f"SELECT {', '.join(select)} FROM __seed_text"
        )
        loaded.append(table)
    con.execute("DROP TABLE IF EXISTS __seed_text")
    return loaded


def run_gate(
    con: duckdb.DuckDBPyConnection,
    specs: Sequence[TableSpec],
    *,
    run_id: str,
    as_of: datetime,
    baselines: Mapping[str, int],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
) -> GateResult:
    """Validate every raw table (parents first). Reads only; leaves `__gate_quarantine`.

    `__gate_quarantine` (a temporary table of this connection) lists the quarantined
    rowids per table, so children's foreign keys are checked against passed rows only.
    """
    start_stage("gate", progress)
    con.execute("CREATE OR REPLACE TEMP TABLE __gate_quarantine (table_name VARCHAR, row BIGINT)")
    present = set(raw_tables(con))
    validator = Validator()
    outcomes: list[TableOutcome] = []
    inputs: list[TableInput] = []
    schema_blocked: set[str] = set()
    for spec in specs:
        if progress is not None:
            progress(Stage("gate", spec.name))
        if spec.name not in present:
            raise GateError(f"raw table {publish.RAW_SCHEMA}.{spec.name} does not exist "
                            f"(declared at {spec.location}); did `dbt seed` load it?")
        columns = _columns(con, publish.RAW_SCHEMA, spec.name)
        usable_refs = [
            r.column for r in spec.references
            if r.table not in schema_blocked and r.column in columns
        ]
        sample = read_sample(con, spec.name)
        profile = read_profile(con, spec, columns)
        raw_rows = int(profile["row_count"].iloc[0])
        inputs.append(table_input(spec, profile, columns))

        def chunks(spec: TableSpec = spec, raw_rows: int = raw_rows,
                   usable: list[str] = usable_refs) -> Iterator[pd.DataFrame]:
            done = 0
            for chunk in read_chunks(con, spec, raw_rows, chunk_rows, usable):
                yield chunk
                done += len(chunk)
                if progress is not None:
                    progress(Detail(Stage("gate", spec.name), f"{done:,} of {raw_rows:,} rows"))

        outcome = validate_table(
            spec, sample=sample, profile=profile, chunks=chunks, as_of=as_of,
            baseline=baselines.get(spec.name), validator=validator,
            offenders=partial(type_offenders, con, spec.name),
        )
        for e in outcome.expectations:
            if e.kind in ("references", "cascade") and e.table == spec.name:
                column = spec.expectation(e.id).params["column"]
                if column not in usable_refs and e.action != "skipped":
                    e.action, e.success, e.note = "skipped", False, "parent table failed its schema checks"
        if not all(e.success for e in outcome.expectations if e.level == "schema"):
            schema_blocked.add(spec.name)
        if outcome.quarantine:
            rows = pd.DataFrame({"table_name": spec.name, "row": sorted(outcome.quarantine)})
            con.register("__gate_rows", rows)
            con.execute("INSERT INTO __gate_quarantine SELECT table_name, row FROM __gate_rows")
            con.unregister("__gate_rows")
        outcomes.append(outcome)
    return GateResult(run_id=run_id, as_of=as_of, tables=outcomes,
                      inputs=compare_with_published(con, inputs))


def write_gate_outputs(
    con: duckdb.DuckDBPyConnection, gate: GateResult, run_id: str
) -> None:
    """In one transaction: the validated input of every raw table, quarantine rows, counts.

    The input is a view of the raw table when the gate set nothing aside (no copy of a
    large table; builds hold the lock, so `raw` cannot change under a run), else a copy
    without the quarantined rows. raw rows = passed + quarantined is checked per table;
    a mismatch aborts the run.
    """
    target = publish.input_schema(run_id)
    by_table = {t.table: t for t in gate.tables}
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA {_q(target)}")
        for table in raw_tables(con):
            outcome = by_table.get(table)
            raw = f"{publish.RAW_SCHEMA}.{_q(table)}"
            if outcome is not None and outcome.quarantine:
                con.execute(
                    f"CREATE TABLE {_q(target)}.{_q(table)} AS SELECT * FROM {raw} t WHERE "
                    "t.rowid NOT IN (SELECT row FROM __gate_quarantine WHERE table_name = ?)",
                    [table],
                )
            else:
                con.execute(f"CREATE VIEW {_q(target)}.{_q(table)} AS SELECT * FROM {raw}")
            quarantined = 0
            if outcome is not None and outcome.quarantine:
                records = pd.DataFrame(
                    [
                        {"row": row, "expectation": eid, "reason": reason}
                        for row, reasons in sorted(outcome.quarantine.items())
                        for eid, reason in reasons
                    ]
                )
                con.register("__gate_records", records)
                con.execute(
                    f"INSERT INTO {publish.QUARANTINE_TABLE} "
                    f"SELECT ?, ?, ?, q.row, q.expectation, q.reason, to_json(t), ? "
                    f"FROM {raw} t JOIN __gate_records q ON t.rowid = q.row",
                    [run_id, outcome.source, table, now],
                )
                con.unregister("__gate_records")
                quarantined = outcome.quarantined_rows
            row = con.execute(f"SELECT count(*) FROM {raw}").fetchone()
            raw_rows = int(row[0]) if row else 0
            row = con.execute(f"SELECT count(*) FROM {_q(target)}.{_q(table)}").fetchone()
            passed = int(row[0]) if row else 0
            if raw_rows != passed + quarantined:
                raise GateError(
                    f"{table}: {raw_rows} raw rows but {passed} passed + {quarantined} quarantined"
                )
            con.execute(
                f"INSERT INTO {publish.COUNTS_TABLE} VALUES (?, ?, ?, ?, ?)",
                [run_id, table, raw_rows, passed, quarantined],
            )
        pause("gate")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def dbt_build(project: Project, run_id: str, progress: Progress | None = None) -> None:
    """dbt build (models and their tests) into run_<id>, reading run_<id>_input."""
    start_stage("dbt", progress)
    pause("dbt")
    run_project = Project(  # sources read the gated input, never KPI_RAW_PARQUET's files
        project.root,
        env={**project.env, "KPI_SCHEMA": publish.run_schema(run_id), "KPI_RAW_PARQUET": ""},
    )
    def model_started(event: NodeEvent) -> None:
        if progress is not None and event.event == "start" and event.resource_type == "model":
            progress(Detail(Stage("dbt"), f"{event.node} ({event.index}/{event.total})"))

    run_project.dbt(
        [
            "build",
            "--exclude-resource-type", "seed",
            "--vars", json.dumps({"raw_schema": publish.input_schema(run_id)}),
        ],
        progress=model_started,
    )


# --- the build ------------------------------------------------------------------------


def published_marts(project: Project) -> tuple[str, ...]:
    """The project's marts published beside the KPI marts (`config.publish`)."""
    from pipeline.compiler import read_metric_files
    from pipeline.spec.load import load

    spec, _ = load(read_metric_files(project))
    return spec.config.publish


# what fails a build (reported, nothing published) rather than stopping it with a traceback
FAILURES = (DbtError, GateError, publish.WarehouseError, publish.PublishError, duckdb.Error, OSError)


def build(
    project: Project,
    *,
    as_of: str | date | datetime | None = None,
    progress: Progress | None = None,
    wait_seconds: float = 0.0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    reports_dir: Path | None = None,
    data_docs: bool = True,
    do_seed: bool = True,
) -> BuildReport:
    """seed -> gate -> dbt build into run_<id> -> audit -> publish, under the build lock.

    Raises publish.BuildLocked when another build holds the lock past `wait_seconds`,
    publish.WarehouseError when the warehouse cannot be written (read-only, held by another
    process past `wait_seconds`) and quality.spec.SpecError for mistakes in the expectations
    files, all before any work. Every other failure is reported in the BuildReport (status
    blocked or failed), and recorded in the warehouse when it can be.
    """
    reference = resolve_as_of(as_of)
    specs = load_specs(project.models_dir)
    reports_dir = reports_dir or project.root / "target" / "kpi"
    warehouse = project.warehouse
    with publish.build_lock(warehouse, wait_seconds=wait_seconds, on_wait=on_wait(progress)):
        run_id = publish.new_run_id()
        report = BuildReport(run_id=run_id, status="failed", as_of=reference)
        clock = time.monotonic()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.monotonic()
            report.timings[name] = now - clock
            clock = now

        try:
            con = publish.connect(warehouse)
            try:
                publish.abandon_unfinished(con)
                publish.start_run(con, run_id, as_of=reference)
                baselines = publish.baseline_counts(con)
            finally:
                con.close()
            if project.raw_parquet is not None:
                load_parquet(project, project.raw_parquet, specs, progress)
                lap("load")
            elif do_seed:
                _seed_noting_errors(project, report, progress)
                lap("seed")
            con = publish.connect(warehouse)
            try:
                report.gate = run_gate(
                    con, specs, run_id=run_id, as_of=reference, baselines=baselines,
                    chunk_rows=chunk_rows, progress=progress,
                )
                publish.record_inputs(con, run_id, report.gate.inputs.fingerprint())
                if report.gate.blocked:
                    report.status = "blocked"
                    report.error = report.gate.why_blocked
                    publish.set_status(con, run_id, "blocked", report.error)
                    return report
                write_gate_outputs(con, report.gate, run_id)
                publish.set_status(con, run_id, "gated")
            finally:
                con.close()
            lap("gate")
            publish.connect(warehouse).close()  # dbt does not wait for a reader to close the file
            dbt_build(project, run_id, progress)
            lap("dbt")
            start_stage("audit", progress)
            pause("audit")
            con = publish.connect(warehouse)
            try:
                report.audit_failures = publish.audit(con, run_id)
                lap("audit")
                if report.audit_failures:
                    report.error = "audit failed: " + "; ".join(
                        f"{f.name} ({f.offending} rows{': ' + f.detail if f.detail else ''})"
                        for f in report.audit_failures
                    )
                    publish.set_status(con, run_id, "failed", report.error)
                    return report
                start_stage("swap", progress)
                publish.swap(con, run_id, marts=published_marts(project), pause=pause)
                publish.cleanup(con)
                lap("publish")
                report.status = "published"
                report.published_run = run_id
                report.previous_run = publish.previous_run(con)
            finally:
                con.close()
            return report
        except FAILURES as error:
            report.status = "failed"
            report.error = publish.warehouse_problem(error, warehouse) or str(error)
            _record_failure(warehouse, report, progress)
            return report
        finally:
            write_reports(report, reports_dir, data_docs=data_docs)


def _record_failure(warehouse: Path, report: BuildReport, progress: Progress | None) -> None:
    """Mark the run failed (waiting a while for a reader to close the file); when even that
    fails, say so: the next build marks the run aborted."""
    try:
        con = publish.connect(warehouse, on_wait=on_wait(progress))
        try:
            publish.set_status(con, report.run_id, "failed", (report.error or "")[:2000])
        finally:
            con.close()
    except (publish.WarehouseError, duckdb.Error) as error:
        problem = publish.warehouse_problem(error, warehouse) or str(error).splitlines()[0]
        report.error = (f"{report.error}; the failure could not be recorded in the warehouse "
                        f"({problem}): the next build marks run {report.run_id} aborted")


def check(
    project: Project,
    *,
    as_of: str | date | datetime | None = None,
    progress: Progress | None = None,
    wait_seconds: float = 0.0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    reports_dir: Path | None = None,
    data_docs: bool = True,
    do_seed: bool = True,
) -> BuildReport:
    """`kpi check`: seed and run the gate only; nothing but `raw` is written.

    Status `checked` when nothing blocks, else `blocked`; the volume baseline is the
    published run's counts, as in a build.
    """
    reference = resolve_as_of(as_of)
    specs = load_specs(project.models_dir)
    reports_dir = reports_dir or project.root / "target" / "kpi"
    with publish.build_lock(
        project.warehouse, wait_seconds=wait_seconds, what="check", on_wait=on_wait(progress)
    ):
        report = BuildReport(run_id=publish.new_run_id(), status="checked", as_of=reference)
        try:
            if project.raw_parquet is not None:
                load_parquet(project, project.raw_parquet, specs, progress)
            elif do_seed:
                _seed_noting_errors(project, report, progress)
            con = publish.connect(project.warehouse)
            try:
                publish.ensure_meta(con)
                baselines = publish.baseline_counts(con)
                report.gate = run_gate(
                    con, specs, run_id=report.run_id, as_of=reference, baselines=baselines,
                    chunk_rows=chunk_rows, progress=progress,
                )
            finally:
                con.close()
            if report.gate.blocked:
                report.status = "blocked"
                report.error = "the gate would block a build"
        except FAILURES as error:
            report.status = "failed"
            report.error = publish.warehouse_problem(error, project.warehouse) or str(error)
        write_reports(report, reports_dir, data_docs=data_docs)
        return report
