with

ad_spend as (

    select
        spend_date,
        channel,
        campaign,
        impressions,
        clicks,
        spend
    from {{ ref('stg_marketing__ad_spend') }}

)

select
    cast(spend_date as date) as spend_date,
    cast(channel as {{ string_type() }}) as channel,
    cast(campaign as {{ string_type() }}) as campaign,
    cast(impressions as bigint) as impressions,
    cast(clicks as bigint) as clicks,
    cast(spend as decimal(12, 2)) as spend
from ad_spend
