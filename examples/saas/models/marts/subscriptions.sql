-- segment and region beside each period: snapshot and churn KPIs slice by their model's columns
select
    subscriptions.subscription_id,
    subscriptions.account_id,
    subscriptions.plan,
    subscriptions.seats,
    subscriptions.mrr,
    subscriptions.started_on,
    subscriptions.ended_on,
    subscriptions.end_reason,
    row_number() over (
        partition by subscriptions.account_id order by subscriptions.started_on
    ) = 1 as is_first,
    accounts.segment,
    accounts.region
from {{ ref('stg_billing__subscriptions') }} as subscriptions
inner join {{ ref('stg_crm__accounts') }} as accounts
    on subscriptions.account_id = accounts.account_id
