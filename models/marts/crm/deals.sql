with

deals as (

    select
        deal_id,
        lead_id,
        sales_rep_id,
        stage,
        amount,
        created_on,
        closed_on
    from {{ ref('stg_crm__deals') }}

)

select
    cast(deal_id as bigint) as deal_id,
    cast(lead_id as bigint) as lead_id,
    cast(sales_rep_id as bigint) as sales_rep_id,
    cast(stage as {{ string_type() }}) as stage,
    cast(amount as decimal(12, 2)) as amount,
    cast(created_on as date) as created_on,
    cast(closed_on as date) as closed_on,
    stage = 'won' as is_won,
    stage in ('won', 'lost') as is_closed,
    cast({{ dbt.datediff('created_on', 'closed_on', 'day') }} as integer) as days_to_close
from deals
