select
    cast(trial_id as bigint) as trial_id,
    cast(account_id as bigint) as account_id,
    cast(started_at as timestamp) as started_at,
    cast(converted_at as timestamp) as converted_at
from {{ source('crm', 'trials') }}
