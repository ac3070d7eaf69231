-- Trailing windows and period-to-date values of one distinct-count KPI, recounted from its
-- rows (a distinct count over a window is not a sum of its days' counts).
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

sightings as (
    -- period to date: an entity is new in a period on the day of its first sighting there,
    -- that is when its previous sighting is in an earlier period (or there is none)
    select
        day,
        dimension,
        dimension_value,
        lag(day) over (partition by dimension, dimension_value, entity order by day) as previous_day
    from entity_days
),

new_per_day as (
    select
        day,
        dimension,
        dimension_value,
        sum(case when __first_in_period__('week', day, previous_day) then 1 else 0 end)
            as week_to_date,
        sum(case when __first_in_period__('month', day, previous_day) then 1 else 0 end)
            as month_to_date,
        sum(case when __first_in_period__('quarter', day, previous_day) then 1 else 0 end)
            as quarter_to_date,
        sum(case when __first_in_period__('year', day, previous_day) then 1 else 0 end)
            as year_to_date
    from sightings
    group by day, dimension, dimension_value
),

day_windows as (
    -- each day's period-to-date windows, with the entities new in the window that day
    select
        p.window_name,
        d.grain,
        d.period_start,
        d.period_end,
        __period_start__(p.period_grain, d.period_start) as window_start,
        d.dimension,
        d.dimension_value,
        coalesce(
            case p.window_name
                when 'week_to_date' then n.week_to_date
                when 'month_to_date' then n.month_to_date
                when 'quarter_to_date' then n.quarter_to_date
                when 'year_to_date' then n.year_to_date
            end,
            0
        ) as new_entities
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
            n.day = d.period_start
            and n.dimension = d.dimension
            and n.dimension_value = d.dimension_value
    where d.grain = 'day'
),

to_date as (
    -- entities seen so far in the period: those carried from the day before the first
    -- counted day, plus a running sum of the entities new each day from it
    select
        w.window_name,
        w.grain,
        w.period_start,
        w.period_end,
        w.window_start,
        w.dimension,
        w.dimension_value,
        coalesce(c.value, 0) + sum(
            case when coalesce(w.period_start >= counted.first_day, true) then w.new_entities else 0 end
        ) over (
            partition by w.window_name, w.dimension, w.dimension_value, w.window_start
            order by w.period_start
        ) as value
    from day_windows as w
    cross join counted
    left join carried as c
        on
            c.window_name = w.window_name
            and c.dimension = w.dimension
            and c.dimension_value = w.dimension_value
            and c.window_start = w.window_start
),

sighting_periods as (
    -- each sighting's period and its previous sighting's, at each window's grain
    select
        w.window_name,
        w.grain,
        w.periods,
        s.dimension,
        s.dimension_value,
        __period_start__(w.grain, s.day) as period_start,
        __period_start__(w.grain, s.previous_day) as previous_start
    from sightings as s
    cross join window_definitions as w
),

coverage as (
    -- trailing windows: a sighting keeps its entity counted from its period for `periods`
    -- periods; after an earlier sighting, only from where that one's coverage ends
    select
        s.window_name,
        s.dimension,
        s.dimension_value,
        case
            when previous.period_index is null then cur.period_index
            else greatest(cur.period_index, previous.period_index + s.periods)
        end as covered_from,
        cur.period_index + s.periods as covered_until
    from sighting_periods as s
    inner join indexed as cur
        on
            cur.grain = s.grain
            and cur.dimension = s.dimension
            and cur.dimension_value = s.dimension_value
            and cur.period_start = s.period_start
    left join indexed as previous
        on
            previous.grain = s.grain
            and previous.dimension = s.dimension
            and previous.dimension_value = s.dimension_value
            and previous.period_start = s.previous_start
),

coverage_changes as (
    -- entities starting and ending their coverage in each period
    select
        window_name,
        dimension,
        dimension_value,
        period_index,
        sum(change) as change
    from (
        select window_name, dimension, dimension_value, covered_from as period_index, 1 as change
        from coverage
        where covered_from < covered_until
        union all
        select window_name, dimension, dimension_value, covered_until as period_index, -1 as change
        from coverage
        where covered_from < covered_until
    ) as changes
    group by window_name, dimension, dimension_value, period_index
),

trailing_counts as (
    select
        w.window_name,
        w.periods,
        cur.grain,
        cur.period_start,
        cur.period_end,
        cur.dimension,
        cur.dimension_value,
        cur.period_index,
        -- entities covering the period: a running sum of the changes
        sum(coalesce(c.change, 0)) over (
            partition by w.window_name, cur.dimension, cur.dimension_value order by cur.period_index
        ) as value
    from window_definitions as w
    inner join indexed as cur on w.grain = cur.grain
    left join coverage_changes as c
        on
            c.window_name = w.window_name
            and c.dimension = cur.dimension
            and c.dimension_value = cur.dimension_value
            and c.period_index = cur.period_index
),

trailing_windows as (
    -- each period's window: from the start of the period `periods - 1` before it
    select
        t.window_name,
        t.grain,
        t.period_start,
        t.period_end,
        first_period.period_start as window_start,
        t.dimension,
        t.dimension_value,
        t.value
    from trailing_counts as t
    inner join indexed as first_period
        on
            first_period.grain = t.grain
            and first_period.dimension = t.dimension
            and first_period.dimension_value = t.dimension_value
            and first_period.period_index = t.period_index - t.periods + 1
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
