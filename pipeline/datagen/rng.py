"""Random streams keyed by (seed, table, chunk): no global state, same key → same numbers."""

from __future__ import annotations

import zlib

import numpy as np


def rng(seed: int, table: str, chunk: int = 0) -> np.random.Generator:
    """A Generator for one table and one month chunk (chunk -1 for whole-history tables)."""
    key = [seed, zlib.crc32(table.encode()), chunk + 1]
    return np.random.default_rng(np.random.SeedSequence(key))
