{#-
    The calendar: one row per day from var('start_date') to var('end_date'),
    with ISO weeks (weeks start on Monday; iso_year/iso_week as in ISO 8601).
-#}
{%- set start_date = var('start_date') -%}
{%- set end_date = var('end_date') -%}

with

day_offsets as (

    {{ day_offsets(dbt.datediff(
        "cast('" ~ start_date ~ "' as date)",
        "cast('" ~ end_date ~ "' as date)",
        'day'
    )) }}

),

days as (

    select
        cast(
            {{ dbt.dateadd('day', 'day_offset', "cast('" ~ start_date ~ "' as date)") }}
            as date
        ) as date_day
    from day_offsets

)

select
    cast(date_day as date) as date_day,
    cast({{ dbt.date_trunc('week', 'date_day') }} as date) as week_start,
    cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start,
    cast({{ dbt.date_trunc('quarter', 'date_day') }} as date) as quarter_start,
    cast({{ dbt.date_trunc('year', 'date_day') }} as date) as year_start,
    cast({{ iso_year("date_day") }} as integer) as iso_year,
    cast(extract(week from date_day) as integer) as iso_week,
    cast({{ iso_day_of_week("date_day") }} as integer) as day_of_week,
    {{ iso_day_of_week("date_day") }} in (6, 7) as is_weekend
from days
