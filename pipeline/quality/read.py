"""The gate's reads from DuckDB: a table's columns, schema sample, profile and row chunks.

Every statement is a sqlglot tree: a constant template whose `:name` placeholders are
replaced by trees (quoted identifiers, literals, the parsed `where:` of a reference).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import duckdb
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from pipeline.quality.inputs import DIGEST, time_column
from pipeline.quality.spec import GATE_DIALECT, WHERE, TableSpec
from pipeline.quality.suite import (
    ROW,
    cascade_column,
    check_column,
    max_column,
    orphan_column,
    ref_column,
    unreadable_column,
)
from pipeline.quality.values import DUCKDB_TYPES, TEXT_TYPES, converts
from pipeline.spec import expressions
from pipeline.warehouse.names import Relation
from pipeline.warehouse.sql import fill

SAMPLE_ROWS = 1_000
QUARANTINE = "__gate_quarantine"  # (table_name, row): the rows set aside so far, this session


def select(text: str, **values: exp.Expr) -> exp.Select:
    """`fill` of a SELECT template."""
    tree = fill(text, **values)
    assert isinstance(tree, exp.Select), text
    return tree


def sql(tree: exp.Expr) -> str:
    return tree.sql(GATE_DIALECT)


def column(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def describe(con: duckdb.DuckDBPyConnection, relation: Relation) -> dict[str, str]:
    """column -> DuckDB type of the relation (raises duckdb.CatalogException when absent)."""
    rows = con.execute(sql(fill("DESCRIBE SELECT * FROM $rel", rel=relation.node()))).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def count_rows(con: duckdb.DuckDBPyConnection, relation: Relation) -> int:
    row = con.execute(sql(fill("SELECT count(*) FROM $rel", rel=relation.node()))).fetchone()
    return int(row[0]) if row else 0


def read_sample(
    con: duckdb.DuckDBPyConnection, relation: Relation, rows: int = SAMPLE_ROWS
) -> pd.DataFrame:
    query = select("SELECT * FROM $rel LIMIT $n", rel=relation.node(), n=exp.Literal.number(rows))
    return con.execute(sql(query)).df()


def digest_profile(
    con: duckdb.DuckDBPyConnection, relation: Relation, newest: Mapping[str, exp.Expr] | None = None
) -> pd.DataFrame:
    """One row of exact aggregates: row_count, the rows' digest (`quality.inputs`) and
    each of `newest` (output column -> a timestamp expression over alias `__t`) at its max."""
    query = select("SELECT count(*) AS row_count FROM $rel AS __t", rel=relation.node()).select(
        exp.alias_(fill("sum(hash(__t)::HUGEINT)::VARCHAR"), DIGEST, quoted=True)
    )
    for name, value in (newest or {}).items():
        query = query.select(
            exp.alias_(exp.cast(exp.Max(this=value), "TIMESTAMP"), name, quoted=True)
        )
    try:
        return con.execute(sql(query)).df()
    except duckdb.ConversionException:
        if not newest:
            raise
        return digest_profile(con, relation)  # a retyped column: the schema checks report it


def read_profile(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, relation: Relation, columns: Sequence[str]
) -> pd.DataFrame:
    """The profile of a guarded table: row_count, digest and max__<col> of every
    freshness column and of the fingerprint's time column (`quality.inputs`)."""
    casts = {e.columns[0]: e.params.get("as") for e in spec.expectations if e.kind == "freshness"}
    casts.setdefault(time_column(spec, columns) or "", None)
    newest = {
        max_column(c): typed(column(c, "__t"), cast) if cast else column(c, "__t")
        for c, cast in casts.items() if c in columns
    }
    try:
        return digest_profile(con, relation, newest)
    except duckdb.Error:  # a freshness column of a type with no max as timestamp
        return digest_profile(con, relation)


def typed(value: exp.Expr, logical_type: str) -> exp.Expr:
    """`value` read as `logical_type` when it converts exactly (`quality.values`), else NULL."""
    target = DUCKDB_TYPES[logical_type]
    return fill(f"CASE WHEN {converts('$v', target)} THEN CAST($v AS {target}) END", v=value)


def unreadable(value: exp.Expr, logical_type: str) -> exp.Expr:
    """`value` when it is not NULL and does not read as `logical_type`, else NULL."""
    target = DUCKDB_TYPES[logical_type]
    return fill(f"CASE WHEN $v IS NOT NULL AND NOT {converts('$v', target)} THEN $v END", v=value)


def typed_columns(spec: TableSpec, source: Callable[[str], exp.Expr]) -> list[exp.Expr]:
    """The chunk's columns of checks on typed expressions (`as:`): each value read as the
    type, and the values that do not read as it; `source(name)` is a column's value."""
    out: dict[str, exp.Expr] = {}
    for e in spec.expectations:
        if e.kind == "readable":
            name = unreadable_column(e.columns[0], e.params["type"])
            out[name] = unreadable(source(e.columns[0]), e.params["type"])
        elif e.level == "row" and e.params.get("as"):
            for c in e.columns:
                out[check_column(e, c)] = typed(source(c), e.params["as"])
    return [exp.alias_(value, name, quoted=True) for name, value in out.items()]


