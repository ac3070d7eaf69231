select
    cast(account_id as bigint) as account_id,
    cast(signed_up_at as timestamp) as signed_up_at,
    lower(trim(cast(segment as varchar))) as segment,
    lower(trim(cast(region as varchar))) as region
from {{ source('crm', 'accounts') }}
