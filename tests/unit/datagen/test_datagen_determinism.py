"""Same seed, same bytes."""

from __future__ import annotations

from pathlib import Path

from pipeline.datagen import generate_frames, write_parquet, write_seeds
from pipeline.datagen.schema import TABLE_BY_NAME
from pipeline.datagen.write import seed_path


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_two_writes_are_byte_identical(seeds_dir: Path, tmp_path: Path) -> None:
    write_seeds(tmp_path, 42)
    assert files(tmp_path) == files(seeds_dir)


def test_another_seed_gives_other_data() -> None:
    ours, other = generate_frames(0.05, 42), generate_frames(0.05, 7)
    assert ours.keys() == other.keys()
    for table in ("orders", "products", "sessions", "employees"):
        assert not ours[table].equals(other[table]), table


def test_seed_files_follow_the_csv_conventions(seeds_dir: Path) -> None:
    total = 0
    for name, data in files(seeds_dir).items():
        total += len(data)
        assert b"\r" not in data, name
        if name.endswith(".csv"):
            assert data.endswith(b"\n") and b"NaN" not in data and b"<NA>" not in data, name
    assert total < 15_000_000
    orders = seed_path(seeds_dir, TABLE_BY_NAME["orders"]).read_text().splitlines()
    assert orders[0] == "order_id,customer_id,ordered_at,status,channel,device"
    assert len(orders[1].split(",")[2]) == len("2024-11-01 00:00:00")
    products = seed_path(seeds_dir, TABLE_BY_NAME["products"]).read_text().splitlines()
    price = products[1].split(",")[3]
    assert len(price.split(".")[1]) == 2


def test_parquet_is_deterministic(tmp_path: Path) -> None:
    first = write_parquet(tmp_path / "a", 0.05, 42)
    second = write_parquet(tmp_path / "b", 0.05, 42)
    assert first == second
    assert files(tmp_path / "a") == files(tmp_path / "b")
