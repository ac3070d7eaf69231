"""SQL expressions inside metric YAML: parsed once with sqlglot and held to strict rules.

An expression is one SQL expression, never a statement, subquery, window or comment;
row-level expressions (measures, filters) hold no aggregate either.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Hashable
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from pipeline.errors import Location

# sqlglot keeps statements (DROP, COPY, ATTACH, SET…) in these modules.
_STATEMENT_MODULES = ("sqlglot.expressions.ddl", "sqlglot.expressions.dml")
logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its fallback warnings are ours to report


class ExpressionError(ValueError):
    """An expression broke a rule; the message says which."""


def parse(text: str, dialect: str, *, what: str, row_level: bool = True) -> exp.Expr:
    """A fresh copy of the parsed expression (callers may transform it)."""
    return _parse(text, dialect, what, row_level).copy()


@lru_cache(maxsize=8192)
def _parse(text: str, dialect: str, what: str, row_level: bool) -> exp.Expr:
    try:
        if any(token.comments for token in sqlglot.tokenize(text, read=dialect)):
            raise ExpressionError(f"{what} must not contain SQL comments")
        parsed = [e for e in sqlglot.parse(text, read=dialect) if e is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0]
        raise ExpressionError(f"cannot parse {what} '{text}': {first}") from None
    if len(parsed) != 1:
        raise ExpressionError(
            f"{what} must be a single SQL expression, not {len(parsed)} statements"
        )
    tree = parsed[0]
    if tree.find(exp.Subquery, exp.Query):
        raise ExpressionError(f"{what} must not contain a subquery")
    if any(type(node).__module__ in _STATEMENT_MODULES for node in tree.walk()):
        raise ExpressionError(f"{what} must be an expression, not a {tree.key.upper()} statement")
    if tree.find(exp.Window):
        raise ExpressionError(f"{what} must not contain a window function")
    if row_level and (agg := tree.find(exp.AggFunc)):
        raise ExpressionError(
            f"{what} must not contain an aggregate ({agg.sql(dialect)}): "
            "the KPI's type says how rows aggregate"
        )
    if tree.find(exp.Star):
        raise ExpressionError(f"{what} must not contain '*'")
    return tree


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


def locate(location: Location, text: str, word: str) -> Location:
    """Where `word` stands inside a one-line expression written at `location`."""
    match = re.search(rf"\b{re.escape(word)}\b", text)
    if match is None or "\n" in text[: match.start()]:
        return location
    return Location(location.file, location.line, location.col + match.start())


def columns(tree: exp.Expr) -> list[exp.Column]:
    return list(tree.find_all(exp.Column))
