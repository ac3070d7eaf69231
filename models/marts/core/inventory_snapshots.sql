with

inventory_snapshots as (

    select
        snapshot_date,
        product_id,
        quantity_on_hand
    from {{ ref('stg_shop__inventory_snapshots') }}

),

products as (

    select
        product_id,
        category,
        unit_cost
    from {{ ref('stg_shop__products') }}

),

snapshots_valued as (

    select
        inventory_snapshots.snapshot_date,
        inventory_snapshots.product_id,
        products.category,
        inventory_snapshots.quantity_on_hand,
        inventory_snapshots.quantity_on_hand * products.unit_cost as stock_value
    from inventory_snapshots
    left join products
        on inventory_snapshots.product_id = products.product_id

)

select
    cast(snapshot_date as date) as snapshot_date,
    cast(product_id as bigint) as product_id,
    cast(category as {{ string_type() }}) as category,
    cast(quantity_on_hand as integer) as quantity_on_hand,
    cast(stock_value as decimal(14, 2)) as stock_value
from snapshots_valued
