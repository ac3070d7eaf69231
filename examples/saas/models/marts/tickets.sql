select
    ticket_id,
    account_id,
    created_at,
    resolved_at,
    priority,
    channel
from {{ ref('stg_support__tickets') }}
