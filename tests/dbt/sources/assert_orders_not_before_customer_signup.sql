-- An order is never placed before its customer signed up.
select
    orders.order_id,
    orders.ordered_at,
    customers.signed_up_at
from {{ source('shop', 'orders') }} as orders
inner join {{ source('shop', 'customers') }} as customers
    on orders.customer_id = customers.customer_id
where orders.ordered_at < customers.signed_up_at
