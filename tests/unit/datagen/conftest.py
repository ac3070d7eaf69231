"""Fixtures of the generator tests: one scale-1 data set, written once as seeds and loaded
into an in-memory DuckDB with the contract's column types (as dbt seed would)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from pipeline.datagen import TABLES, generate_frames
from pipeline.datagen.write import seed_path, write_seed_frames

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def frames() -> dict[str, pd.DataFrame]:
    return generate_frames(1.0, 42)


@pytest.fixture(scope="session")
def seeds_dir(tmp_path_factory: pytest.TempPathFactory, frames: dict[str, pd.DataFrame]) -> Path:
    """The seeds of `frames`, as write_seeds writes them (never modified by the tests)."""
    out = tmp_path_factory.mktemp("seeds")
    write_seed_frames(frames, out)
    return out


def load_seeds(con: duckdb.DuckDBPyConnection, seeds_dir: Path) -> None:
    """Create one typed table per seed CSV, as `dbt seed` would with _seeds.yml."""
    for t in TABLES:
        columns = ", ".join(f"'{name}': '{kind}'" for name, kind in t.columns)
        con.execute(
            f"create or replace table {t.name} as select * from read_csv("
            f"'{seed_path(seeds_dir, t)}', header = true, nullstr = '', "
            f"columns = {{{columns}}})"
        )


@pytest.fixture(scope="session")
def db(seeds_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    load_seeds(con, seeds_dir)
    yield con
    con.close()


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]
