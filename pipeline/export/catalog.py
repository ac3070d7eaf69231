"""The KPI catalog: every KPI described for BI tools and people, as JSON.

The document follows `catalog.schema.json` (JSON Schema 2020-12, versioned by
`catalog_version`: a minor version only adds optional fields). Per KPI: name, label,
description, category, owner, kind and definition, format, unit, direction, grains,
dimensions, targets, thresholds, windows, the metric file (and line) it is declared in,
and the generated dbt models it compiles to; the models' SQL is under `models`, once.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.compiler import Compiled, compile_project
from pipeline.errors import UserError
from pipeline.export.atomic import write_text_atomically
from pipeline.plan.planner import Plan
from pipeline.project import Project
from pipeline.spec.model import Kpi, Spec, Target
from pipeline.warehouse.names import PUBLISHED_SCHEMA, VALUES_MART

CATALOG_VERSION = "1.0"
SCHEMA_FILE = "catalog.schema.json"
SCHEMA_ID = "https://kpi-pipeline.example/schemas/kpi-catalog/1.0.json"
TRACKING_MODELS = (VALUES_MART,)


def schema_path() -> Path:
    return Path(__file__).with_name(SCHEMA_FILE)


@cache
def catalog_schema() -> dict[str, Any]:
    """The catalog's JSON Schema."""
    loaded: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return loaded


def build_catalog(project: Project, compiled: Compiled | None = None) -> dict[str, Any]:
    """The catalog document of the project's metric files (compiled now unless given).

    Raises UserError when the metric files do not compile.
    """
    result = compiled or compile_project(project)
    if not result.ok or result.plan is None:
        raise UserError(result.issues)
    return catalog_document(result.spec, result.plan, result.files, project=_project_name(project))


def _project_name(project: Project) -> str:
    """The dbt project's name (dbt_project.yml), else its folder's."""
    path = project.root / "dbt_project.yml"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("name:"):
                return line.split(":", 1)[1].strip().strip("'\"") or project.root.name
    return project.root.name


def catalog_document(
    spec: Spec, plan: Plan, files: dict[str, str], *, project: str = "kpi-pipeline"
) -> dict[str, Any]:
    """The catalog from a compiled spec, its plan and its generated files (no file system)."""
    model_paths = {
        Path(path).stem: path for path in sorted(files) if path.startswith("models/") and path.endswith(".sql")
    }
    used: set[str] = set()
    kpis = []
    for kpi in sorted(spec.kpis, key=lambda k: (k.category, k.name)):
        entry = _kpi_entry(spec, plan, kpi, model_paths)
        used.update(m["name"] for m in entry["sql"]["models"])
        kpis.append(entry)
    return {
        "$schema": SCHEMA_ID,
        "catalog_version": CATALOG_VERSION,
        "project": project,
        "dialect": plan.dialect,
        "published_schema": PUBLISHED_SCHEMA,
        "kpis": kpis,
        "models": {
            name: {"path": model_paths[name], "sql": files[model_paths[name]]}
            for name in sorted(used)
        },
    }


def write_catalog(project: Project, out: Path) -> Path:
    """`kpi catalog`-style: write the project's catalog to `out` (a file, or a folder that
    gets catalog.json and catalog.schema.json), atomically; return the catalog file."""
    out = Path(out)
    document = build_catalog(project)
    path = out / "catalog.json" if out.is_dir() or not out.suffix else out
    write_text_atomically(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    write_text_atomically(path.with_name(SCHEMA_FILE), schema_path().read_text(encoding="utf-8"))
    return path


def validate_catalog(document: dict[str, Any]) -> list[str]:
    """Every way `document` breaks the catalog schema (empty: valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(catalog_schema())
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def kpis_by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["name"]: k for k in document.get("kpis", [])}


# --- one KPI ------------------------------------------------------------------------------


def _kpi_entry(spec: Spec, plan: Plan, kpi: Kpi, model_paths: dict[str, str]) -> dict[str, Any]:
    thresholds = spec.thresholds_of(kpi)
    step = plan.step(kpi.name)
    return {
        "name": kpi.name,
        "label": kpi.label,
        "description": " ".join(kpi.description.split()),
        "category": kpi.category,
        "owner": kpi.owner,
        "kind": kpi.kind,
        "aggregation": kpi.agg,
        "definition": definition(kpi),
        "model": kpi.model if kpi.kind == "simple" else None,
        "inputs": list(step.inputs),
        "format": kpi.format,
        "unit": kpi.unit,
        "direction": kpi.direction,
        "strategic": kpi.strategic,
        "grains": list(kpi.grains),
        "dimensions": [{"name": d.name, "column": d.column} for d in kpi.dimensions],
        "targets": [_target(t) for t in spec.targets_of(kpi)],
        "thresholds": {"on_track": thresholds.on_track, "at_risk": thresholds.at_risk},
        "windows": [w.name for w in kpi.windows],
        "metric_file": kpi.file,
        "metric_line": max(kpi.location.line, 1),
        "sql": {
            "values_model": step.values_model,
            "models": [
                {"name": name, "role": role}
                for name, role in _models_of(plan, kpi.name)
                if name in model_paths
            ],
        },
    }


def definition(kpi: Kpi) -> str:
    """The KPI's computation in one line, in the metric language's words."""
    if kpi.kind == "simple":
        text = f"{kpi.agg}({kpi.expr}) over {kpi.model} by {kpi.time}"
        return text + (f" where {kpi.filter}" if kpi.filter else "")
    if kpi.kind == "ratio":
        return f"{kpi.numerator} / {kpi.denominator} (Σ numerator / Σ denominator at each grain)"
    if kpi.kind == "derived":
        return " ".join(str(kpi.formula).split())
    params = ", ".join(f"{k}: {_param(v)}" for k, v in kpi.block.items())
    return f"{kpi.kind} ({params})"


def _param(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_param(v)}" for k, v in value.items()) + "}"
    return str(value)


def _target(target: Target) -> dict[str, Any]:
    return {
        "kind": target.kind,
        "value": target.value,
        "series": dict(target.series),
        "growth": target.growth,
        "per": target.per,
        "where": {"dimension": target.where[0], "value": target.where[1]} if target.where else None,
        "valid_from": target.valid_from,
        "valid_to": target.valid_to,
        "source": target.source,
    }


def _models_of(plan: Plan, name: str) -> list[tuple[str, str]]:
    """(model, role) for a KPI: its inputs' models first, then its own, then tracking."""
    seen: dict[str, str] = {}

    def visit(kpi_name: str, own: bool) -> None:
        step = plan.step(kpi_name)
        for upstream in step.inputs:
            visit(upstream, False)
        prefix = "" if own else "input_"
        if step.group is not None:
            seen.setdefault(step.group.name, prefix + "measures")
        seen.setdefault(step.values_model, prefix + "values")

    visit(name, True)
    for model in TRACKING_MODELS:
        seen.setdefault(model, "tracking")
    return list(seen.items())
