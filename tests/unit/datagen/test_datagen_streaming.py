"""Bounded memory at any scale: frames of at most FRAME_ROWS rows, a month's orders in
blocks, its sessions in parts cut into time windows. The sizes are lowered here so that a
small scale takes those paths."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.datagen import FOREIGN_KEYS, TABLES, engine, web, write_parquet
from pipeline.datagen import frames as datagen_frames
from pipeline.datagen.calendar import DAY, HOUR_WEIGHTS, day_share, months, times_between

from .conftest import scalar
from .test_datagen_integrity import VIOLATIONS

SMALL = {"ORDER_PART_ROWS": 40, "SESSION_PART_ROWS": 400, "SESSION_PART_MAX": 600}
SCALE = 1.0  # about 60-220 orders and 3,000-7,500 sessions a month


def parquet_tables(folder: Path) -> dict[str, pq.ParquetFile]:
    return {t.name: pq.ParquetFile(folder / t.source / f"{t.name}.parquet") for t in TABLES}


def test_frames_are_cut_without_changing_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = write_parquet(tmp_path / "whole", 0.2, 42)
    monkeypatch.setattr(datagen_frames, "FRAME_ROWS", 300)
    cut = write_parquet(tmp_path / "cut", 0.2, 42)
    assert cut == whole
    before, after = parquet_tables(tmp_path / "whole"), parquet_tables(tmp_path / "cut")
    for name, file in after.items():
        assert file.read().equals(before[name].read()), name
    # The tables whose month chunks grow with the scale, other than the order blocks.
    for name in ("sessions", "customers"):
        meta = after[name].metadata
        assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 300
    assert after["sessions"].metadata.num_row_groups > 2 * before["sessions"].metadata.num_row_groups


@pytest.fixture(scope="module")
def small_parts() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SMALL.items():
            patch.setattr(engine, name, value)
        yield


def test_sessions_parts_cover_each_month_within_the_bound(small_parts: None) -> None:
    world = engine._World(SCALE, 42)
    windowed = 0
    for m in months():
        parts = world._session_parts(m)
        edges = []
        for key, days, window in parts:
            start, end = window or (int(days[0].astype("datetime64[s]").astype(np.int64)),
                                    int((days[-1] + 1).astype("datetime64[s]").astype(np.int64)))
            day_start = days.astype("datetime64[s]").astype(np.int64)
            share = day_share(np.clip(start - day_start, 0, DAY), np.clip(end - day_start, 0, DAY))
            expected = (web.expected_browsing(days, SCALE).sum(axis=1) * share).sum()
            assert expected <= SMALL["SESSION_PART_MAX"] * 1.001, (m.index, key)
            edges.append((start, end))
            windowed += window is not None
        assert edges[0][0] == m.start_s and edges[-1][1] == m.end_s
        assert all(a[1] == b[0] for a, b in pairwise(edges))
        assert len({key for key, _, _ in parts}) == len(parts)
    assert windowed > 0


@pytest.fixture(scope="module")
def blocked(small_parts: None) -> dict[str, list[pd.DataFrame]]:
    """The chunks of `generate` with small blocks and parts, by table."""
    chunks: dict[str, list[pd.DataFrame]] = {t.name: [] for t in TABLES}
    for name, frame in engine.generate(SCALE, 42):
        chunks[name].append(frame)
    return chunks


def test_chunks_stay_within_the_bounds(blocked: dict[str, list[pd.DataFrame]]) -> None:
    for table in ("orders", "shipments", "tickets", "nps_responses"):
        assert max(len(f) for f in blocked[table]) <= SMALL["ORDER_PART_ROWS"], table
    assert len(blocked["orders"]) > 2 * len(months())
    # A part's sessions: Poisson around at most SESSION_PART_MAX, plus its converting ones.
    assert max(len(f) for f in blocked["sessions"]) <= 1.3 * SMALL["SESSION_PART_MAX"]


def test_blocks_keep_ids_and_time_order(blocked: dict[str, list[pd.DataFrame]]) -> None:
    for table, key in (("orders", "order_id"), ("sessions", "session_id"),
                       ("tickets", "ticket_id"), ("returns", "return_id")):
        ids = pd.concat(blocked[table], ignore_index=True)[key]
        assert ids.tolist() == list(range(1, len(ids) + 1)), table
    orders = pd.concat(blocked["orders"], ignore_index=True)
    assert orders["ordered_at"].is_monotonic_increasing
    # Parts and windows follow each other in time: only a converting session that began
    # before its order's month comes after later ones.
    sessions = pd.concat(blocked["sessions"], ignore_index=True)
    started = sessions["started_at"]
    early = started < started.cummax().shift(fill_value=started.iloc[0])
    assert sessions.loc[early, "order_id"].notna().all()


def test_blocks_keep_the_volumes(
    blocked: dict[str, list[pd.DataFrame]], frames: dict[str, pd.DataFrame]
) -> None:
    """Against the committed seeds' data (one block and one part a month)."""
    # A month's orders are drawn before its blocks: the same orders, other details.
    orders = pd.concat(blocked["orders"], ignore_index=True)
    assert orders["ordered_at"].equals(frames["orders"]["ordered_at"])
    for table in ("sessions", "order_items"):
        n = sum(len(f) for f in blocked[table])
        assert abs(n / len(frames[table]) - 1) < 0.02, table


@pytest.fixture(scope="module")
def blocked_parquet(small_parts: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("blocked")
    write_parquet(out, SCALE, 42)
    return out


def test_blocked_data_keeps_every_invariant(
    blocked: dict[str, list[pd.DataFrame]], blocked_parquet: Path
) -> None:
    con = duckdb.connect()
    for t in TABLES:
        path = blocked_parquet / t.source / f"{t.name}.parquet"
        con.execute(f"create view {t.name} as select * from read_parquet('{path}')")
        assert scalar(con, f"select count(*) from {t.name}") == sum(
            len(f) for f in blocked[t.name])
    for table, column, ref, ref_column in FOREIGN_KEYS:
        assert scalar(con, f"""select count(*) from {table} t where t.{column} is not null
            and not exists (select 1 from {ref} r where r.{ref_column} = t.{column})""") == 0
    broken = {name: n for name, sql in VIOLATIONS.items() if (n := scalar(con, sql))}
    assert broken == {}


def test_blocked_writes_are_byte_identical(
    small_parts: None, blocked_parquet: Path, tmp_path: Path
) -> None:
    write_parquet(tmp_path, SCALE, 42)
    for t in TABLES:
        path = Path(t.source) / f"{t.name}.parquet"
        assert (tmp_path / path).read_bytes() == (blocked_parquet / path).read_bytes(), t.name


def test_windows_follow_the_hourly_profile() -> None:
    gen = np.random.default_rng(1)
    days = np.full(200_000, np.datetime64("2025-03-03", "D"))
    sec = times_between(gen, days, np.zeros(len(days), dtype=np.int64),
                        np.full(len(days), DAY)) - days.astype("datetime64[s]").astype(np.int64)
    hours = np.bincount(sec // 3600, minlength=24) / len(sec)
    assert np.abs(hours - HOUR_WEIGHTS).max() < 0.003
    start, end = np.array([5_000]), np.array([5_400])
    inside = times_between(gen, days[:1000], np.full(1000, 5_000), np.full(1000, 5_400))
    inside -= days[:1000].astype("datetime64[s]").astype(np.int64)
    assert inside.min() >= 5_000 and inside.max() < 5_400
    assert day_share(start, end)[0] == pytest.approx(HOUR_WEIGHTS[1] * 400 / 3600)
