"""The dbt project builds the demo business green, and its marts reconcile with the raw data.

Row counts are followed raw → staging → marts; money and counts of the marts are
recomputed independently with pandas straight from the seed CSVs (not through our SQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.dbt

SEEDS = REPO_ROOT / "seeds"
RAW = "raw"
ANALYTICS = "analytics"

RAW_TABLES = {
    "shop": [
        "customers",
        "products",
        "orders",
        "order_items",
        "returns",
        "shipments",
        "inventory_snapshots",
    ],
    "web": ["sessions"],
    "marketing": ["ad_spend", "email_campaigns", "referrals"],
    "crm": ["leads", "deals", "tickets", "nps_responses"],
    "hr": ["employees", "employee_surveys"],
    "finance": ["operating_costs"],
}

# mart -> the staging model it has one row per row of
MART_GRAIN = {
    "customers": "stg_shop__customers",
    "products": "stg_shop__products",
    "orders": "stg_shop__orders",
    "order_items": "stg_shop__order_items",
    "inventory_snapshots": "stg_shop__inventory_snapshots",
    "sessions": "stg_web__sessions",
    "marketing_spend": "stg_marketing__ad_spend",
    "email_campaigns": "stg_marketing__email_campaigns",
    "referrals": "stg_marketing__referrals",
    "leads": "stg_crm__leads",
    "deals": "stg_crm__deals",
    "tickets": "stg_crm__tickets",
    "nps_responses": "stg_crm__nps_responses",
    "employees": "stg_hr__employees",
    "employee_surveys": "stg_hr__employee_surveys",
    "operating_costs": "stg_finance__operating_costs",
}

UNIT_TESTS = {
    "test_first_order_flag_ties_and_cancelled_first_order",
    "test_item_amounts_with_partial_refund",
    "test_orders_revenue_fulfilment_and_attribution",
    "test_customers_ignore_cancelled_orders",
}


@pytest.fixture(scope="module")
def con(demo_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(demo_warehouse), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def run_results(demo_warehouse: Path) -> list[dict]:
    path = dbt_target_dir(demo_warehouse) / "run_results.json"
    return json.loads(path.read_text())["results"]


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def count(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    return int(scalar(con, f"select count(*) from {schema}.{table}"))  # type: ignore[arg-type]


def money(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    return float(scalar(con, sql) or 0)  # type: ignore[arg-type]


def raw_csv(source: str, table: str) -> pd.DataFrame:
    """A raw table read straight from its seed CSV (seeds/<source>/[raw_]<table>.csv)."""
    for name in (f"{table}.csv", f"raw_{table}.csv"):
        path = SEEDS / source / name
        if path.is_file():
            return pd.read_csv(path)
    raise FileNotFoundError(f"no seed CSV for {source}.{table} in {SEEDS / source}")


# -- the build ------------------------------------------------------------------------


def test_build_is_green(run_results: list[dict]) -> None:
    bad = [
        (r["unique_id"], r["status"]) for r in run_results if r["status"] not in {"success", "pass"}
    ]
    assert bad == []
    kinds = {r["unique_id"].split(".")[0] for r in run_results}
    assert {"model", "test", "unit_test"} <= kinds


def test_dbt_unit_tests_ran_and_passed(run_results: list[dict]) -> None:
    unit = {
        r["unique_id"].rsplit(".", 1)[-1]: r["status"]
        for r in run_results
        if r["unique_id"].startswith("unit_test.")
    }
    assert set(unit) >= UNIT_TESTS
    assert all(status == "pass" for status in unit.values())


def test_every_mart_has_an_enforced_contract(demo_warehouse: Path) -> None:
    manifest = json.loads((dbt_target_dir(demo_warehouse) / "manifest.json").read_text())
    marts = [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["path"].startswith("marts")
    ]
    assert {n["name"] for n in marts} == {*MART_GRAIN, "dim_dates"}
    for node in marts:
        assert node["contract"]["enforced"], node["name"]
        assert node["columns"], node["name"]
        assert all(c.get("data_type") and c.get("description") for c in node["columns"].values()), (
            node["name"]
        )


# -- row counts: raw -> staging -> marts ----------------------------------------------


@pytest.mark.parametrize(
    ("source", "table"),
    [(s, t) for s, tables in RAW_TABLES.items() for t in tables],
)
def test_staging_has_one_row_per_raw_row(
    con: duckdb.DuckDBPyConnection, source: str, table: str
) -> None:
    raw = count(con, RAW, table)
    assert raw > 0 or table == "returns"
    assert count(con, ANALYTICS, f"stg_{source}__{table}") == raw
    assert raw == len(raw_csv(source, table))


@pytest.mark.parametrize(("mart", "staging"), sorted(MART_GRAIN.items()))
def test_mart_has_one_row_per_staging_row(
    con: duckdb.DuckDBPyConnection, mart: str, staging: str
) -> None:
    assert count(con, ANALYTICS, mart) == count(con, ANALYTICS, staging)


def test_dim_dates_spans_the_history(con: duckdb.DuckDBPyConnection) -> None:
    first, last, days = con.execute(
        "select min(date_day), max(date_day), count(*) from analytics.dim_dates"
    ).fetchone()  # type: ignore[misc]
    assert (first, last) == (date(2024, 11, 1), date(2026, 11, 15))
    assert days == (last - first).days + 1
    weeks = con.execute(
        "select count(*) from analytics.dim_dates"
        " where week_start > date_day or extract(isodow from week_start) <> 1"
    ).fetchone()
    assert weeks == (0,)


# -- totals against pandas over the raw CSVs ------------------------------------------


@pytest.fixture(scope="module")
def items() -> pd.DataFrame:
    order_items = raw_csv("shop", "order_items")
    products = raw_csv("shop", "products")[["product_id", "unit_cost"]]
    merged = order_items.merge(products, on="product_id", how="left", validate="many_to_one")
    merged["net"] = merged["quantity"] * merged["unit_price"] - merged["discount_amount"]
    merged["cost"] = merged["quantity"] * merged["unit_cost"]
    return merged


def test_net_sales_match_raw(con: duckdb.DuckDBPyConnection, items: pd.DataFrame) -> None:
    expected = round(float(items["net"].sum()), 2)
    assert money(con, "select sum(net_sales) from analytics.orders") == pytest.approx(expected)
    assert money(con, "select sum(net_amount) from analytics.order_items") == pytest.approx(
        expected
    )


def test_cogs_match_raw(con: duckdb.DuckDBPyConnection, items: pd.DataFrame) -> None:
    expected = round(float(items["cost"].sum()), 2)
    assert money(con, "select sum(cogs) from analytics.orders") == pytest.approx(expected)


def test_refunds_and_net_revenue_match_raw(
    con: duckdb.DuckDBPyConnection, items: pd.DataFrame
) -> None:
    refunds = round(float(raw_csv("shop", "returns")["refund_amount"].sum()), 2)
    assert money(con, "select sum(refund_amount) from analytics.orders") == pytest.approx(refunds)
    assert money(con, "select sum(refund_amount) from analytics.order_items") == pytest.approx(
        refunds
    )
    net_revenue = round(float(items["net"].sum()) - refunds, 2)
    assert money(con, "select sum(net_revenue) from analytics.orders") == pytest.approx(net_revenue)


def test_non_cancelled_net_sales_match_raw(
    con: duckdb.DuckDBPyConnection, items: pd.DataFrame
) -> None:
    orders = raw_csv("shop", "orders")
    kept = orders.loc[orders["status"] != "cancelled", "order_id"]
    expected = round(float(items.loc[items["order_id"].isin(kept), "net"].sum()), 2)
    actual = money(con, "select sum(net_sales) from analytics.orders where not is_cancelled")
    assert actual == pytest.approx(expected)


def test_ad_spend_matches_raw(con: duckdb.DuckDBPyConnection) -> None:
    expected = round(float(raw_csv("marketing", "ad_spend")["spend"].sum()), 2)
    assert money(con, "select sum(spend) from analytics.marketing_spend") == pytest.approx(expected)


def test_ticket_counts_match_raw(con: duckdb.DuckDBPyConnection) -> None:
    tickets = raw_csv("crm", "tickets")
    actual = con.execute(
        "select count(*), count(*) filter (where is_resolved),"
        " count(*) filter (where is_complaint), count(csat_score)"
        " from analytics.tickets"
    ).fetchone()
    expected = (
        len(tickets),
        int(tickets["resolved_at"].notna().sum()),
        int((tickets["category"] == "complaint").sum()),
        int(tickets["csat_score"].notna().sum()),
    )
    assert actual == expected


def test_first_orders_match_raw(con: duckdb.DuckDBPyConnection) -> None:
    orders = raw_csv("shop", "orders")
    buyers = orders.loc[orders["status"] != "cancelled", "customer_id"].nunique()
    assert scalar(con, "select count(*) from analytics.orders where is_first_order") == buyers
    assert (
        scalar(con, "select count(*) from analytics.customers where first_order_at is not null")
        == buyers
    )


def test_converting_sessions_match_raw(con: duckdb.DuckDBPyConnection) -> None:
    sessions = raw_csv("web", "sessions")
    converted = int(sessions["order_id"].notna().sum())
    assert scalar(con, "select count(session_id) from analytics.orders") == converted
    assert scalar(con, "select count(*) from analytics.sessions where is_converted") == converted
    assert (
        scalar(
            con,
            "select count(*) from analytics.orders"
            " where channel = 'marketplace' and session_id is not null",
        )
        == 0
    )


def dbt_target_dir(warehouse: Path) -> Path:
    """The session build's dbt artifacts (see tests/conftest.py)."""
    return warehouse.parent / "target"
