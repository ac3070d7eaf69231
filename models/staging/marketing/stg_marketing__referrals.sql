with

source as (

    select
        referral_id,
        referrer_customer_id,
        referred_customer_id,
        referred_at
    from {{ source('marketing', 'referrals') }}

),

renamed as (

    select
        cast(referral_id as bigint) as referral_id,
        cast(referrer_customer_id as bigint) as referrer_customer_id,
        cast(referred_customer_id as bigint) as referred_customer_id,
        cast(referred_at as timestamp) as referred_at
    from source

)

select
    referral_id,
    referrer_customer_id,
    referred_customer_id,
    referred_at
from renamed
