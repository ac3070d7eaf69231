-- A refund is at most the item's net amount (quantity x unit_price - discount).
select
    item_returns.return_id,
    item_returns.refund_amount,
    order_items.quantity * order_items.unit_price - order_items.discount_amount as net_amount
from {{ source('shop', 'returns') }} as item_returns
inner join {{ source('shop', 'order_items') }} as order_items
    on item_returns.order_item_id = order_items.order_item_id
where
    item_returns.refund_amount
    > order_items.quantity * order_items.unit_price - order_items.discount_amount
