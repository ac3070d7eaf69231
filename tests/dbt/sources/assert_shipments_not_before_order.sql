-- ordered_at <= shipped_at (shipped_at <= delivered_at is a test on the table itself).
select
    shipments.shipment_id,
    orders.ordered_at,
    shipments.shipped_at
from {{ source('shop', 'shipments') }} as shipments
inner join {{ source('shop', 'orders') }} as orders
    on shipments.order_id = orders.order_id
where shipments.shipped_at < orders.ordered_at
