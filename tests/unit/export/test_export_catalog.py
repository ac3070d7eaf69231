"""The KPI catalog: complete, and valid against its versioned JSON Schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pipeline.export.catalog import (
    CATALOG_VERSION,
    build_catalog,
    catalog_schema,
    validate_catalog,
    write_catalog,
)
from pipeline.project import Project
from tests.support.projects import fixture_project

TARGETS = "targets:\n  - {kpi: revenue, value: 500000, per: month}\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixture_project(tmp_path_factory.mktemp("catalog"), {"targets.yml": TARGETS})


@pytest.fixture(scope="module")
def catalog(root: Path) -> dict[str, Any]:
    return build_catalog(Project(root))


def test_the_schema_is_a_valid_versioned_json_schema() -> None:
    schema = catalog_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(f"/{CATALOG_VERSION}.json")


def test_the_catalog_validates_against_its_schema(catalog: dict[str, Any]) -> None:
    assert validate_catalog(catalog) == []
    assert catalog["catalog_version"] == CATALOG_VERSION


def test_every_kpi_is_described_with_its_file_and_sql(catalog: dict[str, Any], root: Path) -> None:
    from pipeline.compiler import compile_project

    compiled = compile_project(Project(root))
    names = {k.name for k in compiled.spec.kpis}
    entries = {k["name"]: k for k in catalog["kpis"]}
    assert set(entries) == names
    for entry in entries.values():
        assert (root / entry["metric_file"]).is_file()
        assert entry["label"] and entry["category"] and entry["grains"]
        models = [m["name"] for m in entry["sql"]["models"]]
        assert entry["sql"]["values_model"] in models and "kpi_values" in models
        for name in models:
            model = catalog["models"][name]
            assert model["sql"] == (root / model["path"]).read_text(encoding="utf-8")


def test_targets_and_dimensions_come_from_the_metric_files(catalog: dict[str, Any]) -> None:
    revenue = next(k for k in catalog["kpis"] if k["name"] == "revenue")
    assert revenue["format"] == "currency" and revenue["direction"] == "higher"
    assert {"name": "channel", "column": "channel"} in revenue["dimensions"]
    assert any(t["value"] == 500000 and t["per"] == "month" for t in revenue["targets"])
    assert revenue["model"] == "orders" and revenue["aggregation"] == "sum"
    assert "kpi_measures__orders__ordered_at" in [m["name"] for m in revenue["sql"]["models"]]


def test_a_broken_catalog_is_reported(catalog: dict[str, Any]) -> None:
    broken = copy.deepcopy(catalog)
    broken["kpis"][0]["direction"] = "sideways"
    del broken["kpis"][1]["label"]
    problems = validate_catalog(broken)
    assert any("sideways" in p for p in problems)
    assert any("'label' is a required property" in p for p in problems)


def test_write_catalog_writes_the_document_and_its_schema(tmp_path: Path, root: Path) -> None:
    path = write_catalog(Project(root), tmp_path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert validate_catalog(document) == []
    assert json.loads((tmp_path / "catalog.schema.json").read_text()) == catalog_schema()
    assert not list(tmp_path.glob(".*tmp*"))
