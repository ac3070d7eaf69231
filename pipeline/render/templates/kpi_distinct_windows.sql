-- Trailing windows and period-to-date values of one distinct-count KPI, recounted from its
-- rows (a distinct count over a window is not a sum of its days' counts).
-- Parsed by sqlglot; `entity_days` (distinct day, slice, entity of the KPI's rows), `spine`
-- (the KPI's periods and slices), `window_definitions` and `first_sightings` (the first
-- day each entity shows up in each week, month, quarter and year) are CTEs the compiler
-- puts in front; __period_start__ is replaced by the calendar's expression.
with indexed as (
    select
        grain,
        period_start,
        period_end,
        dimension,
        dimension_value,
        row_number() over (
            partition by grain, dimension, dimension_value order by period_start
        ) as period_index
    from spine
),

trailing_instances as (
    -- each period's window: from the start of the period `periods - 1` before it
    select
        w.window_name,
        cur.grain,
        cur.period_start,
        cur.period_end,
        first_period.period_start as window_start,
        cur.dimension,
        cur.dimension_value
    from window_definitions as w
    inner join indexed as cur on w.grain = cur.grain
    inner join indexed as first_period
        on
            first_period.grain = cur.grain
            and first_period.dimension = cur.dimension
            and first_period.dimension_value = cur.dimension_value
            and first_period.period_index = cur.period_index - w.periods + 1
),

trailing_windows as (
    select
        i.window_name,
        i.grain,
        i.period_start,
        i.period_end,
        i.window_start,
        i.dimension,
        i.dimension_value,
        count(distinct e.entity) as value
    from trailing_instances as i
    left join entity_days as e
        on
            e.dimension = i.dimension
            and e.dimension_value = i.dimension_value
            and e.day between i.window_start and i.period_end
    group by
        i.window_name, i.grain, i.period_start, i.period_end, i.window_start, i.dimension, i.dimension_value
),

new_per_day as (
    select
        window_name,
        window_start,
        dimension,
        dimension_value,
        first_day,
        count(*) as entities
    from first_sightings
    group by window_name, window_start, dimension, dimension_value, first_day
),

to_date as (
    -- entities seen so far in the period = entities whose first sighting is on or before the day
    select
        p.window_name,
        d.grain,
        d.period_start,
        d.period_end,
        __period_start__(p.period_grain, d.period_start) as window_start,
        d.dimension,
        d.dimension_value,
        coalesce(sum(n.entities), 0) as value
    from indexed as d
    cross join (
        values
        ('week_to_date', 'week'),
        ('month_to_date', 'month'),
        ('quarter_to_date', 'quarter'),
        ('year_to_date', 'year')
    ) as p (window_name, period_grain)
    left join new_per_day as n
        on
            n.window_name = p.window_name
            and n.dimension = d.dimension
            and n.dimension_value = d.dimension_value
            and n.window_start = __period_start__(p.period_grain, d.period_start)
            and n.first_day <= d.period_start
    where d.grain = 'day'
    group by
        p.window_name, p.period_grain, d.grain, d.period_start, d.period_end, d.dimension, d.dimension_value
)

select
    window_name,
    grain,
    period_start,
    period_end,
    window_start,
    dimension,
    dimension_value,
    cast(value as double precision) as value
from trailing_windows
union all
select
    window_name,
    grain,
    period_start,
    period_end,
    window_start,
    dimension,
    dimension_value,
    cast(value as double precision) as value
from to_date
