"""Keys, foreign keys and the cross-table invariants of docs/data-model.md."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.datagen import FOREIGN_KEYS, TABLES, Table

from .conftest import scalar


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_keys_are_unique_and_not_null(db: duckdb.DuckDBPyConnection, table: Table) -> None:
    key = ", ".join(table.key)
    name = table.name
    nulls = " or ".join(f"{k} is null" for k in table.key)
    assert scalar(db, f"select count(*) from {name} where {nulls}") == 0
    dupes = f"select count(*) from (select {key} from {name} group by all having count(*) > 1)"
    assert scalar(db, dupes) == 0
    assert scalar(db, f"select count(*) from {name}") > 0


@pytest.mark.parametrize("fk", FOREIGN_KEYS, ids=lambda fk: f"{fk[0]}.{fk[1]}")
def test_foreign_keys_resolve(db: duckdb.DuckDBPyConnection, fk: tuple[str, ...]) -> None:
    table, column, ref, ref_column = fk
    orphans = (
        f"select count(*) from {table} t where t.{column} is not null and not exists "
        f"(select 1 from {ref} r where r.{ref_column} = t.{column})"
    )
    assert scalar(db, orphans) == 0
    assert scalar(db, f"select count({column}) from {table}") > 0


# Each query counts the rows breaking one invariant of the contract.
VIOLATIONS = {
    "order before its customer's signup": """
        select count(*) from orders o join customers c using (customer_id)
        where o.ordered_at < c.signed_up_at""",
    "order without items": """
        select count(*) from orders o
        where not exists (select 1 from order_items i where i.order_id = o.order_id)""",
    "discount above the line amount": """
        select count(*) from order_items
        where discount_amount < 0 or discount_amount > quantity * unit_price""",
    "unit price not below or at the list price": """
        select count(*) from order_items i join products p using (product_id)
        where i.unit_price > p.price or i.unit_price <= p.unit_cost""",
    "item of a product not launched yet": """
        select count(*) from order_items i join products p using (product_id)
        join orders o using (order_id) where o.ordered_at::date < p.launched_on""",
    "more than one return per item": """
        select count(*) from (select order_item_id from returns group by 1 having count(*) > 1)""",
    "return not after delivery": """
        select count(*) from returns r join order_items i using (order_item_id)
        join shipments s using (order_id)
        where s.delivered_at is null or r.returned_at <= s.delivered_at""",
    "refund above the item's net amount": """
        select count(*) from returns r join order_items i using (order_item_id)
        where r.refund_amount > i.quantity * i.unit_price - i.discount_amount
           or r.refund_amount < 0""",
    "returned status without return, or return without returned status": """
        select count(*) from orders o
        where (o.status = 'returned') <> exists (
            select 1 from returns r join order_items i using (order_item_id)
            where i.order_id = o.order_id)""",
    "shipment missing or unexpected for the status": """
        select count(*) from orders o
        where (o.status in ('shipped', 'delivered', 'returned'))
           <> exists (select 1 from shipments s where s.order_id = o.order_id)""",
    "more than one shipment per order": """
        select count(*) from (select order_id from shipments group by 1 having count(*) > 1)""",
    "shipment times out of order": """
        select count(*) from shipments s join orders o using (order_id)
        where s.shipped_at < o.ordered_at or s.delivered_at < s.shipped_at""",
    "delivered_at inconsistent with the status": """
        select count(*) from shipments s join orders o using (order_id)
        where (s.delivered_at is null) <> (o.status = 'shipped')""",
    "session converting to another customer's order": """
        select count(*) from sessions s join orders o using (order_id)
        where s.customer_id is distinct from o.customer_id""",
    "order with more than one session": """
        select count(*) from (select order_id from sessions where order_id is not null
                              group by 1 having count(*) > 1)""",
    "web/app order without session, or marketplace order with one": """
        select count(*) from orders o
        where (o.channel <> 'marketplace')
           <> exists (select 1 from sessions s where s.order_id = o.order_id)""",
    "session of a customer not signed up by the session's end": """
        select count(*) from sessions s join customers c using (customer_id)
        where c.signed_up_at > s.started_at + to_seconds(s.duration_seconds)""",
    "clicks above impressions": "select count(*) from ad_spend where clicks > impressions",
    "opens above sends or clicks above opens": """
        select count(*) from email_campaigns where opens > sends or clicks > opens""",
    "referred customer signed up before the referral date": """
        select count(*) from referrals r join customers c
          on c.customer_id = r.referred_customer_id
        where c.signed_up_at::date < r.referred_at::date""",
    "self-referral or referral before the referrer signed up": """
        select count(*) from referrals r join customers c
          on c.customer_id = r.referrer_customer_id
        where r.referrer_customer_id = r.referred_customer_id
           or r.referred_at < c.signed_up_at""",
    "lead timestamps out of order": """
        select count(*) from leads
        where qualified_at < created_at or converted_at < qualified_at
           or (converted_at is not null and qualified_at is null)""",
    "deal not one per converted lead": """
        select (select count(*) from leads where converted_at is not null)
             - (select count(distinct lead_id) from deals)
             + (select count(*) - count(distinct lead_id) from deals)""",
    "deal created before its lead converted": """
        select count(*) from deals d join leads l using (lead_id)
        where d.created_on <> l.converted_at::date""",
    "deal rep not in sales or not employed when the deal was created": """
        select count(*) from deals d join employees e on e.employee_id = d.sales_rep_id
        where e.department <> 'sales' or e.hired_on > d.created_on
           or e.left_on <= d.created_on""",
    "closed_on set for an open deal or missing for a closed one": """
        select count(*) from deals
        where (closed_on is not null) <> (stage in ('won', 'lost'))
           or closed_on < created_on or amount <= 0""",
    "ticket agent not in customer service or not employed then": """
        select count(*) from tickets t join employees e on e.employee_id = t.agent_id
        where e.department <> 'customer_service' or e.hired_on > t.created_at::date
           or e.left_on <= t.created_at::date""",
    "ticket timestamps out of order": """
        select count(*) from tickets
        where first_response_at < created_at or resolved_at < first_response_at
           or (resolved_at is not null and first_response_at is null)""",
    "ticket on an order of another customer or before the order": """
        select count(*) from tickets t join orders o using (order_id)
        where t.customer_id <> o.customer_id or t.created_at < o.ordered_at""",
    "csat on an unresolved ticket": """
        select count(*) from tickets where csat_score is not null and resolved_at is null""",
    "nps answer before the customer's signup": """
        select count(*) from nps_responses n join customers c using (customer_id)
        where n.responded_at < c.signed_up_at""",
    "employee leaving before being hired": """
        select count(*) from employees where left_on <= hired_on""",
    "survey answered while not employed": """
        select count(*) from employee_surveys s join employees e using (employee_id)
        where s.surveyed_on < e.hired_on or s.surveyed_on >= e.left_on""",
    "cost month not a first day or amount not positive": """
        select count(*) from operating_costs
        where day(cost_month) <> 1 or amount <= 0""",
    "inventory row missing for a launched product and day": """
        select (select count(*) from products p, range(date '2024-11-01',
                date '2026-11-16', interval 1 day) d(day) where p.launched_on <= d.day)
             - (select count(*) from inventory_snapshots i join products p using (product_id)
                where i.snapshot_date >= p.launched_on)""",
}


@pytest.mark.parametrize("sql", VIOLATIONS.values(), ids=list(VIOLATIONS))
def test_invariant_holds(db: duckdb.DuckDBPyConnection, sql: str) -> None:
    assert scalar(db, sql) == 0
