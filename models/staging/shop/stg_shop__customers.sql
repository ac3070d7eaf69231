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
        lower(trim(cast(acquisition_channel as {{ string_type() }}))) as acquisition_channel,
        lower(trim(cast(region as {{ string_type() }}))) as region,
        lower(trim(cast(segment as {{ string_type() }}))) as segment
    from source

)

select
    customer_id,
    signed_up_at,
    acquisition_channel,
    region,
    segment
from renamed
