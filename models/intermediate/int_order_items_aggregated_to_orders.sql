{#- Order totals: the order items' amounts summed to one row per order that has items. -#}
with

order_items as (

    select
        order_id,
        quantity,
        gross_amount,
        discount_amount,
        net_amount,
        cogs,
        is_returned,
        refund_amount,
        is_wrong_item
    from {{ ref('int_order_items_joined') }}

),

order_totals as (

    select
        order_id,
        cast(count(*) as bigint) as item_count,
        cast(sum(quantity) as bigint) as units,
        cast(sum(gross_amount) as decimal(12, 2)) as gross_revenue,
        cast(sum(discount_amount) as decimal(12, 2)) as discount_amount,
        cast(sum(net_amount) as decimal(12, 2)) as net_sales,
        cast(sum(cogs) as decimal(12, 2)) as cogs,
        cast(sum(refund_amount) as decimal(12, 2)) as refund_amount,
        max(case when is_returned then 1 else 0 end) = 1 as is_returned,
        max(case when is_wrong_item then 1 else 0 end) = 1 as has_wrong_item
    from order_items
    group by order_id

)

select
    order_id,
    item_count,
    units,
    gross_revenue,
    discount_amount,
    net_sales,
    cogs,
    refund_amount,
    cast(net_sales - refund_amount as decimal(12, 2)) as net_revenue,
    is_returned,
    has_wrong_item
from order_totals
