"""The statements the tool runs on the warehouse itself (outside dbt), as sqlglot trees.

Every statement is built here: from builders (`exp.select(...)`, `exp.Create`), or from a
constant template whose `:name` placeholders are filled with nodes (`fill`); names and
values are nodes (quoted identifiers, literals) or `?` parameters, never pasted text. A
tree is generated in the connection's dialect (`execute`); what differs between engines
is data in `DIALECTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp, parse_one

from pipeline.plan.models import WIDE_NAMES
from pipeline.warehouse.names import (
    CATALOG_MART,
    COUNTS_TABLE,
    MART_KEYS,
    PUBLISHED_MARKER,
    PUBLISHED_SCHEMA,
    QUARANTINE_TABLE,
    RUNS_TABLE,
    SENT_TABLE,
    VALUES_MART,
    Relation,
)

TEMPLATE_DIALECT = "duckdb"  # the dialect the constant templates below are written in


# --- dialects -----------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """How an engine spells what the runtime statements need."""

    name: str  # sqlglot's dialect
    time_zone: str  # the session setting of the time zone
    row_text: Callable[[str], exp.Expr]  # a whole row (by its alias) as text
    transactions: bool  # several statements commit as one (else each on its own)


def _cast_row(alias: str) -> exp.Expr:
    return exp.cast(exp.column(alias), exp.DataType.build("text"))


DIALECTS = {
    d.name: d
    for d in (
        Dialect("duckdb", "TimeZone", _cast_row, transactions=True),
        Dialect("postgres", "TimeZone", _cast_row, transactions=True),
        Dialect(
            "spark",
            "spark.sql.session.timeZone",
            lambda alias: exp.func("to_json", exp.func("struct", exp.Star())),
            transactions=False,
        ),
    )
}
DUCKDB = DIALECTS["duckdb"]
# the class of a connection -> its engine's dialect
DRIVERS: dict[type, Dialect] = {duckdb.DuckDBPyConnection: DUCKDB}


def dialect_of(con: Any) -> Dialect:
    return next(d for driver, d in DRIVERS.items() if isinstance(con, driver))


def execute(con: Any, statement: exp.Expr, params: Any = None) -> Any:
    """Run `statement` on `con`, generated in the connection's dialect."""
    sql = statement.sql(dialect=dialect_of(con).name)
    return con.execute(sql) if params is None else con.execute(sql, params)


def executemany(con: Any, statement: exp.Expr, rows: Sequence[Sequence[Any]]) -> None:
    con.executemany(statement.sql(dialect=dialect_of(con).name), rows)


@contextmanager
def transaction(con: Any) -> Iterator[None]:
    """The statements inside commit together, or not at all (on an engine with
    transactions; elsewhere each takes effect when it runs)."""
    if not dialect_of(con).transactions:
        yield
        return
    execute(con, exp.Transaction())
    try:
        yield
        execute(con, exp.Commit())
    except BaseException:
        execute(con, exp.Rollback())
        raise


# --- quoting and nodes --------------------------------------------------------------


def quote_ident(name: str, dialect: str = DUCKDB.name) -> str:
    """An identifier, quoted."""
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def quote_literal(text: str, dialect: str = DUCKDB.name) -> str:
    """A string literal."""
    return exp.Literal.string(text).sql(dialect=dialect)


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def param() -> exp.Placeholder:
    """A `?` parameter."""
    return exp.Placeholder()


def timestamp(moment: datetime) -> exp.Expr:
    return exp.cast(exp.Literal.string(moment.isoformat(sep=" ")), exp.DataType.build("timestamp"))


@cache
def _parsed(template: str) -> exp.Expr:
    return parse_one(template, read=TEMPLATE_DIALECT)


