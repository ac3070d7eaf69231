with

source as (

    select
        lead_id,
        source,
        created_at,
        qualified_at,
        converted_at
    from {{ source('crm', 'leads') }}

),

renamed as (

    select
        cast(lead_id as bigint) as lead_id,
        lower(trim(cast(source as {{ string_type() }}))) as source,
        cast(created_at as timestamp) as created_at,
        cast(qualified_at as timestamp) as qualified_at,
        cast(converted_at as timestamp) as converted_at
    from source

)

select
    lead_id,
    source,
    created_at,
    qualified_at,
    converted_at
from renamed
