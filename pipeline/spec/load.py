"""Load: metric YAML texts → Spec, every node keeping its file:line:col.

Structure (fields, types, allowed values) is checked here against schema.json, the
same schema editors use; meaning (models, columns, references) is checked in validate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from pipeline.errors import Issue, did_you_mean, error
from pipeline.spec import located_yaml
from pipeline.spec.located_yaml import LocatedDocument
from pipeline.spec.model import AGGREGATIONS, GRAINS, Config, Dimension, Kpi, Relationship, Spec

MEASURE_KEYS = (*AGGREGATIONS, "ratio", "derived")


@cache
def schema() -> dict[str, Any]:
    text = resources.files("pipeline.spec").joinpath("schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> Any:
    """jsonschema collects every violation with its path: used only when a file is invalid."""
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


@cache
def _fast_check() -> Any:
    """The schema compiled to Python: a quick yes for valid files (most of them)."""
    return fastjsonschema.compile(schema())


def conforms(value: Any) -> bool:
    try:
        _fast_check()(value)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def load(files: Mapping[str, str]) -> tuple[Spec, list[Issue]]:
    """Load metric files given as {path: text}; return what could be loaded and every issue."""
    kpis: list[Kpi] = []
    relationships: list[Relationship] = []
    configs: list[Config] = []
    issues: list[Issue] = []
    for path in sorted(files):
        doc, found = located_yaml.load(files[path], path)
        issues += found
        if doc is None or doc.value is None:
            continue
        if not isinstance(doc.value, dict):
            issues.append(error("a metric file must be a mapping with 'kpis:'", doc.at(())))
            continue
        broken = _schema_issues(doc, issues)
        for i, raw in enumerate(doc.value.get("kpis") or []):
            if ("kpis", i) not in broken and isinstance(raw, dict):
                kpi = _kpi(doc, ("kpis", i), raw, issues)
                if kpi is not None:
                    kpis.append(kpi)
        for i, raw in enumerate(doc.value.get("relationships") or []):
            if ("relationships", i) not in broken and isinstance(raw, dict):
                relationships.append(_relationship(doc, ("relationships", i), raw))
        if "config" in doc.value and ("config",) not in broken:
            configs.append(_config(doc, doc.value["config"] or {}))
    if len(configs) > 1:
        first = configs[0].location
        for extra in configs[1:]:
            assert extra.location is not None
            issues.append(
                error(f"'config' is already set in {first}; set it in one file", extra.location)
            )
    config = configs[0] if configs else Config()
    return Spec(tuple(kpis), tuple(relationships), config), issues


def _schema_issues(doc: LocatedDocument, issues: list[Issue]) -> set[tuple[str | int, ...]]:
    """Report schema violations; return the paths of top-level items too broken to load."""
    broken: set[tuple[str | int, ...]] = set()
    if conforms(doc.value):
        return broken
    for err in _validator().iter_errors(doc.value):
        path = tuple(err.absolute_path)
        issues.append(_describe(doc, err, path))
        broken.add(path[:2] if path and path[0] in ("kpis", "relationships") else path[:1])
    return broken


def _describe(doc: LocatedDocument, err: Any, path: tuple[Any, ...]) -> Issue:
    where = _subject(doc, path)
    field = next((str(p) for p in reversed(path) if isinstance(p, str)), "file")
    value = err.instance
    if err.validator == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        extra = sorted(k for k in value if k not in allowed)[0]
        hint = did_you_mean(extra, allowed)
        return error(f"{where}unknown field '{extra}'{hint}", doc.key_at((*path, extra)))
    if err.validator == "required":
        missing = next(r for r in err.validator_value if r not in value)
        return error(f"{where}missing required field '{missing}'", doc.at(path))
    if err.validator == "enum":
        choices = ", ".join(str(c) for c in err.validator_value)
        hint = did_you_mean(str(value), [str(c) for c in err.validator_value])
        return error(f"{where}{field} '{value}' is not one of: {choices}{hint}", doc.at(path))
    if err.validator == "pattern":
        return error(
            f"{where}{field} '{value}' must be lowercase letters, digits and underscores"
            " (and one '.' for model.column)",
            doc.at(path),
        )
    if err.validator == "type":
        return error(f"{where}{field} must be of type {err.validator_value}", doc.at(path))
    if err.validator == "oneOf" and path[-2:-1] == ("dimensions",):
        return error(
            f"{where}a dimension is a column name, 'model.column' or {{name, column}}", doc.at(path)
        )
    if err.validator == "uniqueItems":
        return error(f"{where}{field} lists an item twice", doc.at(path))
    if err.validator == "const":
        return error(f"{where}{field} must be {err.validator_value!r}", doc.at(path))
    if err.validator in ("minLength", "minItems", "minProperties"):
        return error(f"{where}{field} must not be empty", doc.at(path))
    return error(f"{where}{field}: {err.message}", doc.at(path))


def _subject(doc: LocatedDocument, path: tuple[Any, ...]) -> str:
    """'kpi 'revenue': ' when the path is inside a named KPI."""
    if len(path) >= 2 and path[0] == "kpis":
        item = doc.value["kpis"][path[1]]
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            return f"kpi '{item['name']}': "
    return ""


def _kpi(
    doc: LocatedDocument, path: tuple[str | int, ...], raw: dict[str, Any], issues: list[Issue]
) -> Kpi | None:
    name = raw["name"]
    locations = {key: doc.at((*path, key)) for key in raw}
    measures = [k for k in raw if k in MEASURE_KEYS]
    if not measures:
        keys = ", ".join(MEASURE_KEYS)
        issues.append(
            error(f"kpi '{name}': says what to compute with one of: {keys}", doc.at(path))
        )
        return None
    if len(measures) > 1:
        issues.append(
            error(
                f"kpi '{name}': '{measures[1]}' and '{measures[0]}' both given; a KPI computes one thing",
                doc.key_at((*path, measures[1])),
            )
        )
        return None
    measure = measures[0]
    fields: dict[str, Any] = {}
    if measure == "ratio":
        fields.update(
            kind="ratio",
            numerator=raw["ratio"]["numerator"],
            denominator=raw["ratio"]["denominator"],
        )
        locations["numerator"] = doc.at((*path, "ratio", "numerator"))
        locations["denominator"] = doc.at((*path, "ratio", "denominator"))
    elif measure == "derived":
        fields.update(kind="derived", formula=raw["derived"])
        locations["formula"] = locations["derived"]
    else:
        fields.update(kind="simple", agg=measure, expr=str(raw[measure]))
        locations["expr"] = locations[measure]
    dims = tuple(
        _dimension(doc, (*path, "dimensions", i), d)
        for i, d in enumerate(raw.get("dimensions", []))
    )
    return Kpi(
        name=name,
        label=raw.get("label") or name.replace("_", " ").capitalize(),
        category=raw["category"],
        file=doc.file,
        location=doc.at(path),
        description=(raw.get("description") or "").strip(),
        owner=raw.get("owner"),
        model=raw.get("model"),
        time=raw.get("time"),
        filter=raw.get("filter"),
        dimensions=dims,
        grains=tuple(g for g in GRAINS if g in raw.get("grains", GRAINS)),
        format=raw.get("format", "number"),
        unit=raw.get("unit"),
        direction=raw.get("direction", "higher"),
        locations=locations,
        **fields,
    )


def _dimension(
    doc: LocatedDocument, path: tuple[str | int, ...], raw: str | dict[str, str]
) -> Dimension:
    if isinstance(raw, str):
        return Dimension(name=raw.split(".")[-1], column=raw, location=doc.at(path))
    return Dimension(name=raw["name"], column=raw["column"], location=doc.at(path))


def _relationship(
    doc: LocatedDocument, path: tuple[str | int, ...], raw: dict[str, Any]
) -> Relationship:
    on = raw["on"]
    pairs = ((on, on),) if isinstance(on, str) else tuple(sorted(on.items()))
    return Relationship(raw["from"], raw["to"], pairs, doc.at(path))


def _config(doc: LocatedDocument, raw: dict[str, Any]) -> Config:
    return Config(
        week_start=raw.get("week_start", "monday"),
        dialect=raw.get("dialect", "duckdb"),
        location=doc.key_at(("config",)),
    )
