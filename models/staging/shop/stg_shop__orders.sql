with

source as (

    select
        order_id,
        customer_id,
        ordered_at,
        status,
        channel,
        device
    from {{ source('shop', 'orders') }}

),

renamed as (

    select
        cast(order_id as bigint) as order_id,
        cast(customer_id as bigint) as customer_id,
        cast(ordered_at as timestamp) as ordered_at,
        lower(trim(cast(status as {{ string_type() }}))) as status,
        lower(trim(cast(channel as {{ string_type() }}))) as channel,
        lower(trim(cast(device as {{ string_type() }}))) as device
    from source

)

select
    order_id,
    customer_id,
    ordered_at,
    status,
    channel,
    device
from renamed
