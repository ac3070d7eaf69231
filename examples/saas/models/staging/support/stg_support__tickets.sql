select
    cast(ticket_id as bigint) as ticket_id,
    cast(account_id as bigint) as account_id,
    cast(created_at as timestamp) as created_at,
    cast(resolved_at as timestamp) as resolved_at,
    lower(trim(cast(priority as varchar))) as priority,
    lower(trim(cast(channel as varchar))) as channel
from {{ source('support', 'tickets') }}
