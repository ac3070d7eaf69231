"""Compile table specs into Great Expectations 1.x expectations.

Three frames are validated per raw table, each with its own part of the suite:

- the *schema sample* (the first rows, plain columns): column set and types;
- the *row chunks* (`__row` = DuckDB rowid, the table's columns, and derived columns
  computed by DuckDB: `__orphan__<col>` holds a foreign key value that no parent row
  has, `__cascade__<col>` one whose parent rows were all quarantined, and
  `__ref__<table>__<col>` a parent's column for cross-table order, and for a check
  with `as: <type>` `__as_<type>__<col>` the value read as that type and
  `__unreadable_<type>__<col>` one that does not read as it);
- the *profile* (one row of exact table aggregates computed by DuckDB: `row_count`,
  `max__<col>`): emptiness, volume and freshness.

Every GX expectation carries `meta.kpi_id` (the Expectation id) and `meta.policy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.expectations.expectation import Expectation as GxExpectation

from pipeline.quality.spec import Expectation, TableSpec

ROW = "__row"

_INTS = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype",
    "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype",
]
_FLOATS = ["float32", "float64", "Float32Dtype", "Float64Dtype"]
_DATETIMES = [f"datetime64[{unit}]" for unit in ("s", "ms", "us", "ns")]
# The pandas dtypes DuckDB produces for each declared logical type, spelled the way
# GX 1.x's pandas type check resolves them (extension dtypes by class name). Frames
# are normalised by `gx_frame` first: text columns become `StringDtype`, since GX
# does not recognise pandas 3's default `str` dtype; an all-NULL text column is
# `object` and GX then checks its values one by one (NULLs pass).
PANDAS_TYPES: Mapping[str, list[str]] = {
    "integer": _INTS,
    "number": _INTS + _FLOATS,
    "string": ["StringDtype", "str"],
    "date": _DATETIMES,
    "timestamp": _DATETIMES,
    "boolean": ["bool", "BooleanDtype"],
}


def gx_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as GX's pandas engine checks it fast and types it right.

    Text columns become `StringDtype` (GX does not recognise pandas 3's default `str`);
    timestamps become datetime64[ns] and integers without NULLs int64, the dtypes for which GX
    compares whole columns at once: otherwise its range checks call Python per value
    (5x slower on a chunk of web sessions).
    """
    casts: dict[str, str] = {}
    for column, dtype in frame.dtypes.items():
        kind = str(dtype)
        if kind == "str":
            casts[str(column)] = "string"
        elif (kind.startswith("datetime64[") and kind != "datetime64[ns]"
              and not isinstance(dtype, pd.DatetimeTZDtype)  # the type check refuses it
              and _fits_ns(frame[column])):
            casts[str(column)] = "datetime64[ns]"
        elif kind in _NARROW_INTS or (kind in _NULLABLE_INTS and not frame[column].hasnans):
            casts[str(column)] = "int64"
    return frame.astype(casts) if casts else frame


_NARROW_INTS = ("int8", "int16", "int32", "uint8", "uint16", "uint32")
_NULLABLE_INTS = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32")


def _fits_ns(column: pd.Series) -> bool:
    """Nanosecond timestamps span 1677-2262; a sentinel like 9999-12-31 keeps its unit."""
    values = column.dropna()
    return values.empty or (
        values.min() >= pd.Timestamp.min and values.max() <= pd.Timestamp.max
    )


def orphan_column(column: str) -> str:
    return f"__orphan__{column}"


def cascade_column(column: str) -> str:
    return f"__cascade__{column}"


def ref_column(qualified: str) -> str:
    table, column = qualified.split(".", 1)
    return f"__ref__{table}__{column}"


def frame_column(name: str) -> str:
    """The chunk column holding `name` (a local column or `parent.column`)."""
    return ref_column(name) if "." in name else name


def as_column(column: str, logical_type: str) -> str:
    """The chunk column holding `column`'s values read as `logical_type` (NULL otherwise)."""
    return f"__as_{logical_type}__{column}"


def unreadable_column(column: str, logical_type: str) -> str:
    """The chunk column holding a value of `column` that does not read as `logical_type`."""
    return f"__unreadable_{logical_type}__{column}"


