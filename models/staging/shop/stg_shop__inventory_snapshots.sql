with

source as (

    select
        snapshot_date,
        product_id,
        quantity_on_hand
    from {{ source('shop', 'inventory_snapshots') }}

),

renamed as (

    select
        cast(snapshot_date as date) as snapshot_date,
        cast(product_id as bigint) as product_id,
        cast(quantity_on_hand as integer) as quantity_on_hand
    from source

)

select
    snapshot_date,
    product_id,
    quantity_on_hand
from renamed
