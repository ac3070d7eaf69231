with

source as (

    select
        spend_date,
        channel,
        campaign,
        impressions,
        clicks,
        spend
    from {{ source('marketing', 'ad_spend') }}

),

renamed as (

    select
        cast(spend_date as date) as spend_date,
        lower(trim(cast(channel as {{ string_type() }}))) as channel,
        lower(trim(cast(campaign as {{ string_type() }}))) as campaign,
        cast(impressions as bigint) as impressions,
        cast(clicks as bigint) as clicks,
        cast(spend as decimal(10, 2)) as spend
    from source

)

select
    spend_date,
    channel,
    campaign,
    impressions,
    clicks,
    spend
from renamed
