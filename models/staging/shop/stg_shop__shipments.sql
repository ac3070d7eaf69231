with

source as (

    select
        shipment_id,
        order_id,
        carrier,
        shipped_at,
        delivered_at
    from {{ source('shop', 'shipments') }}

),

renamed as (

    select
        cast(shipment_id as bigint) as shipment_id,
        cast(order_id as bigint) as order_id,
        lower(trim(cast(carrier as {{ string_type() }}))) as carrier,
        cast(shipped_at as timestamp) as shipped_at,
        cast(delivered_at as timestamp) as delivered_at
    from source

)

select
    shipment_id,
    order_id,
    carrier,
    shipped_at,
    delivered_at
from renamed
