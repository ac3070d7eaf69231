select
    account_id,
    signed_up_at,
    segment,
    region
from {{ ref('stg_crm__accounts') }}
