"""Deterministic demo data of Happy Home Goods (docs/data-model.md, raw tables)."""

from .defects import DEFECTS, Defect, inject_defect, inject_defect_into_dir
from .engine import generate, generate_frames
from .schema import ACCEPTED_VALUES, FOREIGN_KEYS, TABLES, Table
from .write import write_parquet, write_seeds

__all__ = [
    "ACCEPTED_VALUES",
    "DEFECTS",
    "FOREIGN_KEYS",
    "TABLES",
    "Defect",
    "Table",
    "generate",
    "generate_frames",
    "inject_defect",
    "inject_defect_into_dir",
    "write_parquet",
    "write_seeds",
]
