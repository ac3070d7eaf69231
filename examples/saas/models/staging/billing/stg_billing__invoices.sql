select
    cast(invoice_id as bigint) as invoice_id,
    cast(account_id as bigint) as account_id,
    cast(subscription_id as bigint) as subscription_id,
    cast(issued_on as date) as issued_on,
    cast(amount as decimal(12, 2)) as amount,
    lower(trim(cast(status as varchar))) as status
from {{ source('billing', 'invoices') }}
