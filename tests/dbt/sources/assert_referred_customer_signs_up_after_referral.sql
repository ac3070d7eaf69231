-- The referred customer signs up on or after the day of the referral.
select
    referrals.referral_id,
    referrals.referred_at,
    customers.signed_up_at
from {{ source('marketing', 'referrals') }} as referrals
inner join {{ source('shop', 'customers') }} as customers
    on referrals.referred_customer_id = customers.customer_id
where cast(customers.signed_up_at as date) < cast(referrals.referred_at as date)
