with

tickets as (

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
    from {{ ref('stg_crm__tickets') }}

),

tickets_timed as (

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
        csat_score,
        {{ duration_between('created_at', 'first_response_at', 'minutes') }}
        as first_response_minutes,
        {{ duration_between('created_at', 'resolved_at', 'hours') }}
        as resolution_hours
    from tickets

)

select
    cast(ticket_id as bigint) as ticket_id,
    cast(customer_id as bigint) as customer_id,
    cast(order_id as bigint) as order_id,
    cast(agent_id as bigint) as agent_id,
    cast(created_at as timestamp) as created_at,
    cast(created_at as date) as created_date,
    cast(first_response_at as timestamp) as first_response_at,
    cast(resolved_at as timestamp) as resolved_at,
    cast(channel as {{ string_type() }}) as channel,
    cast(category as {{ string_type() }}) as category,
    category = 'complaint' as is_complaint,
    resolved_at is not null as is_resolved,
    cast(first_response_minutes as decimal(12, 2)) as first_response_minutes,
    cast(resolution_hours as decimal(12, 2)) as resolution_hours,
    cast(csat_score as integer) as csat_score
from tickets_timed