def fill(template: str, **nodes: exp.Expr) -> exp.Expr:
    """A constant template (in TEMPLATE_DIALECT) with its `:name` (or `$name`) placeholders
    replaced by nodes (a table keeps the template's alias); named placeholders not given
    stay parameters."""

    def filled(node: exp.Expr) -> exp.Expr:
        if (
            isinstance(node, exp.Table)
            and isinstance(node.this, exp.Placeholder)
            and node.this.name in nodes
        ):
            table = nodes[node.this.name].copy()
            if node.alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(node.alias)))
            return table
        if isinstance(node, exp.Placeholder) and node.name in nodes:
            return nodes[node.name].copy()
        return node

    return _parsed(template).copy().transform(filled)


def setting(name: str, value: str | bool) -> exp.Set:
    """`SET name = value`."""
    node = exp.Boolean(this=value) if isinstance(value, bool) else exp.Literal.string(value)
    return exp.Set(expressions=[exp.SetItem(this=exp.EQ(this=exp.column(name), expression=node))])


def utc(con: Any) -> exp.Set:
    """The session's time zone set to UTC, as the connection's engine spells it."""
    return setting(dialect_of(con).time_zone, "UTC")


# --- schemas and the tool's own tables ----------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool = False


@dataclass(frozen=True)
class TableDef:
    relation: Relation
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    added: tuple[str, ...] = ()  # columns warehouses made before them lack (added on open)


META_TABLES = (
    TableDef(
        RUNS_TABLE,
        (
            Column("run_id", "varchar", True),
            Column("status", "varchar", True),
            Column("started_at", "timestamp"),
            Column("finished_at", "timestamp"),
            Column("published_at", "timestamp"),
            Column("as_of", "timestamp"),
            Column("detail", "varchar"),
            Column("inputs", "varchar"),  # the fingerprint of the run's raw inputs
            Column("published_tables", "varchar"),
        ),
        primary_key=("run_id",),
        added=("inputs", "published_tables"),
    ),
    TableDef(
        COUNTS_TABLE,
        (
            Column("run_id", "varchar", True),
            Column("table_name", "varchar", True),
            Column("raw_rows", "bigint", True),
            Column("passed_rows", "bigint", True),
            Column("quarantined_rows", "bigint", True),
        ),
        primary_key=("run_id", "table_name"),
    ),
    TableDef(
        QUARANTINE_TABLE,
        (
            Column("run_id", "varchar", True),
            Column("source", "varchar", True),
            Column("table_name", "varchar", True),
            Column("row_number", "bigint", True),
            Column("expectation", "varchar", True),
            Column("reason", "varchar", True),
            Column("row_json", "varchar"),
            Column("quarantined_at", "timestamp", True),
        ),
    ),
)
SENT_DEF = TableDef(
    SENT_TABLE,
    (
        Column("kind", "varchar", True),
        Column("kpi", "varchar", True),
        Column("grain", "varchar", True),
        Column("dimension", "varchar", True),
        Column("dimension_value", "varchar", True),
        Column("period_start", "date", True),
        Column("state", "varchar", True),
        Column("run_id", "varchar", True),
        Column("previous_run_id", "varchar", True),
        Column("sent_at", "timestamp", True),
    ),
)


def _column_def(c: Column) -> exp.ColumnDef:
    constraints = [exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())] if c.not_null else []
    return exp.ColumnDef(this=ident(c.name), kind=exp.DataType.build(c.type), constraints=constraints)


def create_table(table: TableDef) -> list[exp.Expr]:
    """CREATE TABLE IF NOT EXISTS, then the columns added since (IF NOT EXISTS)."""
    parts: list[exp.Expr] = [_column_def(c) for c in table.columns]
    if table.primary_key:
        parts.append(exp.PrimaryKey(expressions=[ident(k) for k in table.primary_key]))
    create = exp.Create(
        kind="TABLE", exists=True, this=exp.Schema(this=table.relation.node(), expressions=parts)
    )
    added = [
        exp.Alter(kind="TABLE", this=table.relation.node(),
                  actions=[exp.ColumnDef(**_column_def(c).args, exists=True)])
        for c in table.columns if c.name in table.added
    ]  # fmt: skip
    return [create, *added]


def create_schema(schema: str) -> exp.Create:
    return exp.Create(kind="SCHEMA", exists=True, this=exp.Table(db=ident(schema)))


