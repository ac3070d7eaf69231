with

source as (

    select
        session_id,
        customer_id,
        started_at,
        source,
        medium,
        campaign,
        landing_page,
        device,
        pageviews,
        duration_seconds,
        order_id
    from {{ source('web', 'sessions') }}

),

renamed as (

    select
        cast(session_id as bigint) as session_id,
        cast(customer_id as bigint) as customer_id,
        cast(started_at as timestamp) as started_at,
        lower(trim(cast(source as varchar))) as source,
        lower(trim(cast(medium as varchar))) as medium,
        nullif(lower(trim(cast(campaign as varchar))), '') as campaign,
        trim(cast(landing_page as varchar)) as landing_page,
        lower(trim(cast(device as varchar))) as device,
        cast(pageviews as integer) as pageviews,
        cast(duration_seconds as integer) as duration_seconds,
        cast(order_id as bigint) as order_id
    from source

)

select
    session_id,
    customer_id,
    started_at,
    source,
    medium,
    campaign,
    landing_page,
    device,
    pageviews,
    duration_seconds,
    order_id
from renamed
