"""`kpi init`: what the tool needs in a dbt project, proposed from the project itself.

- `metrics/_project.yml`: the SQL dialect of the profile's adapter;
- a first KPI to edit: a row count over the first model whose YAML lists a date or
  timestamp column;
- per declared source without one, a starter expectations file from the source's columns
  (types) and its dbt tests (unique, not_null, accepted_values); a table whose YAML lists
  no columns takes them from the warehouse (the profile's DuckDB file), where it is.

In an empty folder it first writes a minimal dbt project on DuckDB. Nothing that exists is
overwritten. Every file is written from data (YAML dumps), never from templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pipeline.catalog import read_catalog
from pipeline.profile import read_yaml, rendered, target_output
from pipeline.quality.spec import SPEC_GLOB
from pipeline.warehouse.names import PUBLISHED_SCHEMA

# dbt adapter type -> the dialect of the metric expressions and generated models (the
# dialects config.dialect accepts)
DIALECTS = {"duckdb": "duckdb", "postgres": "postgres"}
DEFAULT_DIALECT = "duckdb"
# a column's declared data type -> its expectations type
TYPES = (
    (("timestamp", "datetime"), "timestamp"),
    (("date",), "date"),
    (("bool",), "boolean"),
    (("int", "bigint", "smallint", "tinyint", "hugeint"), "integer"),
    (("double", "float", "real", "decimal", "numeric", "number"), "number"),
)
_NAME = re.compile(r"[^a-z0-9_]+")


@dataclass
class Scaffold:
    """What `kpi init` wrote and what it noticed."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # already there: left as they were
    notes: list[str] = field(default_factory=list)


def init(root: Path) -> Scaffold:
    root = root.resolve()
    done = Scaffold()
    if not (root / "dbt_project.yml").is_file():
        _new_dbt_project(root, done)
    dialect, note = adapter_dialect(root)
    if note:
        done.notes.append(note)
    _write(
        root / "metrics" / "_project.yml",
        "# Project-wide settings of the KPI pipeline (docs/metrics.md).\n",
        {"version": 1, "config": {"week_start": "monday", "dialect": dialect}},
        done,
    )
    _first_kpi(root, done)
    for source in read_sources(root / "models"):
        _expectations(root, _with_warehouse_columns(root, source), done)
    return done


def adapter_dialect(root: Path) -> tuple[str, str | None]:
    """The dialect of the adapter of the project's profile, and a note when it is a guess."""
    name, output = target_output(root)
    if output is None:
        return DEFAULT_DIALECT, f"no profile '{name}' found: dialect set to {DEFAULT_DIALECT}"
    adapter = rendered(output.get("type", ""))
    if adapter in DIALECTS:
        return DIALECTS[adapter], None
    return DEFAULT_DIALECT, f"adapter '{adapter}' of profile '{name}' has no known dialect: set config.dialect in metrics/_project.yml"


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: dict[str, str | None]  # column -> declared data type
    tests: dict[str, list[Any]]  # column -> its dbt tests as written


@dataclass(frozen=True)
class Source:
    name: str
    file: Path  # the YAML declaring it
    tables: tuple[SourceTable, ...]


def read_sources(models_dir: Path) -> list[Source]:
    """Every source declared in the models' YAML files."""
    found: list[Source] = []
    for path in sorted(models_dir.rglob("*.yml")) if models_dir.is_dir() else []:
        data = read_yaml(path)
        if not isinstance(data, dict):
            continue
        for entry in data.get("sources") or []:
            if not isinstance(entry, dict) or not entry.get("name"):
                continue
            tables = []
            for table in entry.get("tables") or []:
                if not isinstance(table, dict) or not table.get("name"):
                    continue
                columns = [c for c in table.get("columns") or [] if isinstance(c, dict) and c.get("name")]
                tables.append(
                    SourceTable(
                        str(table["name"]),
                        {str(c["name"]): c.get("data_type") for c in columns},
                        {str(c["name"]): list(c.get("data_tests") or c.get("tests") or []) for c in columns},
                    )
                )
            found.append(Source(str(entry["name"]), path, tuple(tables)))
    return found


def _with_warehouse_columns(root: Path, source: Source) -> Source:
    """The source with the warehouse's columns (and types) for its tables whose YAML lists
    none, read where the gate reads them, when the profile's DuckDB file holds them."""
    import duckdb

    from pipeline.project import Project
    from pipeline.quality.sources import project_vars, source_tables
    from pipeline.quality.spec import SpecError

    warehouse = Project(root).warehouse
    if all(t.columns for t in source.tables) or not warehouse.is_file():
        return source
    try:  # a source the gate cannot place is reported by the build, with its location
        where = {t.table: t.relation for t in source_tables(root / "models", project_vars(root))
                 if t.source == source.name}
    except SpecError:
        return source
    tables = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in source.tables:
            relation = where.get(table.name)
            if not table.columns and relation is not None:
                found = con.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_schema = ? and table_name = ? order by ordinal_position",
                    [relation.schema, relation.name],
                ).fetchall()
                table = SourceTable(table.name, {str(c): str(t) for c, t in found}, table.tests)
            tables.append(table)
    return replace(source, tables=tuple(tables))


