with

products as (

    select
        product_id,
        product_name,
        category,
        price,
        unit_cost,
        launched_on
    from {{ ref('stg_shop__products') }}

)

select
    cast(product_id as bigint) as product_id,
    cast(product_name as {{ string_type() }}) as product_name,
    cast(category as {{ string_type() }}) as category,
    cast(price as decimal(10, 2)) as price,
    cast(unit_cost as decimal(10, 2)) as unit_cost,
    cast(launched_on as date) as launched_on
from products
