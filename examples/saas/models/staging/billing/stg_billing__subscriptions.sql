select
    cast(subscription_id as bigint) as subscription_id,
    cast(account_id as bigint) as account_id,
    lower(trim(cast(plan as varchar))) as plan,
    cast(seats as integer) as seats,
    cast(mrr as decimal(12, 2)) as mrr,
    cast(started_on as date) as started_on,
    cast(ended_on as date) as ended_on,
    lower(trim(cast(end_reason as varchar))) as end_reason
from {{ source('billing', 'subscriptions') }}
