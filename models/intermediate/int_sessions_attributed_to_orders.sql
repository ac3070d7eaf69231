{#-
    Session-to-order attribution: for each order, the web session that converted
    to it (sessions.order_id). At most one session per order is expected (a source
    test guards it); should two exist, the earliest wins so the grain stays one row
    per order. Marketplace orders have no session and so no row here.
-#}
with

sessions as (

    select
        session_id,
        started_at,
        source,
        medium,
        campaign,
        order_id
    from {{ ref('stg_web__sessions') }}
    where order_id is not null

),

sessions_ranked as (

    select
        order_id,
        session_id,
        source,
        medium,
        campaign,
        row_number() over (
            partition by order_id
            order by started_at, session_id
        ) as session_rank
    from sessions

)

select
    order_id,
    session_id,
    source,
    medium,
    campaign
from sessions_ranked
where session_rank = 1
