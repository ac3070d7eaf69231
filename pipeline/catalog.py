"""The dbt models KPIs can be measured on, read from the YAML files beside them.

Marts declare every column (with an enforced dbt contract, so the list is true), which
lets `kpi validate` check columns without a warehouse or a dbt parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.errors import Location, did_you_mean

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    columns: Mapping[str, str | None]  # column → declared data type
    unique_columns: frozenset[str]  # columns proven unique by a test or constraint
    location: Location
    non_negative_columns: frozenset[str] = frozenset()  # an accepted_range test with min_value >= 0

    def is_temporal(self, column: str) -> bool:
        data_type = (self.columns.get(column) or "").lower()
        return data_type.startswith(("date", "timestamp"))

    def is_boolean(self, column: str) -> bool:
        return (self.columns.get(column) or "").lower() in ("boolean", "bool")


@dataclass(frozen=True)
class Catalog:
    models: Mapping[str, ModelInfo] = field(default_factory=dict)
    # models whose YAML lists no columns (or that have no YAML), with where they are
    unlisted: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> ModelInfo | None:
        return self.models.get(name)

    def unknown(self, name: str) -> str:
        """Why `name` is not a model KPIs can be measured on, for a message."""
        if name in self.unlisted:
            return (
                f"model '{name}' ({self.unlisted[name]}) has no column list: KPIs are measured"
                " on models whose YAML lists their columns with their data_type"
            )
        return f"unknown model '{name}'{did_you_mean(name, self.models)}"


def read_catalog(models_dir: Path, root: Path, skip: tuple[str, ...] = ("kpi",)) -> Catalog:
    """Every model documented in a YAML file under models_dir (except generated folders)."""
    models: dict[str, ModelInfo] = {}
    unlisted: dict[str, str] = {}
    for path in sorted(models_dir.rglob("*.yml")):
        if path.relative_to(models_dir).parts[0] in skip:
            continue
        text = path.read_text(encoding="utf-8")
        if "models:" not in text:
            continue
        data = yaml.load(text, Loader=_Loader) or {}
        rel = str(path.relative_to(root))
        for entry in data.get("models") or []:
            if isinstance(entry, dict) and entry.get("name"):
                line = _line_of(text, entry["name"])
                if entry.get("columns"):
                    models[entry["name"]] = _model(entry, Location(rel, line, 1))
                else:
                    unlisted[entry["name"]] = f"{rel}:{line}"
    for path in sorted(models_dir.rglob("*.sql")) if models_dir.is_dir() else []:
        if path.relative_to(models_dir).parts[0] not in skip and path.stem not in models:
            unlisted.setdefault(path.stem, str(path.relative_to(root)))
    return Catalog(models, unlisted)


def _model(entry: dict, location: Location) -> ModelInfo:
    columns: dict[str, str | None] = {}
    unique: set[str] = set()
    non_negative: set[str] = set()
    for col in entry.get("columns") or []:
        name = str(col["name"])
        columns[name] = col.get("data_type")
        tests = [*(col.get("data_tests") or []), *(col.get("tests") or [])]
        if any(_at_least_zero(t) for t in tests):
            non_negative.add(name)
        constraints = [c.get("type") for c in col.get("constraints") or []]
        if any(_test_name(t) == "unique" for t in tests) or {"unique", "primary_key"} & set(
            constraints
        ):
            unique.add(name)
    for constraint in entry.get("constraints") or []:
        if (
            constraint.get("type") in ("primary_key", "unique")
            and len(constraint.get("columns", [])) == 1
        ):
            unique.add(constraint["columns"][0])
    return ModelInfo(entry["name"], columns, frozenset(unique), location, frozenset(non_negative))


def _test_name(test: object) -> str:
    return test if isinstance(test, str) else next(iter(test)) if isinstance(test, dict) else ""


def _at_least_zero(test: object) -> bool:
    """An accepted_range test (dbt_utils' or our spelling) with min_value >= 0."""
    if not (isinstance(test, dict) and _test_name(test).endswith("accepted_range")):
        return False
    config = next(iter(test.values()))
    config = config if isinstance(config, dict) else {}
    minimum = (config.get("arguments") or config).get("min_value")
    return isinstance(minimum, int | float) and minimum >= 0


def _line_of(text: str, name: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() in (f"- name: {name}", f"- name: '{name}'", f'- name: "{name}"'):
            return number
    return 1
