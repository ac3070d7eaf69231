"""The floor of bench/run.py: the minimal hand-written DuckDB SQL for the KPIs of the three
big fact tables, written independently of the generated models. Per fact table, one grouped
scan at day grain (GROUPING SETS: the total and each dimension), the coarser grains rolled
up from those day rows (sums and counts add up), and each distinct count in one
grouping-sets pass over every grain; filters are aggregate FILTER clauses, no dense spine.

Each query returns (grain, period_start, dimension, dimension_value, <one column per KPI>);
`KPIS` says which dimensions each KPI declares, `AVERAGES` the KPIs that are sum/count.
"""

from __future__ import annotations

GRAINS = ("day", "week", "month", "quarter", "year")


def _slice(dimensions: list[str]) -> str:
    """The slice columns of a grouping-sets result over `dimensions`."""
    name = " ".join(f"when grouping({d}) = 0 then '{d}'" for d in dimensions)
    value = " ".join(
        f"when grouping({d}) = 0 then coalesce({d}::varchar, '(null)')" for d in dimensions
    )
    return f"case {name} else 'total' end as dimension, case {value} else 'total' end as dimension_value"


def _by_day(rows: str, day: str, dimensions: list[str], measures: dict[str, str]) -> str:
    sets = ", ".join([f"({day})", *(f"({day}, {d})" for d in dimensions)])
    columns = ",\n        ".join(f"{sql} as {name}" for name, sql in measures.items())
    return f"""select {day} as day, {_slice(dimensions)},
        {columns}
    from {rows}
    group by grouping sets ({sets})"""


def _rolled_up(measures: dict[str, str]) -> str:
    """Every grain from the day rows of `by_day`: sums and counts add up."""
    sums = ", ".join(f"sum({name}) as {name}" for name in measures)
    parts = ["select 'day' as grain, day as period_start, dimension, dimension_value, "
             + ", ".join(measures) + " from by_day"]
    for grain in GRAINS[1:]:
        parts.append(
            f"select '{grain}', date_trunc('{grain}', day)::date, dimension, dimension_value, "
            f"{sums} from by_day group by all"
        )
    return "\n    union all\n    ".join(parts)


def _distinct(rows: str, day: str, dimensions: list[str], name: str, sql: str) -> str:
    """A distinct count at every grain and slice in one grouping-sets pass."""
    periods = ", ".join(
        f"date_trunc('{g}', {day})::date as g_{g}" if g != "day" else f"{day} as g_day"
        for g in GRAINS
    )
    sets = ", ".join(
        s for g in GRAINS for s in [f"(g_{g})", *(f"(g_{g}, {d})" for d in dimensions)]
    )
    grain = " ".join(f"when grouping(g_{g}) = 0 then '{g}'" for g in GRAINS)
    return f"""select case {grain} end as grain,
        coalesce({", ".join(f"g_{g}" for g in GRAINS)}) as period_start, {_slice(dimensions)},
        {sql} as {name}
    from (select {periods}, * from {rows})
    group by grouping sets ({sets})"""


ORDERS_DIMENSIONS = ["channel", "device", "segment", "region"]
ORDERS_MEASURES = {
    "accurate_orders": "count(shipped_at) filter (where not is_cancelled and not has_wrong_item)",
    "revenue": "sum(net_revenue) filter (where not is_cancelled)",
    "orders_placed": "count(order_id) filter (where not is_cancelled)",
    "new_customers": "count(order_id) filter (where is_first_order and not is_cancelled)",
    "cogs": "sum(cogs) filter (where not is_cancelled)",
    "fulfilment_time__sum": "sum(fulfilment_hours) filter (where not is_cancelled)",
    "fulfilment_time__count": "count(fulfilment_hours) filter (where not is_cancelled)",
    "gross_sales": "sum(gross_revenue) filter (where not is_cancelled)",
    "shipped_orders": "count(shipped_at) filter (where not is_cancelled)",
    "refunds": "sum(refund_amount) filter (where not is_cancelled)",
}
ORDERS = f"""
with order_rows as (
    select o.order_date, o.channel, o.device, c.segment, c.region, o.order_id, o.customer_id,
        o.shipped_at, o.is_cancelled, o.is_first_order, o.has_wrong_item, o.net_revenue,
        o.gross_revenue, o.cogs, o.refund_amount, o.fulfilment_hours
    from analytics.orders as o
    left join analytics.customers as c on c.customer_id = o.customer_id
    where o.order_date is not null
), by_day as (
    {_by_day("order_rows", "order_date", ORDERS_DIMENSIONS, ORDERS_MEASURES)}
), additive as (
    {_rolled_up(ORDERS_MEASURES)}
), buyers as (
    {_distinct("order_rows", "order_date", ["segment", "region"], "active_customers",
               "count(distinct customer_id) filter (where not is_cancelled)")}
)
select additive.*, buyers.active_customers
from additive
left join buyers using (grain, period_start, dimension, dimension_value)
"""

ORDER_ITEMS_MEASURES = {
    "items_sold": "count(order_item_id)",
    "returned_items": "count(order_item_id) filter (where is_returned)",
}
ORDER_ITEMS = f"""
with by_day as (
    {_by_day("analytics.order_items where order_date is not null", "order_date", ["category"],
             ORDER_ITEMS_MEASURES)}
)
{_rolled_up(ORDER_ITEMS_MEASURES)}
"""

SESSIONS_DIMENSIONS = ["source", "medium", "device"]
SESSIONS_MEASURES = {
    "converted_sessions": "count(session_id) filter (where is_converted)",
    "sessions": "count(session_id)",
    "pages_per_session__sum": "sum(pageviews)",
    "pages_per_session__count": "count(pageviews)",
    "visit_duration__sum": "sum(duration_seconds)",
    "visit_duration__count": "count(duration_seconds)",
}
SESSIONS = f"""
with by_day as (
    {_by_day("analytics.sessions where session_date is not null", "session_date",
             SESSIONS_DIMENSIONS, SESSIONS_MEASURES)}
)
{_rolled_up(SESSIONS_MEASURES)}
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
