-- Each change of an account's MRR on the day it takes effect: the first period starts (new),
-- a later period starts at a higher or lower MRR (expansion, contraction), the last period
-- of a cancelled subscription ends (churn, the day after its last day).
with periods as (

    select
        *,
        lag(mrr) over (partition by account_id order by started_on) as previous_mrr
    from {{ ref('subscriptions') }}

),

starts as (

    select
        subscription_id * 10 + 1 as movement_id,
        subscription_id,
        account_id,
        started_on as movement_on,
        case
            when previous_mrr is null then 'new'
            when mrr > previous_mrr then 'expansion'
            else 'contraction'
        end as movement_type,
        cast(mrr - coalesce(previous_mrr, 0) as decimal(12, 2)) as mrr_delta,
        segment
    from periods
    where previous_mrr is null or mrr <> previous_mrr

),

churns as (

    select
        subscription_id * 10 + 2 as movement_id,
        subscription_id,
        account_id,
        cast(ended_on + interval '1 day' as date) as movement_on,
        'churn' as movement_type,
        cast(-mrr as decimal(12, 2)) as mrr_delta,
        segment
    from periods
    where end_reason = 'cancelled'

)

select * from starts
union all
select * from churns
