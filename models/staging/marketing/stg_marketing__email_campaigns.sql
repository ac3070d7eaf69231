with

source as (

    select
        email_campaign_id,
        campaign_name,
        sent_at,
        sends,
        opens,
        clicks
    from {{ source('marketing', 'email_campaigns') }}

),

renamed as (

    select
        cast(email_campaign_id as bigint) as email_campaign_id,
        trim(cast(campaign_name as {{ string_type() }})) as campaign_name,
        cast(sent_at as timestamp) as sent_at,
        cast(sends as bigint) as sends,
        cast(opens as bigint) as opens,
        cast(clicks as bigint) as clicks
    from source

)

select
    email_campaign_id,
    campaign_name,
    sent_at,
    sends,
    opens,
    clicks
from renamed
