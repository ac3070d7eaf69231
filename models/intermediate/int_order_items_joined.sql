{#-
    One row per order item with its amounts: joined to its order (customer, time),
    its product (category, unit cost) and its return. Returns are aggregated to the
    item before the join, so the join cannot fan out.
-#}
with

order_items as (

    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price,
        discount_amount
    from {{ ref('stg_shop__order_items') }}

),

orders as (

    select
        order_id,
        customer_id,
        ordered_at
    from {{ ref('stg_shop__orders') }}

),

products as (

    select
        product_id,
        category,
        unit_cost
    from {{ ref('stg_shop__products') }}

),

returns as (

    select
        order_item_id,
        returned_at,
        reason,
        refund_amount
    from {{ ref('stg_shop__returns') }}

),

returns_by_order_item as (

    -- at most one return per item (a source test guards it); aggregated anyway
    select
        order_item_id,
        min(returned_at) as returned_at,
        min(reason) as return_reason,
        sum(refund_amount) as refund_amount,
        max(case when reason = 'wrong_item' then 1 else 0 end) as wrong_item_returns
    from returns
    group by order_item_id

),

order_items_joined as (

    select
        order_items.order_item_id,
        order_items.order_id,
        order_items.product_id,
        orders.customer_id,
        orders.ordered_at,
        products.category,
        order_items.quantity,
        order_items.unit_price,
        cast(
            order_items.quantity * order_items.unit_price as decimal(12, 2)
        ) as gross_amount,
        cast(order_items.discount_amount as decimal(12, 2)) as discount_amount,
        cast(
            order_items.quantity * order_items.unit_price - order_items.discount_amount
            as decimal(12, 2)
        ) as net_amount,
        cast(order_items.quantity * products.unit_cost as decimal(12, 2)) as cogs,
        returns_by_order_item.order_item_id is not null as is_returned,
        returns_by_order_item.returned_at,
        returns_by_order_item.return_reason,
        cast(
            coalesce(returns_by_order_item.refund_amount, 0) as decimal(12, 2)
        ) as refund_amount,
        coalesce(returns_by_order_item.wrong_item_returns = 1, false) as is_wrong_item
    from order_items
    left join orders
        on order_items.order_id = orders.order_id
    left join products
        on order_items.product_id = products.product_id
    left join returns_by_order_item
        on order_items.order_item_id = returns_by_order_item.order_item_id

)

select
    order_item_id,
    order_id,
    product_id,
    customer_id,
    ordered_at,
    category,
    quantity,
    unit_price,
    gross_amount,
    discount_amount,
    net_amount,
    cogs,
    is_returned,
    returned_at,
    return_reason,
    refund_amount,
    is_wrong_item
from order_items_joined
