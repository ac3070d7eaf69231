"""MetricFlow filters (`{{ Dimension('order__status') }} = 'x'`) as plain SQL over our columns.

The Jinja calls are found by a strict pattern that accepts only the exact call forms
below; each is swapped for a placeholder column, the text is parsed with sqlglot, and the
placeholders are replaced by column (or expression) nodes. Any other Jinja is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import exp

from pipeline.spec.expressions import ExpressionError, parse

# {{ Dimension('entity__dim') }}, {{ TimeDimension('entity__dim', 'grain') }}, {{ Entity('e') }}
_CALL = re.compile(
    r"""\{\{\s*(?P<kind>Dimension|TimeDimension|Entity)\(\s*
        (?P<q>['"])(?P<name>[a-z][a-z0-9_]*)(?P=q)\s*
        (?:,\s*(?P<q2>['"])(?P<grain>[a-z]+)(?P=q2)\s*)?
        \)\s*\}\}""",
    re.VERBOSE,
)
_JINJA = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
_PLACEHOLDER = "mf__ref__{}"
GRAINS = ("day", "week", "month", "quarter", "year")


class FilterError(ValueError):
    """A filter that cannot be translated; the message says why."""


# (kind, name, grain) -> the expression standing for it, or FilterError
Resolver = Callable[[str, str, str | None], exp.Expr]


def translate(text: str, dialect: str, resolve: Resolver) -> exp.Expr:
    """The filter as a sqlglot tree, with every Jinja call resolved."""
    calls: list[tuple[str, str, str | None]] = []

    def placeholder(match: re.Match[str]) -> str:
        kind, grain = match["kind"], match["grain"]
        if kind == "TimeDimension" and grain is None:
            raise FilterError(f"TimeDimension('{match['name']}') needs a grain")
        if kind != "TimeDimension" and grain is not None:
            raise FilterError(f"{kind}('{match['name']}', ...) takes one argument")
        calls.append((kind, match["name"], grain))
        return _PLACEHOLDER.format(len(calls) - 1)

    if "mf__ref__" in text:
        raise FilterError("the filter uses the reserved name mf__ref__")
    plain = _CALL.sub(placeholder, text)
    if leftover := _JINJA.search(plain):
        rest = plain[leftover.start() :].split("}}")[0][:60]
        raise FilterError(f"unsupported Jinja in the filter: '{rest.strip()}'")
    try:
        tree = parse(plain, dialect, what="filter")
    except ExpressionError as exc:
        raise FilterError(str(exc)) from None
    resolved = [resolve(kind, name, grain) for kind, name, grain in calls]

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table:
            match = re.fullmatch(_PLACEHOLDER.format(r"(\d+)"), node.name)
            if match:
                found = resolved[int(match[1])].copy()
                return found if isinstance(found, exp.Column | exp.Func) else exp.paren(found)
        return node

    return tree.transform(swap)


def at_grain(column: exp.Expr, grain: str) -> exp.Expr:
    """A time column truncated to a grain, as MetricFlow's TimeDimension(name, grain) means."""
    if grain not in GRAINS:
        raise FilterError(f"grain '{grain}' is not one of {', '.join(GRAINS)}")
    if grain == "day":
        return exp.cast(column, "date")
    return exp.DateTrunc(this=column, unit=exp.Literal.string(grain))
