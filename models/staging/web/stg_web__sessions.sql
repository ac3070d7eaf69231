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
        lower(trim(cast(source as {{ string_type() }}))) as source,
        lower(trim(cast(medium as {{ string_type() }}))) as medium,
        nullif(lower(trim(cast(campaign as {{ string_type() }}))), '') as campaign,
        trim(cast(landing_page as {{ string_type() }})) as landing_page,
        lower(trim(cast(device as {{ string_type() }}))) as device,
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
