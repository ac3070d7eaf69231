"""What differs on another engine is data (pipeline/engines.py): each rewrite gives the
engine's equivalent, and an expression without one is named, not transpiled silently."""

from __future__ import annotations

import pytest
from sqlglot import exp, parse_one

from pipeline.engines import ENGINES, untranslatable
from pipeline.render.builders import days_between

SPARK = ENGINES["spark"]


def _spark(sql: str) -> str:
    return SPARK.rewrite(parse_one(sql, read="postgres")).sql("spark")


@pytest.mark.parametrize(
    ("postgres", "spark"),
    [
        # sqlglot alone prints the approximate PERCENTILE_APPROX
        (
            "select percentile_cont(0.5) within group (order by x) from t",
            "SELECT PERCENTILE(x, 0.5) FROM t",
        ),
        # Sunday is 0 in PostgreSQL and DuckDB, 1 in Spark
        ("select extract(dow from d) from t", "SELECT (EXTRACT(DOW FROM d) - 1) FROM t"),
        ("select extract(isoyear from d) from t", "SELECT EXTRACT(YEAROFWEEK FROM d) FROM t"),
        ("select extract(isodow from d) from t", "SELECT EXTRACT(DAYOFWEEK_ISO FROM d) FROM t"),
        (
            "with a as materialized (select 1 as x) select x from a",
            "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
        ),
    ],
)
def test_a_rewrite_gives_spark_s_equivalent(postgres: str, spark: str):
    assert _spark(postgres) == spark


def test_a_difference_of_days_is_a_number_on_every_engine():
    """Spark's difference of two dates is an interval: the day count is DATEDIFF there."""
    days = days_between(exp.column("a"), exp.column("b"))
    assert days.sql("postgres") == "(CAST(b AS DATE) - CAST(a AS DATE))"
    assert days.sql("spark") == "DATEDIFF(DAY, a, b)"


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("ordered_at at time zone 'UTC'", "AT TIME ZONE"),
        ("status ~* '^ship'", "case-insensitive regular expression"),
        # Spark capitalises after whitespace only, PostgreSQL after any non-alphanumeric
        ("initcap(status)", "INITCAP"),
    ],
)
def test_an_expression_without_an_equivalent_is_named(expression: str, why: str):
    problem = untranslatable(parse_one(expression, read="postgres"), SPARK)
    assert problem is not None and why in problem


@pytest.mark.parametrize(
    "expression",
    ["amount * 2", "coalesce(a, 0) / nullif(b, 0)", "extract(dow from d) in (0, 6)", "x::numeric(10, 2)"],
)
def test_a_portable_expression_passes(expression: str):
    assert untranslatable(parse_one(expression, read="postgres"), SPARK) is None
