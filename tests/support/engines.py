"""The KPI marts of another engine's build compared with DuckDB's, row by row and value by
value (doubles to 1e-9 relative)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import release_duckdb_handles

RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 1e-9  # for values that should be 0 (a difference of two equal sums)
VALUE_KEYS = ("kpi", "grain", "period_start", "dimension", "dimension_value")
WINDOW_KEYS = ("kpi", "window_name", "grain", "period_start", "dimension", "dimension_value")


def duckdb_rows(
    warehouse: Path, table: str, keys: Sequence[str]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    import duckdb

    release_duckdb_handles()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        result = con.execute(f"SELECT * FROM analytics.{table} ORDER BY {', '.join(keys)}")
        return [d[0] for d in result.description], result.fetchall()


def _normal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return value


def _equal(a: Any, b: Any) -> bool:
    a, b = _normal(a), _normal(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool):
            return a == b
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        return abs(fa - fb) <= RELATIVE_TOLERANCE * max(abs(fa), abs(fb)) + ABSOLUTE_TOLERANCE
    if isinstance(a, date) and isinstance(b, date):
        return a == b
    return bool(a == b)


def compare(
    duck: tuple[list[str], list[tuple[Any, ...]]],
    other: tuple[list[str], list[tuple[Any, ...]]],
    keys: Sequence[str],
    engine: str,
) -> list[str]:
    """Differences between DuckDB's rows and another engine's (doubles within a tolerance)."""
    duck_columns, duck_rows = duck
    other_columns, other_rows = other
    problems: list[str] = []
    if duck_columns != other_columns:
        return [f"columns differ: duckdb {duck_columns} vs {engine} {other_columns}"]
    key_index = [duck_columns.index(k) for k in keys]

    def key(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(row[i] for i in key_index)

    duck_by_key = {key(r): r for r in duck_rows}
    other_by_key = {key(r): r for r in other_rows}
    only_duck = sorted(set(duck_by_key) - set(other_by_key), key=str)
    only_other = sorted(set(other_by_key) - set(duck_by_key), key=str)
    problems += [f"only in duckdb: {k}" for k in only_duck[:10]]
    problems += [f"only in {engine}: {k}" for k in only_other[:10]]
    differing = 0
    for k, duck_row in duck_by_key.items():
        other_row = other_by_key.get(k)
        if other_row is None:
            continue
        for column, a, b in zip(duck_columns, duck_row, other_row, strict=True):
            if not _equal(a, b):
                differing += 1
                if differing <= 20:
                    problems.append(f"{k} {column}: duckdb {a!r} vs {engine} {b!r}")
    if differing > 20:
        problems.append(f"… {differing} differing values in all")
    if only_duck or only_other:
        problems.append(f"{len(only_duck)} keys only in duckdb, {len(only_other)} only in {engine}")
    return problems
