"""Named defects: corrupt a clean data set in one known way, for the data-quality tests.

Each defect touches one table (and names the columns it breaks); most change a handful of
rows, `empty_table`, `stale_table`, `volume_drop` and the column defects whole tables.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .calendar import END
from .schema import TABLE_BY_NAME, Table
from .write import TIMESTAMP_FORMAT, seed_path, write_csv

N_ROWS = 5  # rows touched by the row-level defects


@dataclass(frozen=True)
class Defect:
    """What a defect did: where, to which columns, and how many rows it affected."""

    name: str
    table: str
    columns: tuple[str, ...]
    description: str
    rows: int


_Apply = Callable[[pd.DataFrame, np.random.Generator], tuple[pd.DataFrame, int]]


@dataclass(frozen=True)
class _Spec:
    table: str
    columns: tuple[str, ...]
    description: str
    apply: _Apply


def _pick(
    frame: pd.DataFrame, gen: np.random.Generator, mask: pd.Series | None = None
) -> np.ndarray:
    """N_ROWS row positions (among `mask` when given), sorted."""
    candidates = np.flatnonzero(mask.to_numpy()) if mask is not None else np.arange(len(frame))
    return np.sort(gen.choice(candidates, size=min(N_ROWS, len(candidates)), replace=False))


def _set(frame: pd.DataFrame, rows: np.ndarray, column: str, values: object) -> pd.DataFrame:
    out = frame.copy()
    out.iloc[rows, out.columns.get_loc(column)] = values
    return out


def _duplicate_keys(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen)
    return pd.concat([df, df.iloc[rows]], ignore_index=True), len(rows)


def _null_keys(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen)
    out = df.copy()
    out["order_item_id"] = out["order_item_id"].astype("Int64")
    return _set(out, rows, "order_item_id", pd.NA), len(rows)


def _orphans(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen)
    missing = int(df["order_id"].max()) + 1000 + np.arange(len(rows))
    return _set(df, rows, "order_id", missing), len(rows)


def _negative(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen)
    return _set(df, rows, "unit_price", -df["unit_price"].to_numpy()[rows]), len(rows)


def _scores(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen)
    scores = pd.array(11 + np.arange(len(rows)) % 3, dtype=df["score"].dtype)
    return _set(df, rows, "score", scores), len(rows)


def _status(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen)
    return _set(df, rows, "status", "on_hold"), len(rows)


def _future(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen)
    future = pd.Timestamp(str(END)) + pd.to_timedelta(400 + 30 * np.arange(len(rows)), unit="D")
    return _set(df, rows, "ordered_at", future.to_numpy().astype("datetime64[s]")), len(rows)


def _out_of_order(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen, df["delivered_at"].notna())
    early = df["shipped_at"].to_numpy()[rows] - np.timedelta64(2, "D")
    return _set(df, rows, "delivered_at", early), len(rows)


def _as_text(df: pd.DataFrame, column: str, rows: np.ndarray, write: Callable) -> pd.DataFrame:
    """`column` as the CSV text it is written as, with `rows` rewritten by `write(value)`."""
    col = df[column]
    if pd.api.types.is_datetime64_any_dtype(col):
        text = col.dt.strftime(TIMESTAMP_FORMAT)
    else:
        text = pd.Series(np.char.mod("%.2f", col.to_numpy(dtype=float)), index=df.index)
    text = text.astype(object)
    for row in rows:
        text.iloc[row] = write(col.iloc[row])
    out = df.copy()
    out[column] = text
    return out


def _not_available(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen)
    return _as_text(df, "unit_price", rows, lambda v: "N/A"), len(rows)


def _us_timestamps(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen)
    return _as_text(df, "ordered_at", rows, lambda v: v.strftime("%m/%d/%Y %H:%M:%S")), len(rows)


def _offsets(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen)
    local = lambda v: (v + pd.Timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S+05:00")  # noqa: E731
    return _as_text(df, "ordered_at", rows, local), len(rows)


def _clicks(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    rows = _pick(df, gen, df["impressions"] > 0)
    return _set(df, rows, "clicks", df["impressions"].to_numpy()[rows] + 1), len(rows)


def _missing(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    return df.drop(columns=["csat_score"]), len(df)


def _renamed(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    return df.rename(columns={"ordered_at": "order_timestamp"}), len(df)


def _retyped(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    out = df.copy()
    text = np.char.replace(np.char.mod("%.2f", out["unit_price"].to_numpy(dtype=float)), ".", ",")
    out["unit_price"] = pd.Series(np.char.add(text, " USD"), index=out.index, dtype="str")
    return out, len(df)


def _empty(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    return df.iloc[0:0].copy(), len(df)


def _stale(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    cutoff = pd.Timestamp(str(END)) - pd.Timedelta(days=60)
    keep = df["started_at"] < cutoff
    return df[keep].reset_index(drop=True), int((~keep).sum())


def _volume_drop(df: pd.DataFrame, gen: np.random.Generator) -> tuple[pd.DataFrame, int]:
    keep = gen.random(len(df)) < 0.1
    return df[keep].reset_index(drop=True), int((~keep).sum())


_SPECS: dict[str, _Spec] = {
    "duplicate_keys": _Spec("orders", ("order_id",),
                            "5 orders appear twice (duplicate order_id)", _duplicate_keys),
    "null_keys": _Spec("order_items", ("order_item_id",),
                       "5 order items have a NULL order_item_id", _null_keys),
    "orphan_foreign_keys": _Spec("order_items", ("order_id",),
                                 "5 order items point to order_ids that do not exist", _orphans),
    "negative_amounts": _Spec("order_items", ("unit_price",),
                              "5 order items have a negative unit_price", _negative),
    "out_of_range_scores": _Spec("nps_responses", ("score",),
                                 "5 NPS answers score 11-13 (valid 0-10)", _scores),
    "unknown_status": _Spec("orders", ("status",),
                            "5 orders have the unknown status 'on_hold'", _status),
    "future_dates": _Spec("orders", ("ordered_at",),
                          "5 orders are dated more than a year after the history's end",
                          _future),
    "timestamps_out_of_order": _Spec("shipments", ("shipped_at", "delivered_at"),
                                     "5 shipments are delivered 2 days before being shipped",
                                     _out_of_order),
    "unreadable_amounts": _Spec("order_items", ("unit_price",),
                                "5 order items have the unit_price 'N/A'", _not_available),
    "reformatted_timestamps": _Spec("orders", ("ordered_at",),
                                    "5 orders are dated like 11/11/2026 14:37:05", _us_timestamps),
    "timestamps_with_offset": _Spec("orders", ("ordered_at",),
                                    "5 orders are dated in local time with an offset, like "
                                    "2026-11-05T16:39:11+05:00", _offsets),
    "clicks_over_impressions": _Spec("ad_spend", ("clicks", "impressions"),
                                     "5 ad spend rows have one click more than impressions",
                                     _clicks),
    "missing_column": _Spec("tickets", ("csat_score",),
                            "tickets lose the csat_score column", _missing),
    "renamed_column": _Spec("orders", ("ordered_at",),
                            "orders.ordered_at is renamed order_timestamp", _renamed),
    "retyped_column": _Spec("order_items", ("unit_price",),
                            "order_items.unit_price is text like '12,50 USD'", _retyped),
    "empty_table": _Spec("returns", (), "returns has no rows", _empty),
    "stale_table": _Spec("sessions", ("started_at",),
                         "sessions stop 60 days before the history's end", _stale),
    "volume_drop": _Spec("sessions", (), "sessions lose about 90% of their rows", _volume_drop),
}
DEFECTS: tuple[str, ...] = tuple(_SPECS)


def defect_table(name: str) -> Table:
    """The raw table a defect corrupts."""
    return TABLE_BY_NAME[_spec(name).table]


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise ValueError(f"unknown defect {name!r}; known: {', '.join(DEFECTS)}")
    return _SPECS[name]


def inject_defect(
    frames: dict[str, pd.DataFrame], name: str, seed: int = 0
) -> tuple[dict[str, pd.DataFrame], Defect]:
    """A copy of `frames` with one defect; the other tables are the same objects."""
    spec = _spec(name)
    gen = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))
    broken, rows = spec.apply(frames[spec.table], gen)
    return {**frames, spec.table: broken}, Defect(name, spec.table, spec.columns,
                                                   spec.description, rows)


def read_seed(path: Path, table: Table) -> pd.DataFrame:
    """A seed CSV read back with the contract's types (the inverse of write.write_csv)."""
    dtypes: dict[str, str] = {}
    dates: list[str] = []
    for column, kind in table.columns:
        if kind in ("BIGINT", "INTEGER"):
            dtypes[column] = "Int64"
        elif kind.startswith("DECIMAL"):
            dtypes[column] = "float64"
        elif kind in ("TIMESTAMP", "DATE"):
            dtypes[column] = "str"
            dates.append(column)
        else:
            dtypes[column] = "str"
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    for column in dates:
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[s]")
    return frame


def inject_defect_into_dir(seeds_dir: Path, name: str, seed: int = 0) -> Defect:
    """Corrupt one CSV of a directory written by `write_seeds`, in place."""
    table = defect_table(name)
    path = seed_path(Path(seeds_dir), table)
    frames, defect = inject_defect({table.name: read_seed(path, table)}, name, seed)
    write_csv(frames[table.name], path, table)
    return defect
