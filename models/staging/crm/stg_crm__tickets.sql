with

source as (

    select
        ticket_id,
        customer_id,
        order_id,
        agent_id,
        created_at,
        first_response_at,
        resolved_at,
        channel,
        category,
        csat_score
    from {{ source('crm', 'tickets') }}

),

renamed as (

    select
        cast(ticket_id as bigint) as ticket_id,
        cast(customer_id as bigint) as customer_id,
        cast(order_id as bigint) as order_id,
        cast(agent_id as bigint) as agent_id,
        cast(created_at as timestamp) as created_at,
        cast(first_response_at as timestamp) as first_response_at,
        cast(resolved_at as timestamp) as resolved_at,
        lower(trim(cast(channel as {{ string_type() }}))) as channel,
        lower(trim(cast(category as {{ string_type() }}))) as category,
        cast(csat_score as integer) as csat_score
    from source

)

select
    ticket_id,
    customer_id,
    order_id,
    agent_id,
    created_at,
    first_response_at,
    resolved_at,
    channel,
    category,
    csat_score
from renamed
