"""The generated tables match docs/data-model.md: tables, columns, types, accepted values,
value ranges, and everything inside the history."""

from __future__ import annotations

import re

import duckdb
import pytest

from pipeline.datagen import ACCEPTED_VALUES, TABLES, Table

from .conftest import REPO_ROOT, scalar


def documented_tables() -> dict[str, tuple[str, list[str]]]:
    """table -> (source, columns) from the raw-table section of docs/data-model.md."""
    text = (REPO_ROOT / "docs" / "data-model.md").read_text(encoding="utf-8")
    section = text.split("## Raw tables", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\w+) \| (\w+) \| [^|]+ \| ([^|]+) \|$", section, flags=re.M)
    return {t: (s, [c.strip() for c in cols.split(",")]) for s, t, cols in rows if t != "table"}


def test_tables_and_columns_are_the_documented_ones() -> None:
    documented = documented_tables()
    assert {t.name: (t.source, t.column_names) for t in TABLES} == documented


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_seed_columns_have_the_contract_types(
    db: duckdb.DuckDBPyConnection, table: Table
) -> None:
    rows = db.execute(f"describe {table.name}").fetchall()
    assert [(r[0], r[1]) for r in rows] == list(table.columns)


@pytest.mark.parametrize(("column", "values"), ACCEPTED_VALUES.items(), ids=str)
def test_accepted_values(
    db: duckdb.DuckDBPyConnection, column: tuple[str, str], values: tuple[str, ...]
) -> None:
    table, name = column
    seen = {r[0] for r in db.execute(f"select distinct {name} from {table}").fetchall()}
    assert seen <= set(values)
    assert None not in seen


RANGES = {
    "products": "price > unit_cost and unit_cost > 0",
    "order_items": "quantity >= 1 and unit_price > 0",
    "returns": "refund_amount >= 0",
    "inventory_snapshots": "quantity_on_hand >= 0",
    "sessions": "pageviews >= 1 and duration_seconds >= 0",
    "ad_spend": "spend >= 0 and impressions >= 0 and clicks >= 0",
    "tickets": "csat_score is null or csat_score between 1 and 5",
    "nps_responses": "score between 0 and 10",
    "employee_surveys": "satisfaction_score between 1 and 5",
    "deals": "amount > 0",
}


@pytest.mark.parametrize(("table", "condition"), RANGES.items(), ids=list(RANGES))
def test_value_ranges(db: duckdb.DuckDBPyConnection, table: str, condition: str) -> None:
    assert scalar(db, f"select count(*) from {table} where not ({condition})") == 0


# Event columns that must fall inside the history (2024-11-01 .. 2026-11-15).
EVENTS = [
    ("customers", "signed_up_at"), ("orders", "ordered_at"), ("returns", "returned_at"),
    ("shipments", "shipped_at"), ("shipments", "delivered_at"),
    ("inventory_snapshots", "snapshot_date"), ("sessions", "started_at"),
    ("ad_spend", "spend_date"), ("email_campaigns", "sent_at"), ("referrals", "referred_at"),
    ("leads", "created_at"), ("leads", "converted_at"), ("deals", "closed_on"),
    ("tickets", "created_at"), ("tickets", "resolved_at"), ("nps_responses", "responded_at"),
    ("employees", "left_on"), ("employee_surveys", "surveyed_on"),
    ("operating_costs", "cost_month"),
]


@pytest.mark.parametrize(("table", "column"), EVENTS, ids=lambda x: str(x))
def test_events_inside_the_history(db: duckdb.DuckDBPyConnection, table: str, column: str) -> None:
    low, high = db.execute(f"select min({column}), max({column}) from {table}").fetchone() or ()
    assert str(low) >= "2024-11-01"
    assert str(high) < "2026-11-16"


def test_nullable_columns_have_nulls_where_the_contract_expects_them(
    db: duckdb.DuckDBPyConnection,
) -> None:
    expected_some_nulls = [
        ("sessions", "customer_id"), ("sessions", "campaign"), ("sessions", "order_id"),
        ("shipments", "delivered_at"), ("leads", "qualified_at"), ("leads", "converted_at"),
        ("deals", "closed_on"), ("tickets", "order_id"), ("tickets", "resolved_at"),
        ("tickets", "csat_score"), ("employees", "left_on"),
    ]
    for table, column in expected_some_nulls:
        nulls = scalar(db, f"select count(*) from {table} where {column} is null")
        assert 0 < nulls < scalar(db, f"select count(*) from {table}"), (table, column)
    for t in TABLES:
        allowed = {c for tt, c in expected_some_nulls if tt == t.name}
        allowed |= {"first_response_at"} if t.name == "tickets" else set()
        for column in t.column_names:
            if column not in allowed:
                assert scalar(db, f"select count(*) from {t.name} where {column} is null") == 0, (
                    t.name, column)
