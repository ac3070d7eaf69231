"""Loading file-based raw data into the warehouse: dbt seeds, or Parquet files.

The normal case needs neither: the dbt sources are already in the warehouse and the
gate reads them where they are. Seeds go where dbt seed puts them (the demo: `raw`);
Parquet files go to each dbt source table's relation (`quality.sources`).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlglot import exp

from pipeline import publish
from pipeline.project import DEFAULT_PARQUET_LAYOUT, DbtError, Project
from pipeline.quality.read import column, sql
from pipeline.quality.run import GateError
from pipeline.quality.sources import SourceTable
from pipeline.quality.spec import GATE_DIALECT, TableSpec
from pipeline.quality.values import converts
from pipeline.warehouse.names import Relation
from pipeline.warehouse.sql import fill

_PLACEHOLDER = re.compile(r"\{(\w*)\}")
_NAMES = ("source", "table", "identifier")


@dataclass(frozen=True)
class Loaded:
    tables: list[str]  # source.table of each table loaded
    notes: list[str]  # what was not loaded, and why


def seed(project: Project) -> str | None:
    """Load seeds/ with `dbt seed --full-refresh` (replacing the tables).

    When dbt cannot load a seed's CSV with its declared column types (a retyped column:
    text in a DECIMAL column), that CSV is loaded by `load_raw_csvs` instead, keeping
    such columns as text, so that the gate can say which column drifted and show sample
    values; returns dbt's error in that case (None when dbt seed succeeded). A dbt error
    that failed no seed (the project does not parse or compile) is raised. A table dbt
    loaded by reading values its own way (it drops a timestamp's time-zone offset) is
    loaded again by `load_raw_csvs`, so that the gate sees those values as written.
    """
    try:
        project.dbt(["seed", "--full-refresh"])
    except DbtError as error:
        if not error.failed:
            raise
        types = seed_column_types(project.seeds_dir)
        failed = [types.get(name, (name, {}))[0] for name in error.failed]
        con = publish.connect(project.warehouse)
        try:
            load_raw_csvs(con, project.seeds_dir, tables=failed)
        finally:
            con.close()
        return str(error)
    con = publish.connect(project.warehouse)
    try:
        load_raw_csvs(con, project.seeds_dir, misread_only=True)
    finally:
        con.close()
    return None


def check_layout(layout: str) -> str:
    """The layout of Parquet files under the folder, or ValueError saying what is wrong."""
    names = _PLACEHOLDER.findall(layout)
    unknown = [n for n in names if n not in _NAMES]
    if unknown:
        raise ValueError(
            f"Parquet layout {layout!r}: unknown placeholder {{{unknown[0]}}} "
            f"(use {', '.join('{' + n + '}' for n in _NAMES)})"
        )
    if "table" not in names and "identifier" not in names:
        raise ValueError(f"Parquet layout {layout!r} must hold {{table}} or {{identifier}}")
    if Path(layout).is_absolute() or ".." in Path(layout).parts:
        raise ValueError(f"Parquet layout {layout!r} must be a path inside the folder")
    return layout


def parquet_files(folder: Path, layout: str, table: SourceTable) -> tuple[str, list[str]]:
    """(the pattern, the files it matches) of one source table (a layout may hold globs)."""
    relative = layout.format(
        source=table.source, table=table.table, identifier=table.relation.name
    )
    pattern = str(folder / relative)
    return pattern, sorted(glob.glob(pattern))


def load_parquet(
    project: Project,
    folder: Path,
    tables: Sequence[SourceTable],
    specs: Sequence[TableSpec],
    *,
    layout: str = DEFAULT_PARQUET_LAYOUT,
    progress: Callable[[str], None] | None = None,
) -> Loaded:
    """Load each dbt source table from its files under `folder` (`layout`), replacing the
    table at the source's relation: the data that does not fit in seeds.

    Every table an expectations file guards must have its file; an unguarded one without
    a file is noted. Loading nothing at all is an error, never a silent pass."""
    check_layout(layout)
    guarded = {(s.source, s.name): s for s in specs}
    found, missing, notes = [], [], []
    for table in tables:
        pattern, files = parquet_files(folder, layout, table)
        spec = guarded.get((table.source, table.table))
        if files:
            found.append((table, files))
        elif spec is not None:
            missing.append(f"{pattern} (declared at {spec.location})")
        else:
            notes.append(f"{table.source}.{table.table}: no Parquet file {pattern}; not loaded")
    if missing:
        raise GateError("no Parquet file for raw table(s): " + "; ".join(missing))
    if not found:
        raise GateError(
            f"no Parquet file under {folder} for any of the {len(tables)} dbt source "
            f"table(s) (layout {layout}): nothing to load"
        )
    con = publish.connect(project.warehouse)
    try:
        for table, files in found:
            if progress is not None:
                progress(table.table)
            relation = table.relation
            con.execute(sql(fill("CREATE SCHEMA IF NOT EXISTS $s",
                                     s=exp.to_identifier(relation.schema, quoted=True))))
            con.execute(sql(fill(
                "CREATE OR REPLACE TABLE $rel AS SELECT * FROM read_parquet($files)",
                rel=relation.node(),
                files=exp.Array(expressions=[exp.Literal.string(f) for f in files]),
            )))
    finally:
        con.close()
    return Loaded([f"{t.source}.{t.table}" for t, _ in found], notes)


def seed_column_types(seeds_dir: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """seed name -> (relation name, column_types), from the YAML files of seeds/."""
    from ruamel.yaml import YAML

    out: dict[str, tuple[str, dict[str, str]]] = {}
    for path in sorted(seeds_dir.rglob("*.yml")):
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("seeds") or []:
            config = entry.get("config") or {}
            types = config.get("column_types") or {}
            name = str(entry["name"])
            out[name] = (str(config.get("alias") or name), {str(k): str(v) for k, v in types.items()})
    return out


def load_raw_csvs(
    con: duckdb.DuckDBPyConnection, seeds_dir: Path, tables: Sequence[str] | None = None,
    *, misread_only: bool = False,
) -> list[str]:
    """Load the seed CSVs (all, or those of `tables`) into `raw`, replacing the tables;
    with `misread_only`, only those holding a value that does not convert.

    A column gets its declared `column_types` type when every value converts exactly
    (`quality.values.converts`: no rounding, no time-zone offset), else stays text
    (VARCHAR), so that the gate reports the column and the rows that break it.
    """
    types = seed_column_types(seeds_dir)
    con.execute(sql(fill("CREATE SCHEMA IF NOT EXISTS $s",
                             s=exp.to_identifier(publish.RAW_SCHEMA, quoted=True))))
    loaded = []
    for path in sorted(seeds_dir.rglob("*.csv")):
        table, declared_types = types.get(path.stem, (path.stem, {}))
        if tables is not None and table not in tables:
            continue
        con.execute(sql(fill(
            "CREATE OR REPLACE TEMP TABLE __seed_text AS SELECT * FROM "
            "read_csv($path, all_varchar = true, header = true)",
            path=exp.Literal.string(str(path)),
        )))
        columns = [str(r[0]) for r in con.execute("DESCRIBE __seed_text").fetchall()]
        kinds = {c: exp.DataType.build(declared_types[c], dialect=GATE_DIALECT)
                 for c in columns if c in declared_types}
        fits: dict[str, bool] = {}
        if kinds:
            checks = [
                fill("count(*) FILTER (WHERE $v IS NOT NULL AND NOT ($ok)) = 0", v=column(c),
                         ok=fill(converts("$v", kind.sql(GATE_DIALECT)), v=column(c)))
                for c, kind in kinds.items()
            ]
            row = con.execute(sql(exp.select(*checks).from_("__seed_text"))).fetchone()
            fits = dict(zip(kinds, row or (), strict=True))
        if misread_only and all(fits.values()):
            continue
        select = [
            exp.alias_(exp.cast(column(c), kinds[c]), c, quoted=True) if fits.get(c) else column(c)
            for c in columns
        ]
        query = exp.select(*select).from_("__seed_text")
        con.execute(sql(fill("CREATE OR REPLACE TABLE $rel AS $q", q=query,
                                 rel=Relation(publish.RAW_SCHEMA, table).node())))
        loaded.append(table)
    con.execute("DROP TABLE IF EXISTS __seed_text")
    return loaded
