{{
    config(
        materialized=fact_materialization(),
        pre_hook="{{ delete_recomputed_days('order_date') }}",
    )
}}

with

order_items as (

    select
        order_item_id,
        order_id,
        product_id,
        customer_id,
        ordered_at,
        category,
        quantity,
        unit_price,
        gross_amount,
        discount_amount,
        net_amount,
        cogs,
        is_returned,
        return_reason,
        refund_amount,
        is_wrong_item
    from {{ ref('int_order_items_joined') }}
    {{ where_recomputed('ordered_at', 'order_date') }}

)

select
    cast(order_item_id as bigint) as order_item_id,
    cast(order_id as bigint) as order_id,
    cast(product_id as bigint) as product_id,
    cast(customer_id as bigint) as customer_id,
    cast(ordered_at as timestamp) as ordered_at,
    cast(ordered_at as date) as order_date,
    cast(category as {{ string_type() }}) as category,
    cast(quantity as integer) as quantity,
    cast(unit_price as decimal(10, 2)) as unit_price,
    cast(gross_amount as decimal(12, 2)) as gross_amount,
    cast(discount_amount as decimal(12, 2)) as discount_amount,
    cast(net_amount as decimal(12, 2)) as net_amount,
    cast(cogs as decimal(12, 2)) as cogs,
    cast(is_returned as boolean) as is_returned,
    cast(return_reason as {{ string_type() }}) as return_reason,
    cast(refund_amount as decimal(12, 2)) as refund_amount,
    cast(is_wrong_item as boolean) as is_wrong_item
from order_items