def starter_expectations(source: Source) -> dict[str, Any]:
    """An expectations document for a source: types, key and checks from its dbt tests."""
    tables: dict[str, Any] = {}
    for table in source.tables:
        if not table.columns:
            continue
        columns = {c: expectation_type(t) for c, t in table.columns.items()}
        unique = [c for c, tests in table.tests.items() if "unique" in _test_names(tests)]
        not_null = [c for c, tests in table.tests.items() if "not_null" in _test_names(tests)]
        checks: list[dict[str, Any]] = [{"unique": c, "policy": "block"} for c in unique]
        if not_null:
            checks.append({"not_null": not_null})
        for column, tests in table.tests.items():
            for test in tests:
                values = _accepted_values(test)
                if values is not None:
                    checks.append({"accepted_values": {"column": column, "values": values}})
        times = [c for c, t in columns.items() if t in ("date", "timestamp")]
        if times:
            checks.append({"not_in_future": times})
        checks.append({"not_empty": True})
        tables[table.name] = {
            "key": unique[0] if unique else next(iter(columns)),
            "columns": columns,
            "checks": checks,
        }
    return {"version": 1, "source": source.name, "tables": tables}


def expectation_type(data_type: str | None) -> str:
    text = (data_type or "").lower()
    for prefixes, kind in TYPES:
        if text.startswith(prefixes):
            return kind
    return "string"


def _expectations(root: Path, source: Source, done: Scaffold) -> None:
    models = root / "models"
    existing = [p for p in models.glob(SPEC_GLOB) if read_yaml(p, {}).get("source") == source.name]
    if existing:
        done.kept.append(existing[0])
        return
    document = starter_expectations(source)
    if not document["tables"]:
        done.notes.append(
            f"source '{source.name}' ({source.file.relative_to(root)}) lists no columns:"
            " no expectations proposed (list its columns with their data_type)"
        )
        return
    folder = source.file.parent
    if not folder.match(str(Path(SPEC_GLOB).parent)):  # the gate reads staging/<folder>/
        folder = models / "staging" / source.name
    _write(
        folder / f"_{source.name}__expectations.yml",
        f"# Starter expectations on source '{source.name}', proposed by `kpi init` from its\n"
        "# columns and dbt tests: review the key, types and checks (docs/quality.md).\n",
        document,
        done,
    )


def _first_kpi(root: Path, done: Scaffold) -> None:
    metrics = root / "metrics"
    if any(p.name != "_project.yml" for p in metrics.glob("**/*.yml")):
        return
    catalog = read_catalog(root / "models", root)
    for name, model in sorted(catalog.models.items()):
        time = next((c for c in model.columns if model.is_temporal(c)), None)
        if time is None:
            continue
        kpi = {
            "name": f"{_NAME.sub('_', name.lower())}_count",
            "label": f"{name.replace('_', ' ').capitalize()} rows",
            "description": f"Rows of {name} by {time}: edit it into your first KPI.",
            "category": "operational",
            "model": name,
            "time": time,
            "count": "*",
        }
        _write(
            metrics / f"{name}.yml",
            "# A first KPI, written by `kpi init`: edit it (docs/metrics.md).\n",
            {"kpis": [kpi]},
            done,
        )
        return
    done.notes.append(
        "no model's YAML lists a date or timestamp column with its data_type: KPIs are"
        " measured on models whose YAML lists their columns (docs/adopting.md)"
    )


def _new_dbt_project(root: Path, done: Scaffold) -> None:
    name = _NAME.sub("_", root.name.lower()).strip("_") or "kpis"
    if not name[0].isalpha():
        name = f"p_{name}"
    _write(
        root / "dbt_project.yml",
        "# A dbt project written by `kpi init`.\n",
        {
            "name": name,
            "version": "1.0.0",
            "config-version": 2,
            "profile": name,
            "model-paths": ["models"],
            "macro-paths": ["macros"],
            "seed-paths": ["seeds"],
            "test-paths": ["tests"],
        },
        done,
    )
    warehouse = f"{{{{ env_var('KPI_WAREHOUSE', 'warehouse/{name}.duckdb') }}}}"
    _write(
        root / "profiles.yml",
        "# dbt profiles of this project (DuckDB by default; `kpi` passes --profiles-dir here).\n",
        {
            name: {
                "target": "{{ env_var('KPI_TARGET', 'duckdb') }}",
                "outputs": {
                    "duckdb": {
                        "type": "duckdb",
                        "path": warehouse,
                        "schema": f"{{{{ env_var('KPI_SCHEMA', '{PUBLISHED_SCHEMA}') }}}}",
                        "threads": 1,
                    }
                },
            }
        },
        done,
    )
    for folder in ("models", "seeds", "macros"):
        (root / folder).mkdir(exist_ok=True)


def _write(path: Path, header: str, data: Any, done: Scaffold) -> None:
    if path.exists():
        done.kept.append(path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    path.write_text(header + text, encoding="utf-8")
    done.written.append(path)


def _test_names(tests: list[Any]) -> set[str]:
    return {t if isinstance(t, str) else next(iter(t), "") for t in tests if t}


def _accepted_values(test: Any) -> list[Any] | None:
    if not isinstance(test, dict) or "accepted_values" not in test:
        return None
    body = test["accepted_values"] or {}
    values = (body.get("arguments") or body).get("values")
    return list(values) if isinstance(values, list) else None