def _where(text: str) -> exp.Expr:
    """A reference's vetted `where:` (quality.spec) with its columns read from alias `p`."""
    tree = expressions.parse(text, GATE_DIALECT, what=WHERE)
    for col in expressions.columns(tree):
        col.set("table", exp.to_identifier("p"))
    return tree


def derived_query(
    spec: TableSpec, relations: Mapping[str, Relation], usable_refs: Sequence[str]
) -> tuple[exp.Select, list[str]] | None:
    """The derived columns of every row (`__row` and the columns), or None.

    A foreign key is an orphan when no parent row has it, a cascade when every parent
    row holding it was quarantined; `__ref__` columns carry a parent's column for
    cross-table order checks. Only rows with something to say are kept, unless the
    table needs parent columns on every row.
    """
    query = select("SELECT t.rowid AS $row FROM $rel AS t", row=exp.to_identifier(ROW),
                     rel=relations[spec.name].node())
    columns: list[str] = []
    anomalies: list[exp.Expr] = []
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
        alias = f"p{i}"
        parent = _parent(ref.table, ref.to, relations[ref.table], extra, where)
        query = query.join(parent, on=exp.EQ(this=column(ref.column, "t"), expression=column("k", alias)),
                           join_type="LEFT", join_alias=alias)
        orphan, cascade = orphan_column(ref.column), cascade_column(ref.column)
        fk, key = column(ref.column, "t"), column("k", alias)
        query = query.select(
            exp.alias_(fill("CASE WHEN $fk IS NOT NULL AND $key IS NULL THEN $fk END",
                                fk=fk, key=key), orphan, quoted=True),
            exp.alias_(fill("CASE WHEN $key IS NOT NULL AND NOT $passed THEN $fk END",
                                fk=fk, key=key, passed=column("passed", alias)), cascade, quoted=True),
        )
        columns += [orphan, cascade]
        anomalies += [exp.column(orphan, quoted=True).is_(exp.null()).not_(),
                      exp.column(cascade, quoted=True).is_(exp.null()).not_()]
        for c in extra:
            name = ref_column(f"{ref.table}.{c}")
            query = query.select(exp.alias_(column(c, alias), name, quoted=True))
            columns.append(name)
    if not columns:
        return None
    if len(columns) == len(anomalies):
        query = exp.select("*").from_(query.subquery()).where(exp.or_(*anomalies))
    return query, columns


def _parent(
    table: str, key: str, relation: Relation, extra: Sequence[str], where: str | None
) -> exp.Expr:
    """Per parent key: whether any of its rows passed, and its `extra` columns' values."""
    inner = select(
        "SELECT $parent_key AS k, p.rowid NOT IN (SELECT row FROM $quarantine WHERE table_name = $name) "
        "AS ok FROM $rel AS p",
        parent_key=column(key, "p"), quarantine=exp.to_table(QUARANTINE), name=exp.Literal.string(table),
        rel=relation.node(),
    )
    inner = inner.select(*(column(c, "p") for c in extra))
    if where:
        inner = inner.where(_where(where))
    outer = select("SELECT k, bool_or(ok) AS passed FROM $inner GROUP BY k",
                     inner=inner.subquery())
    return outer.select(*(
        exp.alias_(fill("any_value($c) FILTER (WHERE ok)", c=column(c)), c, quoted=True)
        for c in extra
    )).subquery()


