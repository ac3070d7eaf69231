"""File exports of the published KPI marts: Parquet, CSV and JSON read back equal the marts,
and an export that fails midway leaves the previous export as it was."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.export import files
from pipeline.export.catalog import build_catalog, validate_catalog
from pipeline.export.files import KPI_MARTS, MANIFEST, ExportError, export
from pipeline.project import Project
from tests.conftest import REPO_ROOT, release_duckdb_handles

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def exported(demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, files.ExportReport]:
    release_duckdb_handles()
    out = tmp_path_factory.mktemp("exports") / "kpi_export"
    report = export(demo_warehouse, out, catalog=build_catalog(Project(REPO_ROOT)))
    return out, report


@pytest.fixture
def con(demo_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    release_duckdb_handles()
    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    connection.execute(f"ATTACH '{demo_warehouse}' AS wh (READ_ONLY)")
    yield connection
    connection.close()


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE wh.analytics.{table}").fetchall()]


def _differences(con: duckdb.DuckDBPyConnection, table: str, reader: str) -> tuple[int, int, int]:
    """(rows of the mart, rows only in the mart, rows only in the file): multiset differences."""
    columns = ", ".join(f'"{c}"' for c, _ in _columns(con, table))
    mart = f"SELECT {columns} FROM wh.analytics.{table}"
    back = f"SELECT {columns} FROM {reader}"
    total = con.execute(f"SELECT count(*) FROM wh.analytics.{table}").fetchone()
    missing = con.execute(f"SELECT count(*) FROM ({mart} EXCEPT ALL {back})").fetchone()
    extra = con.execute(f"SELECT count(*) FROM ({back} EXCEPT ALL {mart})").fetchone()
    assert total and missing and extra
    return int(total[0]), int(missing[0]), int(extra[0])


def _types(con: duckdb.DuckDBPyConnection, table: str) -> str:
    return "{" + ", ".join(f"'{c}': '{t}'" for c, t in _columns(con, table)) + "}"


def test_every_kpi_mart_is_exported_in_every_format(exported: tuple[Path, files.ExportReport]) -> None:
    out, report = exported
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["tables"]) == set(KPI_MARTS)
    assert report.tables == {t: manifest["tables"][t]["rows"] for t in KPI_MARTS}
    for entry in manifest["tables"].values():
        assert set(entry["files"]) == {"parquet", "csv", "json"}
        for paths in entry["files"].values():
            assert paths and all((out / p).is_file() for p in paths)
    values = manifest["tables"]["kpi_values"]
    assert values["partitioned_by"] == "grain"
    assert sorted(Path(p).parent.name for p in values["files"]["parquet"]) == sorted(
        f"grain={g}" for g in ("day", "week", "month", "quarter", "year")
    )
    assert not list(out.parent.glob(".kpi_export.*"))  # no staging folder left


@pytest.mark.parametrize("table", KPI_MARTS)
def test_parquet_reads_back_equal_to_the_mart(
    exported: tuple[Path, files.ExportReport], con: duckdb.DuckDBPyConnection, table: str
) -> None:
    out, _ = exported
    folder = out / "parquet" / table
    reader = (
        f"read_parquet('{folder}/*/*.parquet', hive_partitioning = true)"
        if folder.is_dir()
        else f"read_parquet('{out}/parquet/{table}.parquet')"
    )
    total, missing, extra = _differences(con, table, reader)
    assert total > 0 and (missing, extra) == (0, 0)


@pytest.mark.parametrize("table", KPI_MARTS)
def test_csv_reads_back_equal_to_the_mart(
    exported: tuple[Path, files.ExportReport], con: duckdb.DuckDBPyConnection, table: str
) -> None:
    out, _ = exported
    reader = (
        f"read_csv('{out}/csv/{table}.csv', header = true, allow_quoted_nulls = false, "
        f"quote = '\"', escape = '\"', columns = {_types(con, table)})"
    )
    total, missing, extra = _differences(con, table, reader)
    assert total > 0 and (missing, extra) == (0, 0)


@pytest.mark.parametrize("table", KPI_MARTS)
def test_json_reads_back_equal_to_the_mart(
    exported: tuple[Path, files.ExportReport], con: duckdb.DuckDBPyConnection, table: str
) -> None:
    out, _ = exported
    reader = f"read_json('{out}/json/{table}.json', format = 'array', columns = {_types(con, table)})"
    total, missing, extra = _differences(con, table, reader)
    assert total > 0 and (missing, extra) == (0, 0)


def test_other_readers_agree(exported: tuple[Path, files.ExportReport], con: duckdb.DuckDBPyConnection) -> None:
    """pandas/pyarrow (hive partitions) and Python's json read the same rows."""
    import pandas as pd

    out, _ = exported
    mart = con.execute("SELECT * FROM wh.analytics.kpi_values WHERE grain = 'month'").df()
    back = pd.read_parquet(out / "parquet" / "kpi_values", filters=[("grain", "=", "month")])
    back["grain"] = back["grain"].astype(str)
    for frame in (mart, back):  # dates as dates on both sides, whatever each reader chose
        for column in ("period_start", "period_end"):
            frame[column] = pd.to_datetime(frame[column]).dt.date
    keys = ["kpi", "period_start", "dimension", "dimension_value"]
    mart = mart.sort_values(keys).reset_index(drop=True)
    back = back[list(mart.columns)].sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(mart, back, check_dtype=False, check_categorical=False)
    catalog_rows = json.loads((out / "json" / "kpi_catalog.json").read_text())
    expected = con.execute("SELECT * FROM wh.analytics.kpi_catalog ORDER BY kpi").fetchall()
    names = [c for c, _ in _columns(con, "kpi_catalog")]
    assert [tuple(r[n] for n in names) for r in catalog_rows] == [tuple(r) for r in expected]


