"""Load: metric YAML texts → Spec, every node keeping its file:line:col.

Structure (fields, types, allowed values) is checked here against schema.json, the
same schema editors use; meaning (models, columns, references) is checked in validate.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import re
import sys
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import fastjsonschema

from pipeline.errors import Issue, Location, did_you_mean, error
from pipeline.jinja import delimiter_in
from pipeline.spec import located_yaml
from pipeline.spec.located_yaml import LocatedDocument
from pipeline.spec.model import (
    AGGREGATIONS,
    CATEGORIES,
    GRAINS,
    WINDOW_UNITS,
    Activity,
    Config,
    Conversion,
    Cumulative,
    Deviation,
    Dimension,
    Event,
    KindParams,
    Kpi,
    Lifetime,
    Offset,
    Relationship,
    Snapshot,
    Spec,
    Target,
    Thresholds,
    Window,
)

# the key saying what a KPI computes → its kind
KIND_KEYS = {
    **dict.fromkeys(AGGREGATIONS, "simple"),
    "ratio": "ratio",
    "derived": "derived",
    "cumulative": "cumulative",
    "lifetime_value": "lifetime",
    "conversion": "conversion",
    "retention": "retention",
    "churn": "churn",
    "snapshot": "snapshot",
    "offset": "offset",
}
MEASURE_KEYS = tuple(KIND_KEYS)
MAX_SCHEMA_ERRORS = 50  # per file: a list of 100,000 wrong items gets a few lines, quickly


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
    """The schema compiled to Python: a quick yes for valid files (most of them). Compiling
    it costs more than checking a thousand KPIs, so its bytecode is kept in the user's cache
    folder, named by the schema, fastjsonschema's version and Python's."""
    version = f"{fastjsonschema.VERSION} {sys.implementation.cache_tag} {json.dumps(schema())}"
    key = hashlib.sha256(version.encode()).hexdigest()[:16]
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kpi-pipeline"
    cached = folder / f"schema_check_{key}.bin"
    try:
        code = marshal.loads(cached.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        source = fastjsonschema.compile_to_code(schema())
        entry = re.search(r"^def (\w+)", source, re.MULTILINE)
        assert entry is not None
        code = compile(f"{source}\ncheck = {entry[1]}\n", "schema_check", "exec")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            written = cached.with_suffix(f".{os.getpid()}.tmp")
            written.write_bytes(marshal.dumps(code))
            written.replace(cached)  # whole, even with other processes at it
        except OSError:  # no writable cache folder: compiled again next time
            pass
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace["check"]


def conforms(value: Any) -> bool:
    try:
        _fast_check()(value)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def load(files: Mapping[str, str | bytes]) -> tuple[Spec, list[Issue]]:
    """Load metric files given as {path: text or UTF-8 bytes}; return what could be loaded
    and every issue."""
    kpis: list[Kpi] = []
    relationships: list[Relationship] = []
    targets: list[Target] = []
    configs: list[Config] = []
    unloaded: set[str] = set()
    unparsed: set[str] = set()
    issues: list[Issue] = []
    for path in sorted(files):
        if delimiter := delimiter_in(path):
            issues.append(error(f"file name must not contain {_jinja(delimiter)}", Location(path)))
        doc, found = located_yaml.load(files[path], path)
        issues += found
        if doc is None:
            unparsed.add(path)
            continue
        if not isinstance(doc.value, dict):
            issues.append(_not_a_metric_file(doc))
            if doc.value is not None:  # a list or a scalar: what it meant to declare is unknown
                unparsed.add(path)
            continue
        broken = _schema_issues(doc, issues)
        if broken is None:
            unparsed.add(path)
            continue
        issues += _jinja_issues(doc, doc.value, ())
        for i, raw in enumerate(_items(doc, "kpis")):
            kpi = None
            if ("kpis", i) not in broken and isinstance(raw, dict):
                kpi = _kpi(doc, ("kpis", i), raw, issues)
            if kpi is not None:
                kpis.append(kpi)
            elif isinstance(raw, dict) and isinstance(raw.get("name"), str):
                unloaded.add(raw["name"])
        for i, raw in enumerate(_items(doc, "relationships")):
            if ("relationships", i) not in broken and isinstance(raw, dict):
                relationships.append(_relationship(doc, ("relationships", i), raw))
        for i, raw in enumerate(_items(doc, "targets")):
            if ("targets", i) not in broken and isinstance(raw, dict):
                targets.append(_target(doc, ("targets", i), raw))
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
    spec = Spec(
        tuple(kpis),
        tuple(relationships),
        config,
        tuple(targets),
        frozenset(unloaded),
        frozenset(unparsed),
    )
    return spec, issues


def _not_a_metric_file(doc: LocatedDocument) -> Issue:
    if doc.value is None:
        return error("empty metric file: it declares nothing (add kpis:, or delete it)", doc.at(()))
    return error(
        "a metric file must be a mapping of kpis:, relationships:, targets: or config:,"
        f" not {_given(doc.value)}",
        doc.at(()),
    )


def _items(doc: LocatedDocument, key: str) -> list[Any]:
    """A top-level list; anything else there is a schema violation, already reported."""
    items = doc.value.get(key)
    return items if isinstance(items, list) else []


def _schema_issues(doc: LocatedDocument, issues: list[Issue]) -> set[tuple[str | int, ...]] | None:
    """Report schema violations; return the paths of top-level items too broken to load,
    or None after MAX_SCHEMA_ERRORS (the rest is not checked, and nothing is loaded)."""
    broken: set[tuple[str | int, ...]] = set()
    if conforms(doc.value):
        return broken
    for count, err in enumerate(_validator().iter_errors(doc.value)):
        path = tuple(err.absolute_path)
        if count == MAX_SCHEMA_ERRORS:
            message = f"more errors follow; the first {MAX_SCHEMA_ERRORS} are listed"
            issues.append(error(message, doc.at(path)))
            return None
        issues.append(_describe(doc, err, path))
        broken.add(
            path[:2] if path and path[0] in ("kpis", "relationships", "targets") else path[:1]
        )
    return broken


_JSON_TYPES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "empty",
}
_BOUNDS = {
    "minimum": "at least",
    "exclusiveMinimum": "greater than",
    "maximum": "at most",
    "exclusiveMaximum": "less than",
}


def _describe(doc: LocatedDocument, err: Any, path: tuple[Any, ...]) -> Issue:
    where = _subject(doc, path)
    field = _field(path)
    value = err.instance
    given = _given(value)
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
        if isinstance(value, dict | list):
            return error(f"{where}{field} must be one of: {choices}, not {given}", doc.at(path))
        hint = did_you_mean(str(value), [str(c) for c in err.validator_value])
        return error(f"{where}{field} '{value}' is not one of: {choices}{hint}", doc.at(path))
    if err.validator == "pattern":
        expected = err.schema.get("description") or f"text matching {err.validator_value}"
        return error(f"{where}{field} '{value}': expected {expected}", doc.at(path))
    if err.validator == "type":
        return error(
            f"{where}{field} must be {_types(err.validator_value)}, not {given}", doc.at(path)
        )
    if err.validator in _BOUNDS:
        bound = f"{_BOUNDS[err.validator]} {err.validator_value}"
        return error(f"{where}{field} must be {bound}, not {given}", doc.at(path))
    if err.validator == "oneOf" and path[-2:-1] == ("dimensions",):
        return error(
            f"{where}a dimension is a column name, 'model.column' or {{name, column}}", doc.at(path)
        )
    if err.validator in ("oneOf", "anyOf") and err.context:
        # the alternatives the value has the type of say what is wrong with it
        mistypes = [e for e in err.context if e.validator == "type" and not e.relative_path]
        others = [e for e in err.context if e not in mistypes]
        if not others:
            types = _types([e.validator_value for e in mistypes])
            return error(f"{where}{field} must be {types}, not {given}", doc.at(path))
        from jsonschema.exceptions import best_match

        best = best_match(others)
        return _describe(doc, best, tuple(best.absolute_path))
    if err.validator == "uniqueItems":
        return error(f"{where}{field} lists an item twice", doc.at(path))
    if err.validator == "const":
        return error(f"{where}{field} must be {err.validator_value!r}", doc.at(path))
    if err.validator in ("minLength", "minItems", "minProperties"):
        return error(f"{where}{field} must not be empty", doc.at(path))
    if err.validator == "maxLength":
        return error(
            f"{where}{field} must be at most {err.validator_value} characters", doc.at(path)
        )
    if err.validator == "maxProperties":
        most = err.validator_value
        entries = "one entry" if most == 1 else f"at most {most} entries"
        return error(f"{where}{field} takes {entries}", doc.at(path))
    return error(f"{where}{field}: {err.message}", doc.at(path))


def _jinja(delimiter: str) -> str:
    return f"'{delimiter}' (dbt would run it as Jinja)"


def _jinja_issues(doc: LocatedDocument, value: Any, path: tuple[str | int, ...]) -> list[Issue]:
    """Every key and text of the file holding a Jinja delimiter: generated models and their
    YAML carry the files' text, and dbt renders both with Jinja."""
    names = [p for p in path if isinstance(p, str)]
    field = ".".join(names[1:] if names[:1] == ["kpis"] and len(names) > 1 else names)
    where = _subject(doc, path) + (field or "file")
    if isinstance(value, str):
        found = delimiter_in(value)
        return [error(f"{where} must not contain {_jinja(found)}", doc.at(path))] if found else []
    issues = []
    for key, item in value.items() if isinstance(value, dict) else enumerate(value):
        if isinstance(key, str) and (found := delimiter_in(key)):
            issues.append(
                error(f"{where} key must not contain {_jinja(found)}", doc.key_at((*path, key)))
            )
        if isinstance(item, str | dict | list):
            issues += _jinja_issues(doc, item, (*path, key))
    return issues


