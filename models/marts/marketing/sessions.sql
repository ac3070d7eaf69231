{{
    config(
        materialized=fact_materialization(),
        pre_hook="{{ delete_recomputed_days('session_date') }}",
    )
}}

with

sessions as (

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
    from {{ ref('stg_web__sessions') }}
    {{ where_recomputed('started_at', 'session_date') }}

)

select
    cast(session_id as bigint) as session_id,
    cast(customer_id as bigint) as customer_id,
    cast(started_at as timestamp) as started_at,
    cast(started_at as date) as session_date,
    cast(source as {{ string_type() }}) as source,
    cast(medium as {{ string_type() }}) as medium,
    cast(campaign as {{ string_type() }}) as campaign,
    cast(landing_page as {{ string_type() }}) as landing_page,
    cast(device as {{ string_type() }}) as device,
    cast(pageviews as integer) as pageviews,
    cast(duration_seconds as integer) as duration_seconds,
    cast(order_id as bigint) as order_id,
    order_id is not null as is_converted
from sessions
