"""Small helpers turning generator arrays into typed frame columns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.core.arrays.string_arrow import ArrowStringArray

_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str" dtype

# Rows per generated frame at most: bounds what a frame and its Arrow copy cost while it is
# written. pyarrow's default Parquet row group: cutting there leaves the files as they were
# (smaller row groups would compress the id and time columns worse).
FRAME_ROWS = 1 << 20


def row_slices(n: int) -> Iterator[slice]:
    """Slices cutting n rows into frames of at most FRAME_ROWS rows (one for no rows)."""
    for lo in range(0, max(n, 1), FRAME_ROWS):
        yield slice(lo, lo + FRAME_ROWS)


def labels(codes: np.ndarray, names: Sequence[str] | np.ndarray) -> pd.Series:
    """A str column from integer codes into `names` (-1 for NULL), decoded in Arrow: much
    faster than building it from Python strings at large scales."""
    missing = codes < 0
    idx = pa.array(np.where(missing, 0, codes).astype(np.int32),
                   mask=missing if missing.any() else None)
    dictionary = pa.array([str(n) for n in names], type=pa.string())
    decoded = pa.DictionaryArray.from_arrays(idx, dictionary).dictionary_decode()
    return pd.Series(ArrowStringArray(decoded, dtype=_STR))


def strings(values: np.ndarray | Sequence[str]) -> pd.Series:
    """A str column from a small array of Python strings."""
    return pd.Series(values, dtype="str")


def nullable_int(values: np.ndarray, present: np.ndarray) -> pd.Series:
    """A nullable Int64 column: `values` where `present`, NULL elsewhere."""
    return pd.Series(values, dtype="Int64").where(present)


def nullable_ts(seconds: np.ndarray) -> np.ndarray:
    """int seconds since the epoch, -1 for missing -> datetime64[s] with NaT."""
    out = seconds.astype("datetime64[s]")
    out[seconds < 0] = np.datetime64("NaT")
    return out
