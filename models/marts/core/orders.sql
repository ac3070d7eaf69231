{{
    config(
        materialized=fact_materialization(),
        incremental_strategy='append',
        on_schema_change='fail',
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

orders_sequenced as (

    select
        order_id,
        is_cancelled,
        customer_order_number,
        is_first_order
    from {{ ref('int_orders_sequenced') }}

),

order_totals as (

    select
        order_id,
        item_count,
        units,
        gross_revenue,
        discount_amount,
        net_sales,
        cogs,
        refund_amount,
        net_revenue,
        is_returned,
        has_wrong_item
    from {{ ref('int_order_items_aggregated_to_orders') }}

),

order_sessions as (

    select
        order_id,
        session_id,
        source,
        medium,
        campaign
    from {{ ref('int_sessions_attributed_to_orders') }}

),

shipments as (

    select
        order_id,
        shipped_at,
        delivered_at
    from {{ ref('stg_shop__shipments') }}

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
        coalesce(order_totals.net_revenue, 0) as net_revenue,
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
        on orders.order_id = order_sessions.order_id
    left join shipments_by_order
        on orders.order_id = shipments_by_order.order_id

)

select
    cast(order_id as bigint) as order_id,
    cast(customer_id as bigint) as customer_id,
    cast(ordered_at as timestamp) as ordered_at,
    cast(order_date as date) as order_date,
    cast(status as varchar) as status,
    cast(channel as varchar) as channel,
    cast(device as varchar) as device,
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
    cast(source as varchar) as source,
    cast(medium as varchar) as medium,
    cast(campaign as varchar) as campaign,
    cast(shipped_at as timestamp) as shipped_at,
    cast(delivered_at as timestamp) as delivered_at,
    cast(fulfilment_hours as decimal(12, 2)) as fulfilment_hours,
    cast(is_returned as boolean) as is_returned,
    cast(has_wrong_item as boolean) as has_wrong_item
from orders_joined
