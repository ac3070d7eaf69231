"""SQL expressions inside metric YAML: parsed once with sqlglot and held to strict rules.

An expression is one SQL expression, never a statement, subquery, window or comment, and
calls only functions the project's dialect knows; row-level expressions (measures,
filters) hold no aggregate either, and a filter is proven true or false for each row.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.tokens import TokenType

from pipeline.errors import Location, did_you_mean

# sqlglot keeps statements (DROP, COPY, ATTACH, SET…) in these modules.
_STATEMENT_MODULES = ("sqlglot.expressions.ddl", "sqlglot.expressions.dml")
logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its fallback warnings are ours to report


class ExpressionError(ValueError):
    """An expression broke a rule; the message says which, `word` where (when known)."""

    def __init__(self, message: str, word: str | None = None) -> None:
        super().__init__(message)
        self.word = word


def parse(text: str, dialect: str, *, what: str, row_level: bool = True) -> exp.Expr:
    """A fresh copy of the parsed expression (callers may transform it)."""
    return _parse(text, dialect, what, row_level).copy()


@lru_cache(maxsize=8192)
def _parse(text: str, dialect: str, what: str, row_level: bool) -> exp.Expr:
    try:
        tokens = sqlglot.tokenize(text, read=dialect)
        if any(token.comments for token in tokens):
            raise ExpressionError(f"{what} must not contain SQL comments")
        parsed = [e for e in sqlglot.parse(text, read=dialect) if e is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0]
        raise ExpressionError(f"cannot parse {what} '{text}': {first}") from None
    if len(parsed) != 1:
        raise ExpressionError(
            f"{what} must be a single SQL expression, not {len(parsed)} statements"
        )
    if any(token.token_type == TokenType.SEMICOLON for token in tokens):
        raise ExpressionError(f"{what} must not contain ';' (it ends a SQL statement)")
    tree = parsed[0]
    if (isinstance(tree, exp.Query) and not isinstance(tree, exp.Subquery)) or any(
        type(node).__module__ in _STATEMENT_MODULES for node in tree.walk()
    ):
        raise ExpressionError(f"{what} must be an expression, not a {tree.key.upper()} statement")
    if tree.find(exp.Subquery, exp.Query):
        raise ExpressionError(f"{what} must not contain a subquery")
    if tree.find(exp.Window):
        raise ExpressionError(f"{what} must not contain a window function")
    if row_level and (agg := tree.find(exp.AggFunc)):
        raise ExpressionError(
            f"{what} must not contain an aggregate ({agg.sql(dialect)}): "
            "the KPI's type says how rows aggregate"
        )
    if tree.find(exp.Star):
        raise ExpressionError(f"{what} must not contain '*'")
    known = known_functions(dialect)
    for call in tree.find_all(exp.Anonymous):
        if call.name.lower() not in known:
            hint = did_you_mean(call.name.lower(), known)
            raise ExpressionError(
                f"{what}: unknown SQL function '{call.name}' in {dialect}{hint}", call.name
            )
    return tree


@lru_cache(maxsize=16)
def known_functions(dialect: str) -> frozenset[str]:
    """The functions sqlglot knows in `dialect` (others parse as anonymous calls, as do a
    few it knows, such as DuckDB's list_sort)."""
    return frozenset(name.lower() for name in Dialect.get_or_raise(dialect).parser_class.FUNCTIONS)


def is_keyword(name: str, dialect: str) -> bool:
    """Whether `name` cannot be an unquoted column: a reserved word of `dialect` or of DuckDB,
    which runs the generated models by default (its list holds PostgreSQL's reserved words,
    which sqlglot's postgres dialect does not list)."""
    return name.lower() in _reserved(dialect) | _reserved("duckdb")


@lru_cache(maxsize=16)
def _reserved(dialect: str) -> frozenset[str]:
    generator = Dialect.get_or_raise(dialect).generator_class
    return frozenset(word.lower() for word in generator.RESERVED_KEYWORDS)


CONDITIONS = "a comparison, IN, IS NULL, BETWEEN, LIKE, a boolean column, or NOT/AND/OR of those"
ColumnType = Callable[[exp.Column], tuple[str | None, bool]]  # declared type, is it boolean


def filter_problem(
    tree: exp.Expr, column_type: ColumnType, dialect: str
) -> tuple[str, str | None] | None:
    """None when a filter is proven true, false or NULL for each row, else why not and the
    word at fault."""
    wrong = _not_boolean(tree, column_type, dialect)
    return (f"filter must be true or false for each row: {wrong[0]}", wrong[1]) if wrong else None


def _not_boolean(
    tree: exp.Expr, column_type: ColumnType, dialect: str
) -> tuple[str, str | None] | None:
    node = tree.unnest()
    if isinstance(node, exp.Column):
        declared, boolean = column_type(node)
        name = node.sql(dialect)
        if boolean:
            return None
        if declared is None:
            return (
                f"column '{name}' has no declared data_type, so it is not known to be boolean:"
                f" declare it (data_type: boolean) or compare it ({name} = true)",
                name,
            )
        return f"column '{name}' is {declared}, not boolean", name
    parts = _boolean_parts(node)
    if parts is None:
        if isinstance(node, exp.Null | exp.Boolean) or annotate_types(
            node.copy(), dialect=dialect
        ).is_type(exp.DataType.Type.BOOLEAN):
            return None
        return f"{node.sql(dialect)} is not a condition ({CONDITIONS})", None
    return next(
        (p for p in (_not_boolean(part, column_type, dialect) for part in parts) if p), None
    )


def _boolean_parts(node: exp.Expr) -> list[exp.Expr] | None:
    """What must be boolean for `node` to be: NOT, AND, OR take conditions, and CASE, IF and
    COALESCE are conditions when all their results are; None for any other node."""
    if isinstance(node, exp.Not):
        return [node.this]
    if isinstance(node, exp.Connector | exp.Xor):
        return list(node.flatten())
    if isinstance(node, exp.Case):
        default = node.args.get("default")
        return [branch.args["true"] for branch in node.args["ifs"]] + ([default] if default else [])
    if isinstance(node, exp.If):
        return [node.args["true"]] + ([node.args["false"]] if node.args.get("false") else [])
    if isinstance(node, exp.Coalesce):
        return [node.this, *node.expressions]
    return None


@lru_cache(maxsize=8192)
def shape(text: str, dialect: str, row_level: bool = True) -> Hashable:
    """What an expression computes, written as a value: equal shapes, same expression up to
    case, spacing, redundant parentheses and the order of AND/OR terms."""
    return _shape(_parse(text, dialect, "expression", row_level))


def _shape(node: Any) -> Hashable:
    if isinstance(node, exp.Paren):
        return _shape(node.this)
    if isinstance(node, exp.Connector):  # AND / OR: flattened, order-free
        terms = [t for t in node.flatten()]
        return (node.key, tuple(sorted((_shape(t) for t in terms), key=repr)))
    if isinstance(node, exp.Identifier):
        return ("identifier", node.name if node.quoted else node.name.lower())
    if isinstance(node, exp.Expr):
        return (
            node.key,
            tuple(
                (k, _shape(v)) for k, v in sorted(node.args.items()) if v not in (None, [], False)
            ),
        )
    if isinstance(node, list):
        return tuple(_shape(v) for v in node)
    return node


def locate(location: Location, text: str, word: str | None) -> Location:
    """Where `word` stands inside a one-line expression written at `location` (no word: there)."""
    match = re.search(rf"\b{re.escape(word)}\b", text) if word else None
    if match is None or "\n" in text[: match.start()]:
        return location
    return Location(location.file, location.line, location.col + match.start())


def columns(tree: exp.Expr) -> list[exp.Column]:
    return list(tree.find_all(exp.Column))
