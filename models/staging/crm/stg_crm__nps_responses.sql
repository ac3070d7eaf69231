with

source as (

    select
        nps_response_id,
        customer_id,
        responded_at,
        score
    from {{ source('crm', 'nps_responses') }}

),

renamed as (

    select
        cast(nps_response_id as bigint) as nps_response_id,
        cast(customer_id as bigint) as customer_id,
        cast(responded_at as timestamp) as responded_at,
        cast(score as integer) as score
    from source

)

select
    nps_response_id,
    customer_id,
    responded_at,
    score
from renamed