def read_chunks(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    relations: Mapping[str, Relation],
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
    relation = relations[spec.name]
    chunk_rows = max(1, chunk_rows)
    derived = derived_query(spec, relations, usable_refs)
    join, extra = False, []
    if derived is not None:
        con.execute(sql(fill("CREATE OR REPLACE TEMP TABLE __gate_derived AS $q", q=derived[0])))
        row = con.execute("SELECT count(*) FROM __gate_derived").fetchone()
        join = bool(row and row[0])
        extra = [
            column(c, "d") if join else exp.alias_(exp.null(), c, quoted=True) for c in derived[1]
        ]
    duplicated = _duplicated_rows(con, spec, relation, chunk_rows)

    def value(name: str) -> exp.Expr:  # a column, or a parent's (`table.column`)
        if "." not in name:
            return column(name, "t")
        return column(ref_column(name), "d") if join else exp.null()

    rowid, derived_row = exp.column("rowid", "t"), exp.column(ROW)

    def read(rows: exp.Expr, derived_rows: exp.Expr) -> pd.DataFrame | None:
        query = select("SELECT t.rowid AS $row, t.* FROM $rel AS t WHERE $cond",
                         row=exp.to_identifier(ROW), rel=relation.node(), cond=rows)
        query = query.select(*extra, *typed_columns(spec, value))
        if join:
            picked = select("SELECT * FROM __gate_derived WHERE $cond", cond=derived_rows)
            query = query.join(picked.subquery("d"), on=exp.EQ(this=exp.column(ROW, "d"), expression=rowid),
                               join_type="LEFT")
        frame = _frame(con.execute(sql(query)))
        return frame.set_index(ROW, drop=False) if len(frame) else None

    def between(value: exp.Expr, start: int, last: bool) -> exp.Expr:
        low = value.copy() >= exp.Literal.number(start)
        return low if last else exp.and_(low, value.copy() < exp.Literal.number(start + chunk_rows))

    not_duplicated = fill("t.rowid NOT IN (SELECT row FROM __gate_duplicated)")
    starts = range(0, max(1, raw_rows), chunk_rows)
    for start in starts:
        last = start == starts[-1]  # open-ended: rowids past the row count too
        rows = between(rowid, start, last)
        frame = read(exp.and_(rows, not_duplicated) if duplicated else rows,
                     between(derived_row, start, last))
        if frame is not None:
            yield frame
    for part in range(duplicated):
        members = select("SELECT row FROM __gate_duplicated WHERE part = $part",
                           part=exp.Literal.number(part))
        frame = read(exp.In(this=rowid.copy(), query=members.subquery()),
                     exp.In(this=derived_row.copy(), query=members.subquery()))
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


def _duplicated_rows(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, relation: Relation, chunk_rows: int
) -> int:
    """`__gate_duplicated` (row, part): the rows whose key is not unique, partitioned by
    the key's hash into parts of about `chunk_rows`; returns the number of parts."""
    parts = 0
    if spec.key:
        keys = select("SELECT count(*) AS n FROM $rel GROUP BY ALL HAVING count(*) > 1",
                        rel=relation.node())
        keys.set("expressions", [*(column(c) for c in spec.key), *keys.expressions])
        con.execute(sql(fill("CREATE OR REPLACE TEMP TABLE __gate_duplicated_keys AS $q", q=keys)))
        row = con.execute("SELECT coalesce(sum(n), 0) FROM __gate_duplicated_keys").fetchone()
        parts = math.ceil(int(row[0] if row else 0) / chunk_rows)
    if not parts:
        con.execute("CREATE OR REPLACE TEMP TABLE __gate_duplicated (row BIGINT, part UBIGINT)")
        return 0
    match = exp.and_(*(
        fill("$a IS NOT DISTINCT FROM $b", a=column(c, "d"), b=column(c, "t")) for c in spec.key
    ))
    query = fill(
        "CREATE OR REPLACE TEMP TABLE __gate_duplicated AS SELECT t.rowid AS row, "
        "$hash % $parts AS part FROM $rel AS t "
        "WHERE EXISTS (SELECT 1 FROM __gate_duplicated_keys AS d WHERE $match)",
        hash=exp.func("hash", *(column(c, "t") for c in spec.key)),
        parts=exp.Literal.number(parts), rel=relation.node(), match=match,
    )
    con.execute(sql(query))
    return parts


def type_offenders(
    con: duckdb.DuckDBPyConnection, relation: Relation, name: str, logical_type: str, limit: int
) -> tuple[int, pd.DataFrame]:
    """(count, first `limit` rows with `__row`) of the raw rows whose `name` breaks its type.

    A text column: the values that do not convert. A column with a time zone declared
    `timestamp`: every value (the offset is the problem). Any other column type: the
    values that change when converted and back (2.5 in a column declared integer).
    """
    actual = describe(con, relation).get(name, "VARCHAR").upper()
    bad: exp.Expr
    if actual in TEXT_TYPES:
        bad = unreadable(column(name), logical_type).is_(exp.null()).not_()
    elif actual.startswith("TIMESTAMP WITH TIME ZONE") and logical_type == "timestamp":
        bad = column(name).is_(exp.null()).not_()
    else:
        bad = fill(
            f"$v IS NOT NULL AND TRY_CAST(TRY_CAST($v AS {DUCKDB_TYPES[logical_type]}) AS {actual})"
            " IS DISTINCT FROM $v", v=column(name),
        )
    counted = con.execute(sql(fill("SELECT count(*) FROM $rel WHERE $cond",
                                       rel=relation.node(), cond=bad))).fetchone()
    rows = con.execute(sql(fill(
        "SELECT rowid AS $row, * FROM $rel WHERE $cond ORDER BY rowid LIMIT $n",
        row=exp.to_identifier(ROW), rel=relation.node(), cond=bad, n=exp.Literal.number(limit),
    ))).df()
    return int(counted[0]) if counted else 0, rows
