{{
    config(
        materialized=fact_materialization(),
        pre_hook="{{ delete_recomputed_days('order_date') }}",
    )
}}

with

orders as (

    select
        order_id,
        customer_id,
        ordered_at,
        status,
        channel,
        device
    from {{ ref('stg_shop__orders') }}
    {{ where_recomputed('ordered_at', 'order_date') }}

),

earlier_orders as (

    -- per customer, the stored orders of the days before those recomputed: a run appends
    -- to their sequence (a full build has none)
    {%- if recomputes() %}
    select
        customer_id,
        count(*) as orders_before,
        count(*) filter (where not is_cancelled) as kept_orders_before
    from {{ this }}
    where
        {{ before_recomputed('order_date') }}
        and customer_id in (select customer_id from orders)
    group by customer_id
    {%- else %}
    select
        cast(null as bigint) as customer_id,
        0 as orders_before,
        0 as kept_orders_before
    where false
    {%- endif %}

),

orders_numbered as (

    select
        orders.order_id,
        orders.status = 'cancelled' as is_cancelled,
        coalesce(earlier_orders.orders_before, 0) as orders_before,
        coalesce(earlier_orders.kept_orders_before, 0) as kept_orders_before,
        row_number() over (
            partition by orders.customer_id
            order by orders.ordered_at, orders.order_id
        ) as number_in_run,
        row_number() over (
            partition by orders.customer_id, orders.status = 'cancelled'
            order by orders.ordered_at, orders.order_id
        ) as number_within_status
    from orders
    left join earlier_orders
        on orders.customer_id = earlier_orders.customer_id

),

orders_sequenced as (

    -- customer_order_number: 1, 2, ... over the customer's orders by (ordered_at, order_id);
    -- is_first_order: the customer's earliest order that was not cancelled
    select
        order_id,
        is_cancelled,
        orders_before + number_in_run as customer_order_number,
        not is_cancelled
        and kept_orders_before = 0
        and number_within_status = 1 as is_first_order
    from orders_numbered

),

order_totals as (

    -- the order items' amounts summed to one row per order that has items
    select
        order_id,
        count(*) as item_count,
        sum(quantity) as units,
        sum(gross_amount) as gross_revenue,
        sum(discount_amount) as discount_amount,
        sum(net_amount) as net_sales,
        sum(cogs) as cogs,
        sum(refund_amount) as refund_amount,
        bool_or(is_returned) as is_returned,
        bool_or(is_wrong_item) as has_wrong_item
    from {{ ref('order_items') }}
    {{ where_recomputed('order_date', 'order_date') }}
    group by order_id

),

order_sessions as (

    -- the web session that converted to the order: at most one is expected (a source
    -- test guards it); should two exist, the earliest wins
    select
        order_id,
        session_id,
        source,
        medium,
        campaign,
        row_number() over (
            partition by order_id
            order by started_at, session_id
        ) as session_rank
    from {{ ref('sessions') }}
    where
        order_id is not null
        and order_id in (select order_id from orders)

),

shipments as (

    select
        order_id,
        shipped_at,
        delivered_at
    from {{ ref('stg_shop__shipments') }}
    where order_id in (select order_id from orders)

),

shipments_by_order as (

    -- one shipment per order is expected; an order counts as delivered once all are
    select
        order_id,
        min(shipped_at) as shipped_at,
        case
            when count(*) = count(delivered_at) then max(delivered_at)
        end as delivered_at
    from shipments
    group by order_id

),

orders_joined as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date,
        orders.status,
        orders.channel,
        orders.device,
        orders_sequenced.is_cancelled,
        coalesce(order_totals.item_count, 0) as item_count,
        coalesce(order_totals.units, 0) as units,
        coalesce(order_totals.gross_revenue, 0) as gross_revenue,
        coalesce(order_totals.discount_amount, 0) as discount_amount,
        coalesce(order_totals.net_sales, 0) as net_sales,
        coalesce(order_totals.cogs, 0) as cogs,
        coalesce(order_totals.refund_amount, 0) as refund_amount,
        coalesce(order_totals.net_sales - order_totals.refund_amount, 0) as net_revenue,
        orders_sequenced.is_first_order,
        orders_sequenced.customer_order_number,
        order_sessions.session_id,
        order_sessions.source,
        order_sessions.medium,
        order_sessions.campaign,
        shipments_by_order.shipped_at,
        shipments_by_order.delivered_at,
        {{ duration_between('orders.ordered_at', 'shipments_by_order.delivered_at', 'hours') }}
        as fulfilment_hours,
        coalesce(order_totals.is_returned, false) as is_returned,
        coalesce(order_totals.has_wrong_item, false) as has_wrong_item
    from orders
    left join orders_sequenced
        on orders.order_id = orders_sequenced.order_id
    left join order_totals
        on orders.order_id = order_totals.order_id
    left join order_sessions
        on
            orders.order_id = order_sessions.order_id
            and order_sessions.session_rank = 1
    left join shipments_by_order
        on orders.order_id = shipments_by_order.order_id

)

select
    cast(order_id as bigint) as order_id,
    cast(customer_id as bigint) as customer_id,
    cast(ordered_at as timestamp) as ordered_at,
    cast(order_date as date) as order_date,
    cast(status as {{ string_type() }}) as status,
    cast(channel as {{ string_type() }}) as channel,
    cast(device as {{ string_type() }}) as device,
    cast(is_cancelled as boolean) as is_cancelled,
    cast(item_count as bigint) as item_count,
    cast(units as bigint) as units,
    cast(gross_revenue as decimal(12, 2)) as gross_revenue,
    cast(discount_amount as decimal(12, 2)) as discount_amount,
    cast(net_sales as decimal(12, 2)) as net_sales,
    cast(cogs as decimal(12, 2)) as cogs,
    cast(refund_amount as decimal(12, 2)) as refund_amount,
    cast(net_revenue as decimal(12, 2)) as net_revenue,
    cast(is_first_order as boolean) as is_first_order,
    cast(customer_order_number as bigint) as customer_order_number,
    cast(session_id as bigint) as session_id,
    cast(source as {{ string_type() }}) as source,
    cast(medium as {{ string_type() }}) as medium,
    cast(campaign as {{ string_type() }}) as campaign,
    cast(shipped_at as timestamp) as shipped_at,
    cast(delivered_at as timestamp) as delivered_at,
    cast(fulfilment_hours as decimal(12, 2)) as fulfilment_hours,
    cast(is_returned as boolean) as is_returned,
    cast(has_wrong_item as boolean) as has_wrong_item
from orders_joined
