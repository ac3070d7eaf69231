select
    invoice_id,
    account_id,
    subscription_id,
    issued_on,
    amount,
    status
from {{ ref('stg_billing__invoices') }}