def drop_schema(schema: str) -> exp.Drop:
    return exp.Drop(kind="SCHEMA", exists=True, cascade=True, tables=[exp.Table(db=ident(schema))])


def drop(relation: Relation, kind: str) -> exp.Drop:
    """DROP VIEW / TABLE IF EXISTS ... CASCADE."""
    return exp.Drop(kind=kind, exists=True, cascade=True, tables=[relation.node()])


def create_view(relation: Relation, query: exp.Expr) -> exp.Create:
    return exp.Create(kind="VIEW", this=relation.node(), expression=query)


def select_all(relation: Relation) -> exp.Select:
    return exp.select("*").from_(relation.node())


def insert(relation: Relation, values: Mapping[str, exp.Expr]) -> exp.Insert:
    """INSERT INTO relation (columns) VALUES (values)."""
    return exp.insert(
        exp.values([tuple(values.values())]), relation.node(), columns=[ident(c) for c in values]
    )


def insert_row(table: TableDef) -> exp.Insert:
    """INSERT of one row of every column, as `?` parameters."""
    return insert(table.relation, {c.name: param() for c in table.columns})


def update(
    relation: Relation, values: Mapping[str, exp.Expr], where: exp.Expr
) -> exp.Update:
    return exp.update(relation.node(), dict(values), where=where)


def select(
    relation: Relation,
    columns: Sequence[str | exp.Expr],
    where: exp.Expr | None = None,
    order: Sequence[str] = (),
) -> exp.Select:
    """SELECT columns FROM relation [WHERE ...] [ORDER BY ...]; string columns are names."""
    query = exp.select(*(column(c) if isinstance(c, str) else c for c in columns))
    query = query.from_(relation.node())
    if where is not None:
        query = query.where(where)
    return query.order_by(*(column(c) for c in order)) if order else query


def is_param(name: str) -> exp.Expr:
    """`name = ?`."""
    return column(name).eq(param())


def count_star() -> exp.Expr:
    return exp.Count(this=exp.Star())


# --- the catalog: schemas, tables, columns ------------------------------------------


def schemas() -> exp.Select:
    """The schemas of the current database."""
    return fill(
        "SELECT schema_name FROM information_schema.schemata "
        "WHERE catalog_name = current_database()"
    )  # type: ignore[return-value]


def tables(schema: str, *, base_only: bool = False) -> exp.Select:
    """table_name, table_type of the tables and views of `schema` (only tables when
    `base_only`), by name."""
    where: exp.Expr = column("table_schema").eq(exp.Literal.string(schema))
    if base_only:
        where = exp.and_(where, column("table_type").eq(exp.Literal.string("BASE TABLE")))
    return select(
        Relation("information_schema", "tables"), ["table_name", "table_type"], where, ["table_name"]
    )


def has_table(relation: Relation) -> exp.Select:
    """The number of tables named `relation` (0 or 1)."""
    return select(
        Relation("information_schema", "tables"),
        [count_star()],
        exp.and_(
            column("table_schema").eq(exp.Literal.string(relation.schema)),
            column("table_name").eq(exp.Literal.string(relation.name)),
        ),
    )


def describe(relation: Relation) -> exp.Describe:
    """The columns and types of a relation."""
    return exp.Describe(this=select_all(relation))


# --- publish ------------------------------------------------------------------------


def published(name: str) -> Relation:
    return Relation(PUBLISHED_SCHEMA, name)


def marker_view(run_id: str, now: datetime) -> exp.Create:
    """The view saying which run is published, since when."""
    query = exp.select(
        exp.alias_(exp.Literal.string(run_id), "run_id"), exp.alias_(timestamp(now), "published_at")
    )
    return create_view(published(PUBLISHED_MARKER), query)