def _field(path: tuple[Any, ...]) -> str:
    """How messages name the value at path: 'deviation.k', or 'window' for an item of windows."""
    if path and isinstance(path[-1], int):
        name = next((p for p in reversed(path) if isinstance(p, str)), "item")
        return name.removesuffix("s")
    keys: list[str] = []
    for p in reversed(path):
        if not isinstance(p, str):
            break
        keys.insert(0, p)
    return ".".join(keys) or "file"


def _types(names: str | list[Any]) -> str:
    """JSON-schema type names (a name, or a list of names or lists) in words: 'text or a list'."""
    listed = [names] if isinstance(names, str) else names
    flat = [n for t in listed for n in ([t] if isinstance(t, str) else t)]
    return " or ".join(_JSON_TYPES.get(n, n) for n in flat)


def _given(value: Any) -> str:
    """A value as messages show it: 'x', 5, true, a list, a mapping."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "empty"
    if isinstance(value, str):
        return f"'{value[:40]}…'" if len(value) > 40 else f"'{value}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return str(value)


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
            error(f"kpi '{name}': say what it computes with one of: {keys}", doc.at(path))
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
    if KIND_KEYS[measure] not in ("simple", "ratio", "derived"):
        block = raw[measure]
        fields.update(kind=KIND_KEYS[measure], params=_params(KIND_KEYS[measure], block))
        for key, value in block.items() if measure != "cumulative" else ():
            locations[f"{measure}.{key}"] = doc.at((*path, measure, key))
            for sub in value if isinstance(value, dict) else ():
                locations[f"{measure}.{key}.{sub}"] = doc.at((*path, measure, key, sub))
    elif measure == "ratio":
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
        strategic=bool(raw.get("strategic", False)),
        targets=tuple(
            _target(doc, (*path, "targets", i), t) for i, t in enumerate(raw.get("targets", []))
        ),
        thresholds=_thresholds(raw["status"]) if "status" in raw else None,
        windows=tuple(_window(w) for w in raw.get("windows", [])),
        deviation=_deviation(raw["deviation"]) if "deviation" in raw else None,
        locations=locations,
        **fields,
    )


def _params(kind: str, block: Any) -> KindParams:
    """A kind's block as its typed parameters (its keys and types as the schema checked)."""
    if kind == "cumulative":
        return Cumulative(of=block)
    if kind == "offset":
        return Offset(**block)
    if kind == "conversion":
        return Conversion(
            base=Event(**block["base"]),
            event=Event(**block["event"]),
            within_days=block["within_days"],
        )
    made: type[Lifetime | Activity | Snapshot] = {
        "lifetime": Lifetime,
        "retention": Activity,
        "churn": Activity,
        "snapshot": Snapshot,
    }[kind]
    return made(**block)


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
        engines=tuple(raw.get("engines", ())),
        thresholds=_thresholds(raw.get("status", {})),
        deviation=_deviation(raw.get("deviation", {})),
        strategic_limit=raw.get("strategic_limit", 10),
        categories=tuple(raw.get("categories", CATEGORIES)),
        publish=tuple(raw.get("publish", ())),
        incremental_lookback_days=raw.get("incremental", {}).get("lookback_days"),
        location=doc.key_at(("config",)),
    )


