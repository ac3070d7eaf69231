with

source as (

    select
        return_id,
        order_item_id,
        returned_at,
        reason,
        refund_amount
    from {{ source('shop', 'returns') }}

),

renamed as (

    select
        cast(return_id as bigint) as return_id,
        cast(order_item_id as bigint) as order_item_id,
        cast(returned_at as timestamp) as returned_at,
        lower(trim(cast(reason as {{ string_type() }}))) as reason,
        cast(refund_amount as decimal(10, 2)) as refund_amount
    from source

)

select
    return_id,
    order_item_id,
    returned_at,
    reason,
    refund_amount
from renamed