def audit_queries(schema: str, tables: Sequence[str]) -> list[tuple[str, exp.Expr]]:
    """(name, query) of the audit's checks on a run's tables; each query returns the number
    of offending rows (see `publish.default_audit_checks`)."""
    def rel(table: str) -> exp.Table:
        return Relation(schema, table).node()

    checks: list[tuple[str, exp.Expr]] = [
        (f"{t}: has rows", fill("SELECT CASE WHEN count(*) = 0 THEN 1 ELSE 0 END FROM :t", t=rel(t)))
        for t in tables
    ]
    if VALUES_MART in tables:
        values = rel(VALUES_MART)
        checks.append(_unique(schema, VALUES_MART))
        checks.append((
            "kpi_values: no NaN or infinite values",
            fill("SELECT count(*) FROM :v WHERE isnan(value) OR isinf(value)", v=values),
        ))
        if CATALOG_MART in tables:
            joined = {"v": rel(VALUES_MART), "c": rel(CATALOG_MART)}
            checks.append((
                "kpi_values: no negative counts or durations",
                fill(
                    "SELECT count(*) FROM :v AS v JOIN :c AS c USING (kpi) WHERE c.kind = 'simple' "
                    "AND c.format IN ('number', 'duration') AND v.value < 0", **joined,
                ),
            ))
            checks.append((
                "kpi_values: rates within [0, 1]",
                fill(
                    "SELECT count(*) FROM :v AS v JOIN :c AS c USING (kpi) WHERE c.kind = 'ratio' "
                    "AND c.format = 'percent' AND (v.value < 0 OR v.value > 1)", **joined,
                ),
            ))
    return checks + [_unique(schema, t) for t in tables if t in WIDE_NAMES.values()]


def _unique(schema: str, table: str) -> tuple[str, exp.Expr]:
    keys = MART_KEYS[table]
    what = keys[0] if len(keys) == 1 else f"({', '.join(keys)})"
    return f"{table}: one row per {what}", duplicates(Relation(schema, table).node(), keys)


def duplicates(table: exp.Table, keys: Sequence[str]) -> exp.Expr:
    """The number of keys that more than one row of `table` has."""
    grouped = exp.select("1").from_(table).group_by(*(column(k) for k in keys))
    return exp.select(count_star()).from_(grouped.having(count_star() > 1).subquery())


def fingerprint(con: Any, relation: Relation) -> exp.Expr:
    """`<rows>:<md5 of the rows' md5s in order>`: equal for equal rows in any order."""
    return fill(
        "SELECT count(*) || ':' || coalesce(md5(string_agg(h, '' ORDER BY h)), '') "
        "FROM (SELECT md5(:row) AS h FROM :relation AS t)",
        row=dialect_of(con).row_text("t"),
        relation=relation.node(),
    )


# --- export -------------------------------------------------------------------------

COPY_OPTIONS: dict[str, tuple[tuple[str, exp.Expr], ...]] = {  # DuckDB's COPY options per format
    "parquet": (("FORMAT", exp.var("parquet")), ("COMPRESSION", exp.var("zstd"))),
    "csv": (("FORMAT", exp.var("csv")), ("HEADER", exp.true()), ("DELIMITER", exp.Literal.string(","))),
    "json": (("FORMAT", exp.var("json")), ("ARRAY", exp.true())),
}


def copy_to(query: exp.Query, path: Path, fmt: str) -> exp.Copy:
    """COPY (query) TO 'path' (the format's options)."""
    params = [
        exp.CopyParameter(this=exp.var(k), expression=v.copy()) for k, v in COPY_OPTIONS[fmt]
    ]
    return exp.Copy(
        this=query.subquery(), kind=False, files=[exp.Literal.string(str(path))], params=params
    )


def ordered(
    relation: Relation, columns: Sequence[str], keys: Sequence[str], where: exp.Expr | None = None
) -> exp.Select:
    """The rows of `relation` (its `columns`, every one when empty) ordered by `keys`."""
    return select(relation, columns or [exp.Star()], where, keys)


def distinct(relation: Relation, name: str, where: exp.Expr | None = None) -> exp.Select:
    """The distinct values of a column, in order."""
    return select(relation, [name], where, [name]).distinct()


