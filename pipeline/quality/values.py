"""Which raw values hold their declared type: the rows a failed type check names.

One rule, in SQL, for the loader (`raw.load_raw_csvs` keeps a column as text when a
value does not convert) and for the gate (`quality.read`: the rows of such a column
that break it, and checks on a text column read as a type, `as:`):
a text value converts to a DuckDB type when `TRY_CAST` succeeds without loss. An
integer must not be rounded (`1.5`), and a timestamp must carry no time-zone offset:
raw timestamps are naive UTC, and DuckDB's cast to TIMESTAMP silently drops an offset
(`2026-11-05T16:39:11+05:00` would read as 16:39 UTC). `Z` and `+00:00` are UTC and
pass. The rule needs the session time zone UTC (`publish.connect` sets it).
"""

from __future__ import annotations

# the DuckDB type each logical type of the expectations files reads as
DUCKDB_TYPES = {
    "integer": "BIGINT", "number": "DOUBLE", "string": "VARCHAR", "date": "DATE",
    "timestamp": "TIMESTAMP", "boolean": "BOOLEAN",
}
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
             "UINTEGER", "UBIGINT")
TEXT_TYPES = ("VARCHAR", "TEXT", "STRING")


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
