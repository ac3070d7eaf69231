"""Nodes of the generated trees standing for what only dbt knows when a model runs: another
model, the model's stored table, the first day a daily run recomputes. render/dbt.py's
generator prints each as the compiler's own fixed Jinja; no other Jinja reaches a file.

render/sql.py and render/tracking.py name these by placeholders (`sql.ref_table`,
`sql.THIS`, `sql.RECOMPUTE_FROM`, `sql.INCREMENTAL_PREFIX` tables), which render/dbt.py
turns into these nodes before printing (`_dbt_nodes`).
"""

from __future__ import annotations

from typing import ClassVar

from sqlglot import exp


class Ref(exp.Expression):
    """A table's name: the model `this` (a name), dbt's `{{ ref('name') }}`."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}


class This(exp.Expression):
    """A table's name: the model's own stored table, dbt's `{{ this }}`."""

    arg_types: ClassVar[dict[str, bool]] = {}


class RecomputeFrom(exp.Expression):
    """The first day a daily run recomputes: a DATE constant of the run (NULL on a full
    build of a measure model)."""

    arg_types: ClassVar[dict[str, bool]] = {}


class RecomputedDays(exp.Expression, exp.Condition):
    """True for rows whose source column `this` is on or after the first recomputed day of
    an activity model (kept by `first_day`); true on a full build."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}


class Choice(exp.Expression):
    """A table's name: a derived table that is the query `increment` on a daily run (the
    stored table exists) and `full` on a full build."""

    arg_types: ClassVar[dict[str, bool]] = {"increment": True, "full": True}


def choice(increment: exp.Expr, full: exp.Expr, alias: str) -> exp.Table:
    return exp.Table(
        this=Choice(increment=increment, full=full),
        alias=exp.TableAlias(this=exp.to_identifier(alias)),
    )