# --- reading kpi_values -------------------------------------------------------------


def totals(relation: Relation, columns: Sequence[str]) -> exp.Select:
    """The unsliced rows (dimension 'total'), by KPI, grain and period."""
    total = column("dimension").eq(exp.Literal.string("total"))
    return select(relation, columns, total, ["kpi", "grain", "period_start"])


def latest_two(relation: Relation, columns: Sequence[str]) -> exp.Expr:
    """Every row of the latest two periods of each grain (those of any KPI's totals)."""
    return fill(
        "WITH latest AS (SELECT kpi, grain, period_start, row_number() OVER "
        "(PARTITION BY kpi, grain ORDER BY period_start DESC) AS k FROM :v WHERE dimension = 'total') "
        "SELECT * FROM :v WHERE (grain, period_start) IN "
        "(SELECT grain, period_start FROM latest WHERE k <= 2)",
        v=relation.node(),
    ).select(*(column(c) for c in columns), append=False)  # type: ignore[attr-defined]


def in_params(name: str, count: int) -> exp.Expr:
    """`name IN (?, ?, ...)`."""
    return column(name).isin(*(param() for _ in range(count)))


# --- diff ---------------------------------------------------------------------------


def attach(path: Path, name: str) -> exp.Attach:
    """ATTACH 'path' AS name (READ_ONLY)."""
    return exp.Attach(
        this=exp.alias_(exp.Literal.string(str(path)), name),
        expressions=[exp.AttachOption(this=exp.var("READ_ONLY"))],
    )


def counts_by_kpi(relation: exp.Table) -> exp.Select:
    return exp.select(column("kpi"), count_star()).from_(relation).group_by(column("kpi"))


# both sides' rows of the KPIs compared, paired on their keys (`:base`, `:head`: the two
# kpi_values; `pairs`: head_kpi, base_kpi; `:tolerance`: relative)
JOINED = """
CREATE TEMP TABLE joined AS
WITH b AS (
    SELECT p.head_kpi AS kpi, v.grain, v.period_start, v.dimension,
           v.dimension_value, v.value::double AS value
    FROM :base AS v JOIN pairs AS p ON v.kpi = p.base_kpi
), h AS (
    SELECT v.kpi, v.grain, v.period_start, v.dimension, v.dimension_value,
           v.value::double AS value
    FROM :head AS v JOIN pairs AS p ON v.kpi = p.head_kpi
)
SELECT coalesce(h.kpi, b.kpi) AS kpi, coalesce(h.grain, b.grain) AS grain,
       coalesce(h.period_start, b.period_start) AS period_start,
       coalesce(h.dimension, b.dimension) AS dimension,
       coalesce(h.dimension_value, b.dimension_value) AS dimension_value,
       b.value AS base_value, h.value AS head_value,
       b.kpi IS NOT NULL AS in_base, h.kpi IS NOT NULL AS in_head,
       h.value - b.value AS change,
       CASE WHEN b.value <> 0 THEN (h.value - b.value) / abs(b.value) END AS relative,
       b.kpi IS NOT NULL AND h.kpi IS NOT NULL AND (
           (b.value IS NULL) <> (h.value IS NULL)
           OR abs(h.value - b.value) > :tolerance * greatest(1, abs(b.value))
       ) AS moved
FROM b FULL JOIN h USING (kpi, grain, period_start, dimension, dimension_value)
"""
PAIRS_TABLE = "CREATE TEMP TABLE pairs (head_kpi VARCHAR, base_kpi VARCHAR)"
INSERT_PAIR = "INSERT INTO pairs VALUES (?, ?)"
MOVED_PER_KPI = """
SELECT kpi, count(*) FILTER (WHERE in_base AND in_head),
       count(*) FILTER (WHERE moved),
       count(*) FILTER (WHERE in_base AND NOT in_head),
       count(*) FILTER (WHERE in_head AND NOT in_base)
FROM joined GROUP BY kpi
"""
MOVED_PER_GRAIN = "SELECT kpi, grain, count(*) FROM joined WHERE moved GROUP BY kpi, grain"
TOP_MOVES = """
SELECT kpi, grain, period_start::varchar, dimension, dimension_value,
       base_value, head_value, change, relative
FROM (
    SELECT *, row_number() OVER (
        PARTITION BY kpi
        ORDER BY abs(change) DESC NULLS LAST, grain, period_start, dimension, dimension_value
    ) AS n
    FROM joined WHERE moved
) WHERE n <= ?
ORDER BY kpi, n
"""


