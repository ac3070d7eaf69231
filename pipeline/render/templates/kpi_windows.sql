-- Trailing windows (declared per KPI) and period-to-date values (at day grain) of KPIs
-- whose values combine over periods: sums, and ratios as Σ numerator / Σ denominator.
with indexed as (
    -- the rows of KPIs that add up over periods, numbered in each series
    select
        o.kpi,
        o.grain,
        o.period_start,
        o.period_end,
        o.dimension,
        o.dimension_value,
        o.value,
        o.numerator,
        o.denominator,
        c.additivity,
        row_number() over (
            partition by o.kpi, o.grain, o.dimension, o.dimension_value order by o.period_start
        ) as period_index
    from observations as o
    inner join catalog as c on o.kpi = c.kpi
    where c.additivity in ('additive', 'ratio')
),

trailing_windows as (
    -- each declared window ending in each period: the periods before it, summed
    select
        cur.kpi,
        w.window_name,
        cur.grain,
        cur.period_start,
        cur.period_end,
        min(prev.period_start) as window_start,
        cur.dimension,
        cur.dimension_value,
        case
            when cur.additivity = 'additive' then sum(prev.value)
            else __divide__(sum(prev.numerator), sum(prev.denominator))
        end as value,
        case when cur.additivity = 'ratio' then sum(prev.numerator) end as numerator,
        case when cur.additivity = 'ratio' then sum(prev.denominator) end as denominator
    from window_definitions as w
    inner join indexed as cur on w.kpi = cur.kpi and w.grain = cur.grain
    cross join lateral generate_series(0, cast(w.periods as integer) - 1) as offsets (k)
    inner join indexed as prev
        on
            prev.kpi = cur.kpi
            and prev.grain = cur.grain
            and prev.dimension = cur.dimension
            and prev.dimension_value = cur.dimension_value
            and prev.period_index = cur.period_index - offsets.k
    group by
        cur.kpi,
        w.window_name,
        w.periods,
        cur.grain,
        cur.period_start,
        cur.period_end,
        cur.dimension,
        cur.dimension_value,
        cur.additivity
    -- a window is shown only once it is complete
    having count(*) = w.periods
),

days_in_periods as (
    -- each day in the week, month, quarter and year that hold it
    select
        d.kpi,
        p.window_name,
        d.grain,
        d.period_start,
        d.period_end,
        __period_start__(p.period_grain, d.period_start) as window_start,
        d.dimension,
        d.dimension_value,
        d.value,
        d.numerator,
        d.denominator,
        d.additivity
    from indexed as d
    cross join (
        values
        ('week_to_date', 'week'),
        ('month_to_date', 'month'),
        ('quarter_to_date', 'quarter'),
        ('year_to_date', 'year')
    ) as p (window_name, period_grain)
    where d.grain = 'day'
),

to_date as (
    -- period to date: a running total over each period's days
    select
        kpi,
        window_name,
        grain,
        period_start,
        period_end,
        window_start,
        dimension,
        dimension_value,
        case
            when additivity = 'additive'
                then sum(value) over (
                    partition by kpi, window_name, dimension, dimension_value, window_start
                    order by period_start rows between unbounded preceding and current row
                )
            else __divide__(
                sum(numerator) over (
                    partition by kpi, window_name, dimension, dimension_value, window_start
                    order by period_start rows between unbounded preceding and current row
                ),
                sum(denominator) over (
                    partition by kpi, window_name, dimension, dimension_value, window_start
                    order by period_start rows between unbounded preceding and current row
                )
            )
        end as value,
        case when additivity = 'ratio' then sum(numerator) over (
            partition by kpi, window_name, dimension, dimension_value, window_start
            order by period_start rows between unbounded preceding and current row
        ) end as numerator,
        case when additivity = 'ratio' then sum(denominator) over (
            partition by kpi, window_name, dimension, dimension_value, window_start
            order by period_start rows between unbounded preceding and current row
        ) end as denominator
    from days_in_periods
)

select
    kpi,
    window_name,
    grain,
    period_start,
    period_end,
    window_start,
    dimension,
    dimension_value,
    value,
    numerator,
    denominator
from trailing_windows
union all
select
    kpi,
    window_name,
    grain,
    period_start,
    period_end,
    window_start,
    dimension,
    dimension_value,
    value,
    numerator,
    denominator
from to_date
union all
-- distinct counts, recounted from rows in their own models
select
    kpi,
    window_name,
    grain,
    period_start,
    period_end,
    window_start,
    dimension,
    dimension_value,
    value,
    cast(null as double precision) as numerator,
    cast(null as double precision) as denominator
from distinct_windows
