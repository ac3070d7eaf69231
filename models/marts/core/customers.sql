{{
    config(
        materialized=fact_materialization(),
        pre_hook="{{ delete_recomputed_customers() }}",
    )
}}

with

customers as (

    select
        customer_id,
        signed_up_at,
        acquisition_channel,
        region,
        segment
    from {{ ref('stg_shop__customers') }}
    {%- if recomputes() %}
    -- a daily run: the customers its pre-hook deleted (changed, new or with recomputed
    -- orders); the others stay as stored
    where customer_id not in (select customer_id from {{ this }})
    {%- endif %}

),

orders as (

    select
        order_id,
        customer_id,
        ordered_at,
        is_cancelled,
        net_revenue
    from {{ ref('orders') }}
    {%- if recomputes() %}
    where customer_id in (select customer_id from customers)
    {%- endif %}

),

orders_by_customer as (

    -- cancelled orders do not count: no first order, no revenue, no repeat purchase
    select
        customer_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) as order_count,
        sum(net_revenue) as lifetime_revenue
    from orders
    where not is_cancelled
    group by customer_id

),

customers_joined as (

    select
        customers.customer_id,
        customers.signed_up_at,
        cast(customers.signed_up_at as date) as signup_date,
        customers.acquisition_channel,
        customers.region,
        customers.segment,
        orders_by_customer.first_order_at,
        cast(orders_by_customer.first_order_at as date) as first_order_date,
        orders_by_customer.last_order_at,
        coalesce(orders_by_customer.order_count, 0) as order_count,
        coalesce(orders_by_customer.lifetime_revenue, 0) as lifetime_revenue,
        coalesce(orders_by_customer.order_count, 0) >= 2 as is_repeat_buyer
    from customers
    left join orders_by_customer
        on customers.customer_id = orders_by_customer.customer_id

)

select
    cast(customer_id as bigint) as customer_id,
    cast(signed_up_at as timestamp) as signed_up_at,
    cast(signup_date as date) as signup_date,
    cast(acquisition_channel as {{ string_type() }}) as acquisition_channel,
    cast(region as {{ string_type() }}) as region,
    cast(segment as {{ string_type() }}) as segment,
    cast(first_order_at as timestamp) as first_order_at,
    cast(first_order_date as date) as first_order_date,
    cast(last_order_at as timestamp) as last_order_at,
    cast(order_count as bigint) as order_count,
    cast(lifetime_revenue as decimal(12, 2)) as lifetime_revenue,
    cast(is_repeat_buyer as boolean) as is_repeat_buyer
from customers_joined
