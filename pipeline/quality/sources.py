"""Where each dbt source table is: the relation the gate reads, from the project's YAML.

dbt's `sources:` entries (any `.yml` under models/) name a table's database, schema and
identifier (dbt's defaults: the target's database, the source's name, the table's name).
The gate reads each table there. A value may be literal text or hold
`{{ var('name', 'default') }}` and `{{ env_var('NAME', 'default') }}` (the project's
`vars:` and the environment); any other Jinja is refused with its location, since the
gate would read a relation other than dbt's.

A source whose schema follows `var('raw_schema')` reads the gate's validated input
during `kpi build` (the build sets that var to `run_<id>_input`), so the rows the gate
sets aside never reach the models; any other source is read by dbt where it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from pipeline.errors import Issue, Location, error
from pipeline.quality.spec import SpecError, TableSpec
from pipeline.warehouse.names import Relation

INPUT_VAR = "raw_schema"  # the var kpi build sets to the gate's input schema
_FOLLOWS = "__kpi_gate_input__"  # a stand-in value of INPUT_VAR, to see who follows it
_CALL = re.compile(
    r"""\{\{\s*(var|env_var)\(\s*['"]([\w.]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)\s*\}\}"""
)


@dataclass(frozen=True)
class SourceTable:
    source: str
    table: str
    relation: Relation  # where it is
    gated: bool  # dbt reads the gate's input for it during kpi build (schema follows INPUT_VAR)
    location: Location  # of its `- name:` entry


def source_tables(
    models_dir: Path, project_vars: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> list[SourceTable]:
    """Every table of the dbt sources under `models_dir`, resolved; raise SpecError."""
    problems: list[Issue] = []
    out: list[SourceTable] = []
    for path, data in _source_files(models_dir, problems):
        name = _display(path, models_dir)
        for source in data.get("sources") or []:
            if not isinstance(source, CommentedMap):
                continue
            for table in source.get("tables") or []:
                if isinstance(table, CommentedMap) and "name" in table:
                    try:
                        out.append(_resolve(source, table, name, project_vars, env))
                    except _Problem as problem:
                        problems.append(problem.issue)
    problems += _collisions(out)
    if problems:
        raise SpecError(problems)
    return out


def project_vars(root: Path) -> dict[str, Any]:
    """dbt_project.yml's `vars:`: the global ones, then those scoped to the project."""
    from pipeline.profile import read_yaml

    config = read_yaml(root / "dbt_project.yml", {}) or {}
    values = config.get("vars") or {} if isinstance(config, dict) else {}
    scoped = values.get(config.get("name")) if isinstance(values, dict) else None
    merged = {k: v for k, v in values.items() if not isinstance(v, dict)}
    return {**merged, **(scoped if isinstance(scoped, dict) else {})}


def guarded(
    specs: Sequence[TableSpec], tables: Sequence[SourceTable]
) -> tuple[dict[str, SourceTable], list[SourceTable]]:
    """(table name -> its source table for every spec, the source tables no spec guards);
    raise SpecError for a spec that no dbt source declares."""
    by_key = {(t.source, t.table): t for t in tables}
    found: dict[str, SourceTable] = {}
    problems: list[Issue] = []
    for spec in specs:
        table = by_key.get((spec.source, spec.name))
        if table is None:
            problems.append(error(
                f"{spec.source}.{spec.name} is not a table of a dbt source "
                f"(declare it under `sources:` in a YAML file of models/)",
                spec.location,
            ))
        else:
            found[spec.name] = table
    if problems:
        raise SpecError(problems)
    named = {(s.source, s.name) for s in specs}
    return found, [t for t in tables if (t.source, t.table) not in named]


def _source_files(models_dir: Path, problems: list[Issue]) -> Iterator[tuple[Path, CommentedMap]]:
    for path in sorted([*models_dir.rglob("*.yml"), *models_dir.rglob("*.yaml")]):
        if path.name.endswith("__expectations.yml"):
            continue
        text = path.read_text(encoding="utf-8")
        if "sources:" not in text:
            continue
        try:
            data = YAML(typ="rt").load(text)
        except YAMLError as problem:
            problems.append(error(f"invalid YAML: {problem}", Location(_display(path, models_dir), 1)))
            continue
        if isinstance(data, CommentedMap):
            yield path, data


def _display(path: Path, models_dir: Path) -> str:
    try:
        return str(path.relative_to(models_dir.parent))
    except ValueError:
        return str(path)


class _Problem(Exception):
    """A located mistake in a sources file, raised where it is found."""

    def __init__(self, issue: Issue):
        super().__init__(str(issue))
        self.issue = issue


def _resolve(
    source: CommentedMap, table: CommentedMap, filename: str,
    values: Mapping[str, Any], env: Mapping[str, str] | None,
) -> SourceTable:
    location = Location(filename, table.lc.line + 1)

    def value(node: CommentedMap, key: str, default: str | None, follow: bool = False) -> str | None:
        if node.get(key) is None:
            return default
        where = Location(filename, node.lc.key(key)[0] + 1)
        given = {**values, INPUT_VAR: _FOLLOWS} if follow else values
        return _render(str(node[key]), given, env, where, key)

    source_name = str(source["name"])
    schema = value(source, "schema", source_name) or source_name
    relation = Relation(
        schema=schema,
        name=value(table, "identifier", str(table["name"])) or str(table["name"]),
        database=value(source, "database", None) or None,
    )
    gated = value(source, "schema", source_name, follow=True) != schema
    return SourceTable(source_name, str(table["name"]), relation, gated, location)


def _render(
    text: str, values: Mapping[str, Any], env: Mapping[str, str] | None, where: Location, key: str
) -> str:
    environment = {**os.environ, **(env or {})}

    def call(match: re.Match[str]) -> str:
        kind, name, default = match.groups()
        found = values.get(name) if kind == "var" else environment.get(name)
        if found is None:
            found = default
        if found is None:
            raise _Problem(error(f"{key}: {kind}('{name}') has no value and no default", where))
        return str(found)

    rendered = _CALL.sub(call, text)
    if "{{" in rendered or "{%" in rendered:
        raise _Problem(error(
            f"{key}: the gate cannot tell which relation {text!r} names: write "
            "text, {{ var('name', 'default') }} or {{ env_var('NAME', 'default') }}",
            where,
        ))
    return rendered.strip()


def _collisions(tables: Sequence[SourceTable]) -> list[Issue]:
    """Two tables read through the gate's input need different identifiers (one schema)."""
    seen: dict[str, SourceTable] = {}
    problems: list[Issue] = []
    for t in tables:
        if not t.gated:
            continue
        other = seen.setdefault(t.relation.name, t)
        if other is not t:
            problems.append(error(
                f"{t.source}.{t.table} and {other.source}.{other.table} "
                f"({other.location}) both read {t.relation.name!r} from the gate's input "
                "schema: give one another identifier",
                t.location,
            ))
    return problems
