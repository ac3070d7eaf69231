with

nps_responses as (

    select
        nps_response_id,
        customer_id,
        responded_at,
        score
    from {{ ref('stg_crm__nps_responses') }}

)

select
    cast(nps_response_id as bigint) as nps_response_id,
    cast(customer_id as bigint) as customer_id,
    cast(responded_at as timestamp) as responded_at,
    cast(responded_at as date) as response_date,
    cast(score as integer) as score,
    score >= 9 as is_promoter,
    score <= 6 as is_detractor,
    score in (7, 8) as is_passive
from nps_responses
