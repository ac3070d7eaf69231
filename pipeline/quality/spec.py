"""Expectations as code: load, validate and expand the `_<source>__expectations.yml` files.

The files live beside the dbt sources they guard (`models/staging/<source>/`), are
listed in `.dbtignore` so dbt never parses them, and are checked twice: against the
JSON Schema `expectations.schema.json` (shape), then by `_semantics` (columns that
exist, policies a check can have, parent tables that exist). Every mistake is an
issue at its file and line.

A table's spec expands into `Expectation`s, one per Great Expectations expectation:
`orders.not_null.customer_id`, `shipments.in_order.shipped_at.delivered_at`, ...
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from sqlglot import exp

from pipeline.errors import NOWHERE, Issue, Location, UserError, error
from pipeline.spec import expressions

Policy = Literal["block", "warn", "quarantine"]
Level = Literal["schema", "row", "table"]

SPEC_GLOB = "staging/*/_*__expectations.yml"
TYPES = ("integer", "number", "string", "date", "timestamp", "boolean")
ROW_KINDS = (
    "unique", "not_null", "references", "between", "accepted_values", "not_in_future", "in_order",
)
TABLE_KINDS = ("freshness", "volume", "not_empty")
KINDS = ROW_KINDS + TABLE_KINDS
TYPED_KINDS = ("between", "not_in_future", "in_order", "freshness")  # may set `as:`
TIME_TYPES = ("date", "timestamp")
_AS_HINT = " (a text column: state the type it reads as, e.g. `as: timestamp`)"
DEFAULT_MAX_QUARANTINE_PERCENT = 5.0
GATE_DIALECT = "duckdb"  # the gate checks the raw tables in DuckDB
WHERE = "references where"

_AGE = re.compile(
    r"^\s*(\d+)\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)\s*$", re.IGNORECASE
)


class SpecError(UserError):
    """One or more mistakes in expectations files, each an issue at its file and line."""


@dataclass(frozen=True)
class Expectation:
    """One expectation on one raw table; compiled into exactly one GX expectation."""

    id: str
    table: str
    kind: str  # a KINDS value, "columns" / "type" (schema), "cascade" / "readable" (implied)
    policy: Policy
    level: Level
    columns: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    description: str = ""
    max_quarantine_percent: float = DEFAULT_MAX_QUARANTINE_PERCENT
    location: Location = NOWHERE


@dataclass(frozen=True)
class Reference:
    """A foreign key: `column` of this table must be a `to` key of `table`."""

    column: str
    table: str
    to: str


@dataclass(frozen=True)
class TableSpec:
    source: str
    name: str
    key: tuple[str, ...]
    columns: Mapping[str, str] = field(hash=False, compare=False)
    expectations: tuple[Expectation, ...] = ()
    location: Location = NOWHERE

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(
            Reference(e.params["column"], e.params["table"], e.params["to"])
            for e in self.expectations
            if e.kind == "references"
        )

    def expectation(self, expectation_id: str) -> Expectation:
        for e in self.expectations:
            if e.id == expectation_id:
                return e
        raise KeyError(expectation_id)


def parse_age(text: str) -> timedelta:
    """'36h', '2 days', '1w', '90 min' -> timedelta."""
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"not an age: {text!r} (use e.g. 36h, 2d, 1w, 90min)")
    amount, unit = int(match.group(1)), match.group(2).lower()
    if unit.startswith("m"):
        return timedelta(minutes=amount)
    if unit.startswith("h"):
        return timedelta(hours=amount)
    if unit.startswith("d"):
        return timedelta(days=amount)
    return timedelta(weeks=amount)


def spec_files(models_dir: Path) -> list[Path]:
    return sorted(models_dir.glob(SPEC_GLOB))


def load_specs(models_dir: Path) -> list[TableSpec]:
    """Every table spec under models/staging/*/, validated across files; raise SpecError."""
    problems: list[Issue] = []
    tables: list[TableSpec] = []
    for path in spec_files(models_dir):
        try:
            name = path.relative_to(models_dir.parent)
        except ValueError:
            name = path
        try:
            tables.extend(parse_spec(path.read_text(encoding="utf-8"), str(name)))
        except SpecError as exc:
            problems.extend(exc.issues)
    problems.extend(_cross_file(tables))
    if problems:
        raise SpecError(problems)
    return order_tables(tables)


def parse_spec(text: str, filename: str = "<string>") -> list[TableSpec]:
    """One expectations file's text -> its table specs; raise SpecError with file:line."""
    try:
        data = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise SpecError(f"invalid YAML: {exc}", Location(filename, line)) from None
    if data is None:
        raise SpecError("empty expectations file", Location(filename, 1))
    problems = [
        error(_describe(err), Location(filename, _line(data, list(err.absolute_path))))
        for err in sorted(_validator().iter_errors(_plain(data)), key=lambda e: list(e.path))
    ]
    if problems:
        raise SpecError(problems)
    tables, problems = _semantics(data, filename)
    if problems:
        raise SpecError(problems)
    return tables


def order_tables(tables: Iterable[TableSpec]) -> list[TableSpec]:
    """Parents before children (references), then by name: quarantine cascades downwards."""
    by_name = {t.name: t for t in tables}
    done: list[TableSpec] = []
    seen: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in seen or name not in by_name:
            return
        if name in trail:
            raise SpecError(f"reference cycle {' -> '.join(trail)}", by_name[name].location)
        for ref in by_name[name].references:
            if ref.table != name:
                visit(ref.table, (*trail, name))
        seen.add(name)
        done.append(by_name[name])

    for name in sorted(by_name):
        visit(name, ())
    return done


# --- validation helpers -------------------------------------------------------------


def _validator() -> jsonschema.Draft202012Validator:
    text = resources.files("pipeline.quality").joinpath("expectations.schema.json").read_text()
    return jsonschema.Draft202012Validator(json.loads(text))


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _line(root: Any, path: Sequence[Any]) -> int:
    """1-based line of the deepest node of `path` that ruamel knows."""
    node, line = root, getattr(getattr(root, "lc", None), "line", 0)
    for step in path:
        if isinstance(node, CommentedMap) and step in node:
            line = node.lc.key(step)[0]
            node = node[step]
        elif isinstance(node, CommentedSeq) and isinstance(step, int) and step < len(node):
            line = node.lc.item(step)[0]
            node = node[step]
        else:
            break
    return line + 1


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "oneOf" and isinstance(error.instance, Mapping):
        kinds = [k for k in error.instance if k in KINDS]
        if not kinds:
            return f"{where}: a check needs one of {', '.join(KINDS)}"
        return f"{where}: a check has exactly one kind, found {', '.join(kinds)}"
    if error.validator == "additionalProperties":
        return f"{where}: {error.message}"
    return f"{where}: {error.message}"


def _loc(filename: str, node: Any, key: Any = None) -> Location:
    if key is not None and isinstance(node, CommentedMap) and key in node:
        return Location(filename, node.lc.key(key)[0] + 1)
    return Location(filename, getattr(getattr(node, "lc", None), "line", 0) + 1)


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _semantics(data: CommentedMap, filename: str) -> tuple[list[TableSpec], list[Issue]]:
    problems: list[Issue] = []
    source = str(data["source"])
    out: list[TableSpec] = []
    for table_name, body in data["tables"].items():
        where = _loc(filename, data["tables"], table_name)
        columns = {str(k): str(v) for k, v in body["columns"].items()}
        key = tuple(_as_list(body["key"]))
        for col in key:
            if col not in columns:
                problems.append(error(f"{table_name}.key: unknown column {col!r}", where))
        expectations: list[Expectation] = [
            Expectation(
                id=f"{table_name}.columns",
                table=table_name, kind="columns", policy="block", level="schema",
                columns=tuple(columns),
                params={"column_set": list(columns)},
                description=f"columns are exactly {', '.join(columns)}",
                location=where,
            ),
            *(
                Expectation(
                    id=f"{table_name}.type.{col}",
                    table=table_name, kind="type", policy="block", level="schema",
                    columns=(col,), params={"type": typ},
                    description=f"{col} is of type {typ}",
                    location=where,
                )
                for col, typ in columns.items()
            ),
        ]
        checks: Any = body.get("checks") or CommentedSeq()
        for index, check in enumerate(checks):
            line = Location(filename, checks.lc.item(index)[0] + 1)
            made, bad = _expand(table_name, columns, check, line)
            implied = {e.id for e in expectations if e.kind == "readable"}  # once per column
            expectations.extend(e for e in made if e.kind != "readable" or e.id not in implied)
            problems.extend(bad)
        seen: set[str] = set()
        for e in expectations:
            if e.id in seen:
                problems.append(
                    error(f"duplicate expectation id {e.id!r} (set `id:`)", e.location)
                )
            seen.add(e.id)
        out.append(
            TableSpec(source, str(table_name), key, columns, tuple(expectations), where)
        )
    return out, problems


def _expand(
    table: str, columns: Mapping[str, str], check: Mapping[str, Any], line: Location
) -> tuple[list[Expectation], list[Issue]]:
    """One check of the file -> its expectations (and the mistakes in it)."""
    kind = next(k for k in check if k in KINDS)
    checks = _Check(table, columns, check, kind, line)
    getattr(checks, f"_{kind}")(check[kind])
    checks.typed()
    return checks.made, checks.problems


class _Check:
    """Expanding one check: `_<kind>(value)` appends its expectations to `made`."""

    def __init__(
        self,
        table: str,
        columns: Mapping[str, str],
        check: Mapping[str, Any],
        kind: str,
        line: Location,
    ) -> None:
        self.table, self.columns, self.kind, self.line = table, columns, kind, line
        self.level: Level = "table" if kind in TABLE_KINDS else "row"
        self.policy: Policy = check.get("policy") or ("block" if self.level == "table" else "quarantine")
        self.max_quarantine_percent = float(
            check.get("max_quarantine_percent", DEFAULT_MAX_QUARANTINE_PERCENT)
        )
        self.given_id, self.given_description = check.get("id"), check.get("description")
        self.cast: str | None = check.get("as")
        self.made: list[Expectation] = []
        self.problems: list[Issue] = []
        if self.level == "table" and self.policy == "quarantine":
            self.problem(f"{kind} is about the whole table: policy block or warn")
        if self.cast is not None and kind not in TYPED_KINDS:
            self.problem(f"{kind}: `as:` is for {', '.join(TYPED_KINDS)} checks")

    def problem(self, text: str) -> None:
        self.problems.append(error(text, self.line))

    def make(self, suffix: str, cols: Sequence[str], params: dict[str, Any], text: str) -> None:
        if self.cast is not None:
            params = {**params, "as": self.cast}
            text = f"{text} (as {self.cast})"
        self.made.append(Expectation(
            id=self.given_id or f"{self.table}.{self.kind}{'.' if suffix else ''}{suffix}",
            table=self.table, kind=self.kind, policy=self.policy, level=self.level,
            columns=tuple(cols), params=params, description=self.given_description or text,
            max_quarantine_percent=self.max_quarantine_percent, location=self.line,
        ))

    def known(self, cols: Iterable[str]) -> bool:
        missing = [c for c in cols if c not in self.columns]
        for col in missing:
            self.problem(f"{self.kind}: {self.table} has no column {col!r} (see columns:)")
        return not missing

    def type_of(self, col: str) -> str:
        return self.cast or self.columns.get(col, "")

    def typed(self) -> None:
        """A check on a typed expression implies that the column's values read as the type
        (`<table>.as_<type>.<column>`, the check's policy): a value that does not is a
        row to report, never a NULL that passes."""
        if self.cast is None or self.problems:
            return
        for col in dict.fromkeys(c for e in list(self.made) for c in e.columns if "." not in c):
            self.made.append(Expectation(
                id=f"{self.table}.as_{self.cast}.{col}", table=self.table, kind="readable",
                policy=self.policy, level="row", columns=(col,), params={"type": self.cast},
                description=f"{col} reads as {self.cast}",
                max_quarantine_percent=self.max_quarantine_percent, location=self.line,
            ))

    def _not_null(self, value: str | Sequence[str]) -> None:
        self._each(value, "is not null")

    def _not_in_future(self, value: str | Sequence[str]) -> None:
        self._each(value, "is not after the as-of time")

    def _each(self, value: str | Sequence[str], text: str) -> None:
        cols = _as_list(value)
        if not self.known(cols):
            return
        if self.given_id and len(cols) > 1:
            self.problem("`id:` needs a single column")
        for col in cols:
            if self.kind == "not_in_future" and self.type_of(col) not in TIME_TYPES:
                self.problem(f"not_in_future: {col} is not a date or timestamp{_AS_HINT}")
            self.make(col, [col], {}, f"{col} {text}")

    def _unique(self, value: str | Sequence[str]) -> None:
        cols = _as_list(value)
        if self.known(cols):
            self.make(".".join(cols), cols, {}, f"({', '.join(cols)}) is unique")

    def _references(self, value: Mapping[str, Any]) -> None:
        col, parent = value["column"], value["table"]
        to = value.get("to", col)
        where = value.get("where")
        if where is not None:  # the gate's SQL gets sqlglot's tree of it, never the text
            try:
                where = expressions.parse(where, GATE_DIALECT, what=WHERE).sql(GATE_DIALECT)
            except expressions.ExpressionError as exc:
                self.problem(f"references: {exc}")
        if not self.known([col]):
            return
        params = {"column": col, "table": parent, "to": to, "where": where}
        self.make(col, [col], params, f"{col} references {parent}.{to}")
        # implied: a row whose parent was quarantined follows it into quarantine
        self.made.append(Expectation(
            id=f"{self.table}.cascade.{col}", table=self.table, kind="cascade",
            policy="quarantine", level="row", columns=(col,), params=params,
            description=f"the {parent} row that {col} references passed the gate",
            max_quarantine_percent=100.0, location=self.line,
        ))

    def _between(self, value: Mapping[str, Any]) -> None:
        col = value["column"]
        if not self.known([col]):
            return
        lo, hi = value.get("min"), value.get("max")
        if lo is not None and hi is not None and lo > hi:
            self.problem(f"between: min {lo} > max {hi}")
        if self.type_of(col) not in ("integer", "number"):
            self.problem(f"between: {col} is not a number{_AS_HINT}")
        params = {
            "min": lo, "max": hi,
            "strict_min": bool(value.get("strict_min", False)),
            "strict_max": bool(value.get("strict_max", False)),
        }
        low = "" if lo is None else f"{lo} {'<' if params['strict_min'] else '≤'} "
        high = "" if hi is None else f" {'<' if params['strict_max'] else '≤'} {hi}"
        self.make(col, [col], params, f"{low}{col}{high}")

    def _accepted_values(self, value: Mapping[str, Any]) -> None:
        col = value["column"]
        if self.known([col]):
            values = list(value["values"])
            self.make(col, [col], {"values": values}, f"{col} in {values}")

    def _in_order(self, value: Sequence[str]) -> None:
        cols = [str(c) for c in value]
        if not self.known([c for c in cols if "." not in c]):
            return
        for a, b in itertools.pairwise(cols):
            self.make(f"{a}.{b}", [a, b], {"earlier": a, "later": b}, f"{a} ≤ {b}")
        if self.given_id and len(self.made) > 1:
            self.problem("`id:` needs exactly two columns")

    def _freshness(self, value: Mapping[str, Any]) -> None:
        col = value["column"]
        if not self.known([col]):
            return
        if self.type_of(col) not in TIME_TYPES:
            self.problem(f"freshness: {col} is not a date or timestamp{_AS_HINT}")
        try:
            age = parse_age(str(value["max_age"]))
        except ValueError as error:
            self.problem(f"freshness: {error}")
            return
        self.make(col, [col], {"max_age": age, "max_age_text": str(value["max_age"])},
                  f"newest {col} no older than {value['max_age']} before as-of")

    def _volume(self, value: Mapping[str, Any]) -> None:
        params = {"max_drop": value.get("max_drop"), "max_growth": value.get("max_growth")}
        parts = []
        if params["max_drop"] is not None:
            parts.append(f"-{params['max_drop']:.0%}")
        if params["max_growth"] is not None:
            parts.append(f"+{params['max_growth']:.0%}")
        self.make("", [], params, f"row count within {' / '.join(parts)} of the last published run")

    def _not_empty(self, value: bool) -> None:
        self.make("", [], {}, "the table has at least one row")


def _cross_file(tables: Sequence[TableSpec]) -> list[Issue]:
    problems: list[Issue] = []
    by_name: dict[str, TableSpec] = {}
    for t in tables:
        if t.name in by_name:
            problems.append(
                error(f"table {t.name!r} also declared at {by_name[t.name].location}", t.location)
            )
        by_name[t.name] = t
    for t in tables:
        for e in t.expectations:
            if e.kind == "references":
                parent = by_name.get(e.params["table"])
                if parent is None:
                    problems.append(
                        error(f"references unknown table {e.params['table']!r}", e.location)
                    )
                elif e.params["to"] not in parent.columns:
                    problems.append(
                        error(f"{parent.name} has no column {e.params['to']!r}", e.location)
                    )
                elif e.params["where"]:
                    problems += _where_problems(e, parent)
            if e.kind == "in_order":
                for col in e.columns:
                    if "." in col:
                        parent_name, parent_col = col.split(".", 1)
                        refs = [r for r in t.references if r.table == parent_name]
                        if not refs:
                            problems.append(error(
                                f"in_order uses {col}: declare a `references` "
                                f"to {parent_name} in {t.name} first", e.location
                            ))
                        elif parent_name in by_name and parent_col not in by_name[parent_name].columns:
                            problems.append(
                                error(f"{parent_name} has no column {parent_col!r}", e.location)
                            )
    return problems


def _where_problems(e: Expectation, parent: TableSpec) -> list[Issue]:
    """A reference's `where:` is vetted like a metric filter: the parent's columns only,
    and true or false for each row (parsing refused statements, subqueries, comments)."""
    tree = expressions.parse(e.params["where"], GATE_DIALECT, what=WHERE)
    unknown = [c for c in expressions.columns(tree) if c.table or c.name not in parent.columns]
    if unknown:
        return [
            error(f"{WHERE}: {parent.name} has no column {c.sql()!r}", e.location) for c in unknown
        ]

    def column_type(column: exp.Column) -> tuple[str | None, bool]:
        declared = parent.columns.get(column.name)
        return declared, declared == "boolean"

    problem = expressions.filter_problem(tree, column_type, GATE_DIALECT)
    return [error(f"{WHERE}: {problem[0]}", e.location)] if problem else []