def _target(doc: LocatedDocument, path: tuple[str | int, ...], raw: dict[str, Any]) -> Target:
    where = next(iter(raw["where"].items())) if raw.get("where") else None
    common: dict[str, Any] = {
        "location": doc.at(path),
        "kpi": raw.get("kpi"),
        "per": raw.get("per"),
        "where": (where[0], _text(where[1])) if where else None,
        "valid_from": _text(raw["from"]) if "from" in raw else None,
        "valid_to": _text(raw["to"]) if "to" in raw else None,
    }
    if "series" in raw:
        series = tuple((_text(k), float(v)) for k, v in raw["series"].items())
        return Target(kind="series", series=series, **common)
    if "growth" in raw:
        return Target(kind="growth", growth=float(raw["growth"]), **common)
    return Target(kind="value", value=float(raw["value"]) if "value" in raw else None, **common)


def _text(value: Any) -> str:
    """YAML scalars as the marts spell them (dates ISO, booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _thresholds(raw: dict[str, Any]) -> Thresholds:
    default = Thresholds()
    return Thresholds(raw.get("on_track", default.on_track), raw.get("at_risk", default.at_risk))


def _deviation(raw: dict[str, Any]) -> Deviation:
    default = Deviation()
    return Deviation(raw.get("periods", default.periods), raw.get("k", default.k))


def _window(text: str) -> Window:
    return Window(int(text[:-1]), WINDOW_UNITS[text[-1]])