def test_the_catalog_file_validates(exported: tuple[Path, files.ExportReport]) -> None:
    out, _ = exported
    document = json.loads((out / "catalog.json").read_text())
    assert validate_catalog(document) == []
    assert (out / "catalog.schema.json").is_file()


# --- atomicity --------------------------------------------------------------------------


def _fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


SMALL = ["kpi_catalog", "kpi_yearly", "kpi_quarterly"]


def test_a_failure_midway_leaves_the_previous_export_intact(
    demo_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release_duckdb_handles()
    out = tmp_path / "export"
    export(demo_warehouse, out, tables=SMALL)
    before = _fingerprint(out)
    assert MANIFEST in before

    real_write = files._write
    calls: list[Path] = []

    def failing_write(con: Any, select: Any, path: Path, fmt: str) -> None:
        if calls:
            raise OSError("disk full (simulated)")
        calls.append(path)
        real_write(con, select, path, fmt)

    monkeypatch.setattr(files, "_write", failing_write)
    with pytest.raises(OSError, match="simulated"):
        export(demo_warehouse, out, tables=SMALL)
    assert len(calls) == 1 and calls[0].is_relative_to(tmp_path) and not calls[0].is_relative_to(out)
    assert _fingerprint(out) == before  # every file as it was, nothing half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # staging removed

    monkeypatch.setattr(files, "_write", real_write)
    export(demo_warehouse, out, tables=SMALL)
    after = _fingerprint(out)
    assert set(after) == set(before)


def test_a_killed_export_leaves_its_staging_folder_to_the_next_one(
    demo_warehouse: Path, tmp_path: Path
) -> None:
    release_duckdb_handles()
    out = tmp_path / "export"
    export(demo_warehouse, out, tables=SMALL)
    before = _fingerprint(out)
    stale = tmp_path / ".export.staging-deadbeef"  # what a kill -9 before the swap leaves
    (stale / "csv").mkdir(parents=True)
    (stale / "csv" / "kpi_yearly.csv").write_text("period_start\n2024-")
    assert _fingerprint(out) == before
    export(demo_warehouse, out, tables=SMALL)
    assert not stale.exists()


def test_refuses_to_replace_a_folder_that_is_not_an_export(demo_warehouse: Path, tmp_path: Path) -> None:
    release_duckdb_handles()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not a KPI export"):
        export(demo_warehouse, tmp_path, tables=SMALL)
    assert (tmp_path / "notes.txt").read_text() == "mine"
