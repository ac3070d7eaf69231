with

source as (

    select
        cost_month,
        cost_category,
        amount
    from {{ source('finance', 'operating_costs') }}

),

renamed as (

    select
        cast(cost_month as date) as cost_month,
        lower(trim(cast(cost_category as {{ string_type() }}))) as cost_category,
        cast(amount as decimal(12, 2)) as amount
    from source

)

select
    cost_month,
    cost_category,
    amount
from renamed
