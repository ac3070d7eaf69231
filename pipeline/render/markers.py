"""Nodes of the generated trees standing for what only dbt knows when a model runs: another
model, the model's stored table, the first day a daily run recomputes. render/dbt.py's
generator prints each as the compiler's own fixed Jinja; no other Jinja reaches a file.

Each is a sqlglot `Placeholder` of one of our `kind`s (sqlglot's compiled build allows no
new node classes); `IF(<daily run>, increment, full)` stands for a derived table that
differs between a daily run and a full build.

render/sql.py and render/tracking.py name these by placeholders (`sql.ref_table`,
`sql.THIS`, `sql.RECOMPUTE_FROM`, `sql.INCREMENTAL_PREFIX` tables), which render/dbt.py
turns into these nodes before printing (`_dbt_nodes`).
"""

from __future__ import annotations

from sqlglot import exp

REF, THIS, RECOMPUTE_FROM, RECOMPUTED_DAYS, DAILY_RUN = (
    "kpi_ref", "kpi_this", "kpi_recompute_from", "kpi_recomputed_days", "kpi_daily_run",
)
KINDS = (REF, THIS, RECOMPUTE_FROM, RECOMPUTED_DAYS, DAILY_RUN)


def kind_of(node: exp.Expr) -> str | None:
    """The marker `node` is, if it is one."""
    if isinstance(node, exp.Placeholder) and node.args.get("kind") in KINDS:
        return str(node.args["kind"])
    return None


def ref(model: str) -> exp.Placeholder:
    """A table's name: the model `model`, dbt's `{{ ref('model') }}`."""
    return exp.Placeholder(this=model, kind=REF)


def this() -> exp.Placeholder:
    """A table's name: the model's own stored table, dbt's `{{ this }}`."""
    return exp.Placeholder(kind=THIS)


def recompute_from() -> exp.Placeholder:
    """The first day a daily run recomputes: a DATE constant of the run (NULL on a full
    build of a measure model)."""
    return exp.Placeholder(kind=RECOMPUTE_FROM)


def recomputed_days(column: str) -> exp.Placeholder:
    """True for rows whose source column `column` is on or after the first recomputed day
    of an activity model (kept by `first_day`); true on a full build."""
    return exp.Placeholder(this=column, kind=RECOMPUTED_DAYS)


def choice(increment: exp.Expr, full: exp.Expr, alias: str) -> exp.Table:
    """A derived table that is the query `increment` on a daily run (the stored table
    exists) and `full` on a full build."""
    return exp.Table(
        this=choice_of(increment, full), alias=exp.TableAlias(this=exp.to_identifier(alias))
    )


def choice_of(increment: exp.Expr, full: exp.Expr) -> exp.If:
    return exp.If(this=exp.Placeholder(kind=DAILY_RUN), true=increment, false=full)


def is_choice(node: exp.Expr) -> bool:
    return isinstance(node, exp.If) and kind_of(node.this) == DAILY_RUN
