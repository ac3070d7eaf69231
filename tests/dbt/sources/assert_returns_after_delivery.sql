-- An item is returned only after its order was delivered.
select
    item_returns.return_id,
    item_returns.returned_at,
    shipments.delivered_at
from {{ source('shop', 'returns') }} as item_returns
inner join {{ source('shop', 'order_items') }} as order_items
    on item_returns.order_item_id = order_items.order_item_id
left join {{ source('shop', 'shipments') }} as shipments
    on order_items.order_id = shipments.order_id
where
    shipments.delivered_at is null
    or item_returns.returned_at < shipments.delivered_at
