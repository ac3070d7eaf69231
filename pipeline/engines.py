"""The engines the KPI models are also rendered for (`config.engines`), beside the models of
the project's own dialect, and what differs on each, as data.

An engine's models are the same plan printed in its sqlglot dialect, in a folder of their
own (`models/kpi_<engine>/`), enabled only on the dbt targets of its adapters; the project's
models are disabled there. Metric expressions stay in the project's dialect: each is
transpiled, after the engine's rewrites, and one that has no faithful equivalent is a
validation error naming the construct (`untranslatable`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from pipeline.spec.expressions import known_functions

Rewrite = Callable[[exp.Expr], exp.Expr]  # a node -> its engine's equivalent (or itself)
Gap = Callable[[exp.Expr], str | None]  # a node -> why it has no faithful equivalent


def _exact_median(node: exp.Expr) -> exp.Expr:
    """PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x) as Spark's exact PERCENTILE(x, q)
    (sqlglot prints the approximate PERCENTILE_APPROX)."""
    if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.PercentileCont):
        ordered = node.expression.expressions[0]
        return exp.Quantile(this=ordered.this.copy(), quantile=node.this.this.copy())
    return node


def _sunday_zero_dow(node: exp.Expr) -> exp.Expr:
    """EXTRACT(DOW …) counts Sunday as 0 in DuckDB and PostgreSQL, as 1 in Spark."""
    if isinstance(node, exp.Extract) and node.name.upper() in ("DOW", "DAYOFWEEK"):
        return exp.paren(exp.Sub(this=node.copy(), expression=exp.Literal.number(1)))
    return node


ISO_FIELDS = {"ISOYEAR": "YEAROFWEEK", "ISODOW": "DAYOFWEEK_ISO"}  # PostgreSQL's -> Spark's


def _iso_fields(node: exp.Expr) -> exp.Expr:
    """EXTRACT of an ISO week-numbering year or ISO day of week, by Spark's names."""
    if isinstance(node, exp.Extract) and (field := ISO_FIELDS.get(node.name.upper())):
        node.set("this", exp.var(field))
    return node


def _unmaterialized(node: exp.Expr) -> exp.Expr:
    """Spark has no MATERIALIZED hint on a CTE (its optimizer decides)."""
    if isinstance(node, exp.CTE) and node.args.get("materialized"):
        node.set("materialized", None)
    return node


def _no_equivalent(node: exp.Expr) -> str | None:
    if isinstance(node, exp.AtTimeZone):
        return "AT TIME ZONE (Spark converts time zones with other rules)"
    if isinstance(node, exp.RegexpILike):
        return "a case-insensitive regular expression match (~*)"
    return None


@dataclass(frozen=True)
class Engine:
    name: str  # sqlglot's dialect
    target_types: tuple[str, ...]  # the dbt adapters whose targets build these models
    rewrites: tuple[Rewrite, ...] = ()
    gaps: tuple[Gap, ...] = ()

    @property
    def folder(self) -> str:
        return f"kpi_{self.name}"

    def rewrite(self, tree: exp.Expr) -> exp.Expr:
        for rule in self.rewrites:
            tree = tree.transform(rule, copy=False)
        return tree


ENGINES = {
    e.name: e
    for e in (
        Engine(
            "spark",
            target_types=("spark", "databricks"),
            rewrites=(_exact_median, _sunday_zero_dow, _iso_fields, _unmaterialized),
            gaps=(_no_equivalent,),
        ),
    )
}


def untranslatable(tree: exp.Expr, engine: Engine) -> str | None:
    """Why an expression of the project's dialect cannot run on `engine`, or None."""
    for node in tree.walk():
        for gap in engine.gaps:
            if why := gap(node):
                return why
    rewritten = engine.rewrite(tree.copy())
    try:
        text = rewritten.sql(dialect=engine.name, unsupported_level=ErrorLevel.RAISE)
        printed = sqlglot.parse_one(text, read=engine.name)
    except (UnsupportedError, ParseError) as exc:
        return str(exc).splitlines()[0]
    known = known_functions(engine.name)
    for call in printed.find_all(exp.Anonymous):
        if call.name.lower() not in known:
            return f"function {call.name.upper()} (no {engine.name} equivalent)"
    return None


def problems(tree: exp.Expr, names: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(engine, why) for each of the engines `names` (known ones) `tree` cannot run on."""
    for name in names:
        if name in ENGINES and (why := untranslatable(tree, ENGINES[name])):
            yield name, why
