with

source as (

    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price,
        discount_amount
    from {{ source('shop', 'order_items') }}

),

renamed as (

    select
        cast(order_item_id as bigint) as order_item_id,
        cast(order_id as bigint) as order_id,
        cast(product_id as bigint) as product_id,
        cast(quantity as integer) as quantity,
        cast(unit_price as decimal(10, 2)) as unit_price,
        cast(discount_amount as decimal(10, 2)) as discount_amount
    from source

)

select
    order_item_id,
    order_id,
    product_id,
    quantity,
    unit_price,
    discount_amount
from renamed
