"""Each entity- or time-aware kind's block loads as its typed parameters, located."""

from __future__ import annotations

from pipeline.spec.load import load
from pipeline.spec.model import Activity, Conversion, Cumulative, Event, Lifetime, Offset, Snapshot

METRICS = """\
kpis:
  - {name: orders_placed, category: sales_marketing, model: orders, time: order_date, count: "*"}
  - {name: orders_to_date, category: sales_marketing, cumulative: orders_placed}
  - name: orders_last_month
    category: sales_marketing
    offset: {of: orders_placed, by: 1 month}
  - name: clv
    category: customer
    lifetime_value: {model: orders, time: order_date, entity: customer_id, sum: amount, horizon_days: 90}
  - name: trial_to_paid
    category: customer
    conversion:
      base: {model: trials, time: started_on, entity: account_id}
      event: {model: invoices, time: paid_on, entity: account_id, filter: "amount > 0"}
      within_days: 30
  - name: retention
    category: customer
    retention: {model: orders, time: order_date, entity: customer_id}
  - name: open_tickets
    category: operational
    snapshot: {model: tickets, start: opened_on, end: closed_on, count: "*", take: average}
"""


def test_each_kind_s_block_is_its_typed_parameters():
    spec, issues = load({"metrics/kpis.yml": METRICS})
    assert not issues, [str(i) for i in issues]
    params = {k.name: k.params for k in spec.kpis}
    assert params == {
        "orders_placed": None,
        "orders_to_date": Cumulative(of="orders_placed"),
        "orders_last_month": Offset(of="orders_placed", by="1 month"),
        "clv": Lifetime(
            model="orders", time="order_date", entity="customer_id", sum="amount", horizon_days=90
        ),
        "trial_to_paid": Conversion(
            base=Event(model="trials", time="started_on", entity="account_id"),
            event=Event(model="invoices", time="paid_on", entity="account_id", filter="amount > 0"),
            within_days=30,
        ),
        "retention": Activity(model="orders", time="order_date", entity="customer_id"),
        "open_tickets": Snapshot(
            model="tickets", start="opened_on", end="closed_on", count="*", take="average"
        ),
    }


def test_a_block_is_shown_as_written_and_its_keys_are_located():
    spec, _ = load({"metrics/kpis.yml": METRICS})
    conversion = spec.kpi("trial_to_paid")
    assert conversion is not None
    assert conversion.block == {
        "base": {"model": "trials", "time": "started_on", "entity": "account_id"},
        "event": {
            "model": "invoices",
            "time": "paid_on",
            "entity": "account_id",
            "filter": "amount > 0",
        },
        "within_days": 30,
    }
    assert (
        conversion.at("conversion.event.filter").line,
        conversion.at("conversion.event.filter").col,
    ) == (14, 75)
    assert spec.kpi("orders_to_date").inputs == ("orders_placed",)  # type: ignore[union-attr]
