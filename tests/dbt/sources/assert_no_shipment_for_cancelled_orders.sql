-- Shipments exist only for orders that were not cancelled.
select
    shipments.shipment_id,
    orders.order_id,
    orders.status
from {{ source('shop', 'shipments') }} as shipments
inner join {{ source('shop', 'orders') }} as orders
    on shipments.order_id = orders.order_id
where orders.status = 'cancelled'
