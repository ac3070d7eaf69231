"""Each named defect is present after injection, touches what it says, and nothing else."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.datagen import ACCEPTED_VALUES, DEFECTS, inject_defect, inject_defect_into_dir
from pipeline.datagen.schema import TABLE_BY_NAME
from pipeline.datagen.write import seed_path

Frames = dict[str, pd.DataFrame]
END = pd.Timestamp("2026-11-15 23:59:59")

# Each check returns the number of rows showing the defect (or a truth value for the
# defects of whole tables), given the broken table and the clean frames.
CHECKS: dict[str, Callable[[pd.DataFrame, Frames], int | bool]] = {
    "duplicate_keys": lambda df, f: int(df["order_id"].duplicated().sum()),
    "null_keys": lambda df, f: int(df["order_item_id"].isna().sum()),
    "orphan_foreign_keys": lambda df, f: int((~df["order_id"].isin(f["orders"]["order_id"])).sum()),
    "negative_amounts": lambda df, f: int((df["unit_price"] < 0).sum()),
    "out_of_range_scores": lambda df, f: int((~df["score"].between(0, 10)).sum()),
    "unknown_status": lambda df, f: int(
        (~df["status"].isin(ACCEPTED_VALUES[("orders", "status")])).sum()),
    "future_dates": lambda df, f: int((df["ordered_at"] > END).sum()),
    "timestamps_out_of_order": lambda df, f: int((df["delivered_at"] < df["shipped_at"]).sum()),
    "unreadable_amounts": lambda df, f: int((df["unit_price"].astype(str) == "N/A").sum()),
    "reformatted_timestamps": lambda df, f: int(
        df["ordered_at"].astype(str).str.fullmatch(r"\d\d/\d\d/\d{4} [\d:]{8}").sum()),
    "timestamps_with_offset": lambda df, f: int(
        df["ordered_at"].astype(str).str.endswith("+05:00").sum()),
    "clicks_over_impressions": lambda df, f: int((df["clicks"] > df["impressions"]).sum()),
    "missing_column": lambda df, f: "csat_score" not in df.columns,
    "renamed_column": lambda df, f: "ordered_at" not in df and "order_timestamp" in df,
    "retyped_column": lambda df, f: bool(
        df["unit_price"].astype(str).str.endswith(" USD").all()),
    "empty_table": lambda df, f: len(df) == 0 and list(df.columns) == list(f["returns"].columns),
    "stale_table": lambda df, f: df["started_at"].max() < END - pd.Timedelta(days=59),
    "volume_drop": lambda df, f: len(df) < 0.15 * len(f["sessions"]),
}
ROW_DEFECTS = [name for name in DEFECTS if name not in (
    "missing_column", "renamed_column", "retyped_column", "empty_table", "stale_table",
    "volume_drop")]


def test_every_defect_has_a_check() -> None:
    assert sorted(CHECKS) == sorted(DEFECTS)
    assert len(DEFECTS) == 18


@pytest.mark.parametrize("name", DEFECTS)
def test_defect_is_injected_and_the_rest_untouched(frames: Frames, name: str) -> None:
    broken, defect = inject_defect(frames, name)
    assert defect.name == name and defect.description and defect.rows > 0
    for table, frame in frames.items():
        if table != defect.table:
            assert broken[table] is frame, table
    clean, dirty = frames[defect.table], broken[defect.table]
    assert not CHECKS[name](clean, frames)
    found = CHECKS[name](dirty, frames)
    if name in ROW_DEFECTS:
        assert found == defect.rows == 5
        # Only the affected rows differ (duplicates are appended).
        head = dirty.iloc[: len(clean)].reset_index(drop=True)
        changed = (_text(head) != _text(clean)).any(axis=1).sum()
        assert changed + (len(dirty) - len(clean)) == 5
    else:
        assert found is True
    assert set(defect.columns) <= set(clean.columns)


def test_injection_is_deterministic(frames: Frames) -> None:
    a, _ = inject_defect(frames, "unknown_status", seed=3)
    b, _ = inject_defect(frames, "unknown_status", seed=3)
    c, _ = inject_defect(frames, "unknown_status", seed=4)
    assert a["orders"].equals(b["orders"])
    assert not a["orders"].equals(c["orders"])


def test_unknown_defect_is_refused(frames: Frames) -> None:
    with pytest.raises(ValueError, match="unknown defect"):
        inject_defect(frames, "gremlins")


@pytest.mark.parametrize("name", DEFECTS)
def test_defect_in_a_seed_directory(seeds_dir: Path, tmp_path: Path, name: str) -> None:
    target = tmp_path / "seeds"
    shutil.copytree(seeds_dir, target)
    defect = inject_defect_into_dir(target, name)
    changed = [p.relative_to(target) for p in sorted(target.rglob("*")) if p.is_file()
               and p.read_bytes() != (seeds_dir / p.relative_to(target)).read_bytes()]
    touched = next(p for p in changed)
    assert changed == [touched] and touched.stem == f"raw_{defect.table}"
    before = (seeds_dir / touched).read_text().splitlines()
    after = (target / touched).read_text().splitlines()
    if name in ROW_DEFECTS:
        assert before[0] == after[0]
        assert len(set(after) - set(before)) + (len(after) - len(before)) in (5, 10)
        assert set(before) <= set(after) or len(set(before) - set(after)) == 5
    # The CSV still loads, and shows the defect to a reader of the raw file.
    con = duckdb.connect()
    text = ", all_varchar = true" if name in TEXT_DEFECTS else ""
    rel = con.sql(f"select * from read_csv('{target / touched}', header = true{text})")
    assert CHECKS[name](_typed(rel.df(), name), _frames_for(seeds_dir)) not in (0, False)


# values a reader sees as written, not as a CSV reader would guess their type
TEXT_DEFECTS = ("reformatted_timestamps", "timestamps_with_offset")


def _text(df: pd.DataFrame) -> pd.DataFrame:
    """The values as the CSV writes them (amounts with two decimals)."""
    return df.apply(
        lambda c: c.map("{:.2f}".format) if pd.api.types.is_float_dtype(c) else c
    ).astype(str).fillna("<null>")


def _typed(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """The raw read with the few conversions the checks need."""
    if name == "stale_table":
        df["started_at"] = pd.to_datetime(df["started_at"])
    return df


def _frames_for(seeds_dir: Path) -> Frames:
    return {name: pd.read_csv(seed_path(seeds_dir, TABLE_BY_NAME[name]))
            for name in ("orders", "returns", "sessions")}
