with

operating_costs as (

    select
        cost_month,
        cost_category,
        amount
    from {{ ref('stg_finance__operating_costs') }}

)

select
    cast(cost_month as date) as cost_month,
    cast(cost_category as {{ string_type() }}) as cost_category,
    cast(amount as decimal(12, 2)) as amount
from operating_costs
