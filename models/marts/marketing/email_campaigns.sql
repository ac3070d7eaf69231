with

email_campaigns as (

    select
        email_campaign_id,
        campaign_name,
        sent_at,
        sends,
        opens,
        clicks
    from {{ ref('stg_marketing__email_campaigns') }}

)

select
    cast(email_campaign_id as bigint) as email_campaign_id,
    cast(campaign_name as {{ string_type() }}) as campaign_name,
    cast(sent_at as timestamp) as sent_at,
    cast(sent_at as date) as sent_date,
    cast(sends as bigint) as sends,
    cast(opens as bigint) as opens,
    cast(clicks as bigint) as clicks
from email_campaigns
