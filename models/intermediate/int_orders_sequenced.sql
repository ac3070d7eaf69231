{#-
    Each order's place in its customer's history.
    customer_order_number: 1, 2, ... over all the customer's orders by (ordered_at, order_id).
    is_first_order: the customer's earliest order that was not cancelled (ties on
    ordered_at broken by the lower order_id); a cancelled order is never a first order.
-#}
with

orders as (

    select
        order_id,
        customer_id,
        ordered_at,
        status
    from {{ ref('stg_shop__orders') }}

),

orders_numbered as (

    select
        order_id,
        customer_id,
        ordered_at,
        status = 'cancelled' as is_cancelled,
        row_number() over (
            partition by customer_id
            order by ordered_at, order_id
        ) as customer_order_number,
        row_number() over (
            partition by customer_id, case when status = 'cancelled' then 1 else 0 end
            order by ordered_at, order_id
        ) as number_within_status
    from orders

)

select
    order_id,
    customer_id,
    ordered_at,
    is_cancelled,
    cast(customer_order_number as bigint) as customer_order_number,
    (not is_cancelled and number_within_status = 1) as is_first_order
from orders_numbered