def check_column(e: Expectation, name: str) -> str:
    """The chunk column a check on `name` reads: its typed expression when it sets `as:`."""
    column = frame_column(name)
    return as_column(column, e.params["as"]) if e.params.get("as") else column


def max_column(column: str) -> str:
    return f"max__{column}"


def volume_band(
    baseline: int | None, params: Mapping[str, Any]
) -> tuple[int | None, int | None] | None:
    """(min, max) row counts allowed by a volume check; None without a baseline."""
    if baseline is None:
        return None
    drop, growth = params.get("max_drop"), params.get("max_growth")
    low = int(baseline * (1 - drop)) if drop is not None else None
    high = int(baseline * (1 + growth)) + 1 if growth is not None else None
    return low, high


def compile_expectation(
    e: Expectation, *, as_of: datetime, baseline: int | None = None
) -> GxExpectation | None:
    """One spec expectation -> one GX expectation (None: cannot apply, e.g. no baseline)."""
    meta = {"kpi_id": e.id, "policy": e.policy, "kpi_description": e.description}
    p = e.params
    if e.kind == "columns":
        return gxe.ExpectTableColumnsToMatchSet(
            column_set=list(p["column_set"]), exact_match=True, meta=meta
        )
    if e.kind == "type":
        return gxe.ExpectColumnValuesToBeInTypeList(
            column=e.columns[0], type_list=list(PANDAS_TYPES[p["type"]]), meta=meta
        )
    if e.kind == "unique":
        if len(e.columns) == 1:
            return gxe.ExpectColumnValuesToBeUnique(column=e.columns[0], meta=meta)
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(e.columns), meta=meta)
    if e.kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=e.columns[0], meta=meta)
    if e.kind == "references":
        return gxe.ExpectColumnValuesToBeNull(column=orphan_column(p["column"]), meta=meta)
    if e.kind == "cascade":
        return gxe.ExpectColumnValuesToBeNull(column=cascade_column(p["column"]), meta=meta)
    if e.kind == "readable":
        return gxe.ExpectColumnValuesToBeNull(
            column=unreadable_column(e.columns[0], p["type"]), meta=meta
        )
    if e.kind == "between":
        return gxe.ExpectColumnValuesToBeBetween(
            column=check_column(e, e.columns[0]),
            min_value=p.get("min"),
            max_value=p.get("max"),
            strict_min=p.get("strict_min", False),
            strict_max=p.get("strict_max", False),
            meta=meta,
        )
    if e.kind == "accepted_values":
        return gxe.ExpectColumnValuesToBeInSet(
            column=e.columns[0], value_set=list(p["values"]), meta=meta
        )
    if e.kind == "not_in_future":
        return gxe.ExpectColumnValuesToBeBetween(
            column=check_column(e, e.columns[0]), max_value=as_of, meta=meta
        )
    if e.kind == "in_order":
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=check_column(e, p["later"]),
            column_B=check_column(e, p["earlier"]),
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta=meta,
        )
    if e.kind == "not_empty":
        return gxe.ExpectColumnValuesToBeBetween(column="row_count", min_value=1, meta=meta)
    if e.kind == "volume":
        band = volume_band(baseline, p)
        if band is None:
            return None
        return gxe.ExpectColumnValuesToBeBetween(
            column="row_count", min_value=band[0], max_value=band[1], meta=meta
        )
    if e.kind == "freshness":
        return gxe.ExpectColumnValuesToBeBetween(
            column=max_column(e.columns[0]), min_value=as_of - p["max_age"], meta=meta
        )
    raise ValueError(f"unknown expectation kind {e.kind!r}")


def compile_suite(
    spec: TableSpec, *, as_of: datetime, baseline: int | None = None, level: str | None = None
) -> gx.ExpectationSuite:
    """The GX suite `raw.<table>` (or only its `level` part: schema, row or table)."""
    expectations = []
    for e in spec.expectations:
        if level is not None and e.level != level:
            continue
        compiled = compile_expectation(e, as_of=as_of, baseline=baseline)
        if compiled is not None:
            expectations.append(compiled)
    return gx.ExpectationSuite(
        name=f"raw.{spec.name}",
        expectations=expectations,
        meta={"source": spec.source, "table": spec.name, "spec": str(spec.location)},
    )
