"""The plan is the one registry of generated models: every file written is a node of the
plan, and every node gets its properties, with a test of the key its rows are unique on."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.compiler import compile_project
from pipeline.project import Project

ROOT = Path(__file__).resolve().parents[3]


def test_every_generated_model_is_a_plan_node_with_a_tested_key() -> None:
    compiled = compile_project(Project(ROOT))
    assert compiled.ok, compiled.issues
    sql_files = {p for p in compiled.files if p.startswith("models/kpi/") and p.endswith(".sql")}
    assert sql_files == {node.path for node in compiled.plan.models}
    # each engine of config.engines: the same models in a folder of its own, nothing else
    for engine in compiled.spec.config.engines:
        folder = f"models/kpi_{engine}/"
        assert {p.replace(folder, "models/kpi/", 1) for p in compiled.files if p.startswith(folder)} == sql_files
    assert {p for p in compiled.files if p.startswith("models/")} - {
        p for p in compiled.files if any(p.startswith(f"models/kpi_{e}/") for e in compiled.spec.config.engines)
    } == sql_files | {"models/kpi/_kpi__models.yml"}
    properties = yaml.safe_load(compiled.files["models/kpi/_kpi__models.yml"])["models"]
    by_name = {m["name"]: m for m in properties}
    assert set(by_name) == {Path(p).stem for p in sql_files}
    for node in compiled.plan.models:
        entry = by_name[node.name]
        combined = [
            t["kpi_unique_rows"]["arguments"]["columns"]
            for t in entry.get("data_tests", [])
            if isinstance(t, dict) and "kpi_unique_rows" in t
        ]
        unique = [c["name"] for c in entry["columns"] if "unique" in c.get("data_tests", [])]
        assert combined == [list(node.unique_key)] or unique == list(node.unique_key), node.name