def joined(base: exp.Table, head: exp.Table, tolerance: float) -> exp.Expr:
    return fill(JOINED, base=base, head=head, tolerance=exp.Literal.number(tolerance))


# --- alerts -------------------------------------------------------------------------

# the new run's rows paired with the old run's (`:new`, `:old`: their kpi_values), for the
# KPIs and grains of the `$kpis` and `$grains` parameters; each event kind selects from it
ALERT_PAIRS = """
WITH n AS (
    SELECT kpi, label, format, unit, grain, period_start, period_end, dimension,
           dimension_value, value,
           CASE WHEN is_partial_period THEN target_to_date ELSE target END AS target,
           attainment, status, is_partial_period, is_deviation, projected_value,
           projected_attainment, projected_status
    FROM :new WHERE list_contains(:kpis, kpi) AND list_contains(:grains, grain)
),
o AS (
    SELECT kpi, grain, period_start, dimension, dimension_value, status,
           is_partial_period, is_deviation
    FROM :old WHERE list_contains(:kpis, kpi) AND list_contains(:grains, grain)
),
n_series AS (
    SELECT kpi, grain, dimension, dimension_value, max(period_start) AS last_start
    FROM n GROUP BY ALL
),
o_series AS (
    SELECT o.kpi, o.grain, o.dimension, o.dimension_value, s.last_start AS previous_last_start,
           o.status AS previous_status
    FROM o JOIN (
        SELECT kpi, grain, dimension, dimension_value, max(period_start) AS last_start
        FROM o GROUP BY ALL
    ) AS s ON o.kpi = s.kpi AND o.grain = s.grain AND o.dimension = s.dimension
        AND o.dimension_value = s.dimension_value AND o.period_start = s.last_start
),
pairs AS (
    SELECT n.*, ns.last_start, os.previous_last_start, os.previous_status,
           o.is_partial_period AS was_partial, o.is_deviation AS was_deviation
    FROM n
    JOIN n_series AS ns USING (kpi, grain, dimension, dimension_value)
    JOIN o_series AS os USING (kpi, grain, dimension, dimension_value)
    LEFT JOIN o USING (kpi, grain, dimension, dimension_value, period_start)
)
SELECT * FROM pairs
"""


def alert_events(
    new: exp.Table, old: exp.Table, kinds: Sequence[tuple[str, str, str]]
) -> exp.Expr:
    """The pairs of rows each event kind (name, condition over the pairs, state) selects,
    with `kind` and `state` columns, in one UNION ALL BY NAME."""
    with_pairs = fill(ALERT_PAIRS, new=new, old=old)
    selects = [
        exp.select(
            exp.alias_(exp.Literal.string(name), "kind"),
            exp.Star(),
            exp.alias_(exp.cast(exp.maybe_parse(state, dialect=TEMPLATE_DIALECT), "varchar"), "state"),
        ).from_("pairs").where(exp.condition(where, dialect=TEMPLATE_DIALECT))
        for name, where, state in kinds
    ]
    union: exp.Expr = selects[0]
    for nxt in selects[1:]:
        union = exp.Union(this=union, expression=nxt, distinct=False, by_name=True)
    union.set("with_", with_pairs.args["with_"])
    return union


def sent_states() -> exp.Expr:
    """The last state sent per event key."""
    return fill(
        "SELECT kind, kpi, grain, dimension, dimension_value, period_start, "
        "arg_max(state, sent_at) FROM :sent GROUP BY ALL",
        sent=SENT_TABLE.node(),
    )
