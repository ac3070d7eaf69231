"""Which raw values hold their declared type: the rows a failed type check names.

One rule, in SQL, for the loader (`build.load_raw_csvs` keeps a column as text when a
value does not convert) and for the gate (the rows of such a column that break it):
a text value converts to a DuckDB type when `TRY_CAST` succeeds without loss. An
integer must not be rounded (`1.5`), and a timestamp must carry no time-zone offset:
raw timestamps are naive UTC, and DuckDB's cast to TIMESTAMP silently drops an offset
(`2026-11-05T16:39:11+05:00` would read as 16:39 UTC). `Z` and `+00:00` are UTC and
pass. The rule needs the session time zone UTC (`publish.connect` sets it).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.publish import RAW_SCHEMA
from pipeline.publish import quote_ident as _q
from pipeline.quality.suite import ROW

# the DuckDB type each logical type of the expectations files reads as
DUCKDB_TYPES = {
    "integer": "BIGINT", "number": "DOUBLE", "string": "VARCHAR", "date": "DATE",
    "timestamp": "TIMESTAMP", "boolean": "BOOLEAN",
}
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
             "UINTEGER", "UBIGINT")
_TEXT = ("VARCHAR", "TEXT", "STRING")


def converts(value: str, duckdb_type: str) -> str:
    """SQL, true when the text `value` (an SQL expression) reads as `duckdb_type` exactly."""
    kind = duckdb_type.strip().upper()
    cast = f"TRY_CAST({value} AS {kind})"
    if kind in _INTEGERS:
        return f"({cast} IS NOT NULL AND {cast} = TRY_CAST({value} AS DOUBLE))"
    if kind == "TIMESTAMP":  # an offset changes the instant; TIMESTAMP would ignore it
        return (f"({cast} IS NOT NULL AND "
                f"TRY_CAST({value} AS TIMESTAMPTZ) = {cast}::TIMESTAMPTZ)")
    return f"({cast} IS NOT NULL)"


def type_offenders(
    con: duckdb.DuckDBPyConnection, table: str, column: str, logical_type: str, limit: int
) -> tuple[int, pd.DataFrame]:
    """(count, first `limit` rows with `__row`) of the raw rows whose `column` breaks its type.

    A text column: the values that do not convert. A column with a time zone declared
    `timestamp`: every value (the offset is the problem). Any other column type: the
    values that change when converted and back (2.5 in a column declared integer).
    """
    relation = f"{RAW_SCHEMA}.{_q(table)}"
    row = con.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? AND column_name = ?",
        [RAW_SCHEMA, table, column],
    ).fetchone()
    actual = str(row[0]).upper() if row else "VARCHAR"
    target = DUCKDB_TYPES[logical_type]
    c = _q(column)
    if actual in _TEXT:
        bad = f"NOT {converts(c, target)}"
    elif actual.startswith("TIMESTAMP WITH TIME ZONE") and logical_type == "timestamp":
        bad = "true"
    else:
        bad = f"TRY_CAST(TRY_CAST({c} AS {target}) AS {actual}) IS DISTINCT FROM {c}"
    where = f"{c} IS NOT NULL AND {bad}"
    counted = con.execute(f"SELECT count(*) FROM {relation} WHERE {where}").fetchone()
    rows = con.execute(
        f"SELECT rowid AS {ROW}, * FROM {relation} WHERE {where} ORDER BY rowid LIMIT {int(limit)}"
    ).df()
    return int(counted[0]) if counted else 0, rows
