with

source as (

    select
        customer_id,
        signed_up_at,
        acquisition_channel,
        region,
        segment
    from {{ source('shop', 'customers') }}

),

renamed as (

    select
        cast(customer_id as bigint) as customer_id,
        cast(signed_up_at as timestamp) as signed_up_at,
        lower(trim(cast(acquisition_channel as varchar))) as acquisition_channel,
        lower(trim(cast(region as varchar))) as region,
        lower(trim(cast(segment as varchar))) as segment
    from source

)

select
    customer_id,
    signed_up_at,
    acquisition_channel,
    region,
    segment
from renamed
