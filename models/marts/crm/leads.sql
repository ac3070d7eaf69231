with

leads as (

    select
        lead_id,
        source,
        created_at,
        qualified_at,
        converted_at
    from {{ ref('stg_crm__leads') }}

)

select
    cast(lead_id as bigint) as lead_id,
    cast(source as {{ string_type() }}) as source,
    cast(created_at as timestamp) as created_at,
    cast(created_at as date) as created_date,
    cast(qualified_at as timestamp) as qualified_at,
    cast(converted_at as timestamp) as converted_at,
    qualified_at is not null as is_qualified,
    converted_at is not null as is_converted
from leads
