"""Hand-written DuckDB queries for the KPIs of the three big fact tables: the baseline of
bench/run.py. One grouped scan per fact table (GROUPING SETS over every grain, with and
without each dimension), written independently of the generated models: every grain is
aggregated directly from the rows, filters are aggregate FILTER clauses, no dense spine.

Each query returns (grain, period_start, dimension, dimension_value, <one column per KPI>);
`KPIS` says which dimensions each KPI declares, `AVERAGES` the KPIs that are sum/count.
"""

from __future__ import annotations

GRAINS = ("day", "week", "month", "quarter", "year")


def _periods(day: str) -> str:
    return f"""{day} as g_day,
        date_trunc('week', {day})::date as g_week,
        date_trunc('month', {day})::date as g_month,
        date_trunc('quarter', {day})::date as g_quarter,
        date_trunc('year', {day})::date as g_year"""


def _keys(dimensions: list[str]) -> str:
    grain = " ".join(f"when grouping(g_{g}) = 0 then '{g}'" for g in GRAINS)
    dimension = " ".join(f"when grouping({d}) = 0 then '{d}'" for d in dimensions)
    value = " ".join(
        f"when grouping({d}) = 0 then coalesce({d}::varchar, '(null)')" for d in dimensions
    )
    return f"""case {grain} end as grain,
        coalesce({", ".join(f"g_{g}" for g in GRAINS)}) as period_start,
        case {dimension} else 'total' end as dimension,
        case {value} else 'total' end as dimension_value"""


def _sets(dimensions: list[str]) -> str:
    sets = []
    for g in GRAINS:
        sets.append(f"(g_{g})")
        sets += [f"(g_{g}, {d})" for d in dimensions]
    return ", ".join(sets)


ORDERS_DIMENSIONS = ["channel", "device", "segment", "region"]
ORDERS = f"""
with rows as (
    select {_periods("o.order_date")},
        o.channel, o.device, c.segment, c.region,
        o.order_id, o.customer_id, o.shipped_at, o.is_cancelled, o.is_first_order,
        o.has_wrong_item, o.net_revenue, o.gross_revenue, o.cogs, o.refund_amount,
        o.fulfilment_hours
    from analytics.orders as o
    left join analytics.customers as c on c.customer_id = o.customer_id
    where o.order_date is not null
)
select {_keys(ORDERS_DIMENSIONS)},
    count(shipped_at) filter (where not is_cancelled and not has_wrong_item) as accurate_orders,
    count(distinct customer_id) filter (where not is_cancelled) as active_customers,
    sum(net_revenue) filter (where not is_cancelled) as revenue,
    count(order_id) filter (where not is_cancelled) as orders_placed,
    count(order_id) filter (where is_first_order and not is_cancelled) as new_customers,
    sum(cogs) filter (where not is_cancelled) as cogs,
    sum(fulfilment_hours) filter (where not is_cancelled) as fulfilment_time__sum,
    count(fulfilment_hours) filter (where not is_cancelled) as fulfilment_time__count,
    sum(gross_revenue) filter (where not is_cancelled) as gross_sales,
    count(shipped_at) filter (where not is_cancelled) as shipped_orders,
    sum(refund_amount) filter (where not is_cancelled) as refunds
from rows
group by grouping sets ({_sets(ORDERS_DIMENSIONS)})
"""

ORDER_ITEMS = f"""
with rows as (
    select {_periods("order_date")}, category, order_item_id, is_returned
    from analytics.order_items
    where order_date is not null
)
select {_keys(["category"])},
    count(order_item_id) as items_sold,
    count(order_item_id) filter (where is_returned) as returned_items
from rows
group by grouping sets ({_sets(["category"])})
"""

SESSIONS_DIMENSIONS = ["source", "medium", "device"]
SESSIONS = f"""
with rows as (
    select {_periods("session_date")}, source, medium, device,
        session_id, is_converted, pageviews, duration_seconds
    from analytics.sessions
    where session_date is not null
)
select {_keys(SESSIONS_DIMENSIONS)},
    count(session_id) filter (where is_converted) as converted_sessions,
    count(session_id) as sessions,
    sum(pageviews) as pages_per_session__sum,
    count(pageviews) as pages_per_session__count,
    sum(duration_seconds) as visit_duration__sum,
    count(duration_seconds) as visit_duration__count
from rows
group by grouping sets ({_sets(SESSIONS_DIMENSIONS)})
"""

QUERIES = {"orders": ORDERS, "order_items": ORDER_ITEMS, "sessions": SESSIONS}

# KPI -> (fact table, dimensions it declares)
KPIS: dict[str, tuple[str, tuple[str, ...]]] = {
    "accurate_orders": ("orders", ()),
    "active_customers": ("orders", ("segment", "region")),
    "revenue": ("orders", ("channel", "device", "segment", "region")),
    "orders_placed": ("orders", ("channel", "device", "segment", "region")),
    "new_customers": ("orders", ("channel", "segment", "region")),
    "cogs": ("orders", ("channel",)),
    "fulfilment_time": ("orders", ("channel",)),
    "gross_sales": ("orders", ("channel",)),
    "shipped_orders": ("orders", ()),
    "refunds": ("orders", ("channel",)),
    "items_sold": ("order_items", ("category",)),
    "returned_items": ("order_items", ("category",)),
    "converted_sessions": ("sessions", ("source", "medium", "device")),
    "sessions": ("sessions", ("source", "medium", "device")),
    "pages_per_session": ("sessions", ("source", "device")),
    "visit_duration": ("sessions", ("source", "device")),
}
AVERAGES = {"fulfilment_time", "pages_per_session", "visit_duration"}
