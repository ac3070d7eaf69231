"""Parquet output at a small scale: the contract's types, and the same rows as the CSV
writer gives for the same data."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from pipeline.datagen import TABLES, Table, generate_frames, write_parquet
from pipeline.datagen.write import seed_path, write_csv

from .conftest import load_seeds, scalar

SCALE = 0.2


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """A DuckDB with the CSVs of scale 0.2 as tables and the Parquet files as views `pq_*`."""
    root = tmp_path_factory.mktemp("scale")
    counts = write_parquet(root / "parquet", SCALE, 42)
    frames = generate_frames(SCALE, 42)
    assert counts == {name: len(frame) for name, frame in frames.items()}
    for t in TABLES:
        write_csv(frames[t.name], seed_path(root / "csv", t), t)
    con = duckdb.connect()
    load_seeds(con, root / "csv")
    for t in TABLES:
        path = root / "parquet" / t.source / f"{t.name}.parquet"
        con.execute(f"create view pq_{t.name} as select * from read_parquet('{path}')")
    return con


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_parquet_round_trips_like_the_csv(both: duckdb.DuckDBPyConnection, table: Table) -> None:
    name = table.name
    pq_types = [(r[0], r[1]) for r in both.execute(f"describe pq_{name}").fetchall()]
    assert pq_types == list(table.columns)
    n = scalar(both, f"select count(*) from pq_{name}")
    assert n == scalar(both, f"select count(*) from {name}")
    assert n > 0
    for a, b in ((f"pq_{name}", name), (name, f"pq_{name}")):
        assert scalar(both, f"select count(*) from (from {a} except all from {b})") == 0


def test_volumes_scale_linearly(both: duckdb.DuckDBPyConnection) -> None:
    orders = scalar(both, "select count(*) from orders")
    assert 450 <= orders <= 750
    assert scalar(both, "select count(*) from products") == 60


def test_large_months_stream_sessions_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """At large scales a month's sessions come in several frames; ids and conversions stay
    whole. (The part size is lowered so that a small scale takes that path.)"""
    from pipeline.datagen import engine

    monkeypatch.setattr(engine, "SESSION_PART_ROWS", 200)
    chunks: dict[str, list[pd.DataFrame]] = {"sessions": [], "orders": []}
    for name, frame in engine.generate(0.1, 42):
        chunks.get(name, []).append(frame)
    assert len(chunks["sessions"]) > 2 * len(engine.months())
    sessions = pd.concat(chunks["sessions"], ignore_index=True)
    orders = pd.concat(chunks["orders"], ignore_index=True)
    assert sessions["session_id"].tolist() == list(range(1, len(sessions) + 1))
    converted = sessions["order_id"].dropna()
    assert converted.is_unique
    online = orders.loc[orders["channel"] != "marketplace", "order_id"]
    assert sorted(converted) == sorted(online)
