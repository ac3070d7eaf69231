-- The long KPI table: observations with their previous period, same period last year,
-- partial-period comparison, target, attainment, status, projection to the period's end
-- and deviation flag.
with as_of as (
    -- the data's last day: the period holding it is the current, partial one
    select max(period_start) as last_day
    from observations
    where grain = 'day'
),

base as (
    -- each KPI row with its additivity, whether its period is the partial one, the periods
    -- before it and the start of the same period last year
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
        coalesce(o.period_end > a.last_day, false) as is_partial_period,
        case when o.period_end > a.last_day then cast(__days_between__(o.period_start, a.last_day) + 1 as integer) end as elapsed_days,
        lag(o.value) over (
            partition by o.kpi, o.grain, o.dimension, o.dimension_value order by o.period_start
        ) as previous_value,
        lag(o.period_start) over (
            partition by o.kpi, o.grain, o.dimension, o.dimension_value order by o.period_start
        ) as previous_start,
        lag(o.period_end) over (
            partition by o.kpi, o.grain, o.dimension, o.dimension_value order by o.period_start
        ) as previous_end,
        row_number() over (
            partition by o.kpi, o.grain, o.dimension, o.dimension_value order by o.period_start
        ) as period_index,
        __last_year_start__(o.grain, o.period_start) as last_year_start
    from observations as o
    inner join catalog as c on o.kpi = c.kpi
    cross join as_of as a
),

previous_to_date as (
    -- the previous period over as many days as the partial period has had
    select
        b.kpi,
        b.grain,
        b.period_start,
        b.dimension,
        b.dimension_value,
        case
            when b.additivity = 'additive' then sum(d.value)
            else __divide__(sum(d.numerator), sum(d.denominator))
        end as previous_value_to_date
    from base as b
    inner join observations as d
        on
            d.kpi = b.kpi
            and d.grain = 'day'
            and d.dimension = b.dimension
            and d.dimension_value = b.dimension_value
            and d.period_start >= b.previous_start
            and d.period_start < b.previous_start + b.elapsed_days
            and d.period_start <= b.previous_end
    where b.is_partial_period and b.grain <> 'day' and b.additivity in ('additive', 'ratio')
    group by b.kpi, b.grain, b.period_start, b.dimension, b.dimension_value, b.additivity
),

pace_reference as (
    -- a partial period's days 50 to 54 weeks earlier (the same weekdays, about the same
    -- dates a year before), in each shift the history holds all of: their totals over the
    -- whole period and up to its elapsed day
    select
        kpi,
        grain,
        period_start,
        dimension,
        dimension_value,
        sum(value_total) as value_total,
        sum(value_to_date) as value_to_date,
        sum(numerator_total) as numerator_total,
        sum(numerator_to_date) as numerator_to_date,
        sum(denominator_total) as denominator_total,
        sum(denominator_to_date) as denominator_to_date
    from (
        select
            b.kpi,
            b.grain,
            b.period_start,
            b.dimension,
            b.dimension_value,
            sum(d.value) as value_total,
            sum(case when d.period_start < b.period_start - 7 * w.weeks + b.elapsed_days then d.value end)
                as value_to_date,
            sum(d.numerator) as numerator_total,
            sum(case when d.period_start < b.period_start - 7 * w.weeks + b.elapsed_days then d.numerator end)
                as numerator_to_date,
            sum(d.denominator) as denominator_total,
            sum(case when d.period_start < b.period_start - 7 * w.weeks + b.elapsed_days then d.denominator end)
                as denominator_to_date
        from base as b
        cross join (values (50), (51), (52), (53), (54)) as w (weeks)
        inner join observations as d
            on
                d.kpi = b.kpi
                and d.grain = 'day'
                and d.dimension = b.dimension
                and d.dimension_value = b.dimension_value
                and d.period_start >= b.period_start - 7 * w.weeks
                and d.period_start <= b.period_end - 7 * w.weeks
        where b.is_partial_period and b.grain <> 'day' and b.additivity in ('additive', 'ratio')
        group by b.kpi, b.grain, b.period_start, b.period_end, b.dimension, b.dimension_value, w.weeks
        having count(*) = __days_between__(b.period_start, b.period_end) + 1
    ) as shifted
    group by kpi, grain, period_start, dimension, dimension_value
),

paces as (
    -- a partial period's value at its end: to date / the share of the total expected by
    -- its elapsed day, half the references' share and half the share of days elapsed (the
    -- latter alone without references with positive totals); a ratio paces its numerator
    -- and its denominator; a KPI not tracked by day has no days to pace
    select
        b.kpi,
        b.grain,
        b.period_start,
        b.dimension,
        b.dimension_value,
        case
            when b.additivity = 'additive'
                then __paced__(b.value, r.value_to_date, r.value_total, b.elapsed_share)
            else __divide__(
                __paced__(b.numerator, r.numerator_to_date, r.numerator_total, b.elapsed_share),
                __paced__(b.denominator, r.denominator_to_date, r.denominator_total, b.elapsed_share)
            )
        end as projected_value
    from (
        select
            *,
            cast(elapsed_days as double precision) / (__days_between__(period_start, period_end) + 1) as elapsed_share
        from base
        where
            is_partial_period
            and grain <> 'day'
            and additivity in ('additive', 'ratio')
            and kpi in (select kpi from observations where grain = 'day')
    ) as b
    left join pace_reference as r
        on
            b.kpi = r.kpi
            and b.grain = r.grain
            and b.period_start = r.period_start
            and b.dimension = r.dimension
            and b.dimension_value = r.dimension_value
),

days as (
    -- each day of the data
    select cast(series.day as date) as day
    from (select min(period_start) as first_day, max(period_end) as last_day from observations) as bounds
    cross join lateral generate_series(
        cast(bounds.first_day as timestamp), cast(bounds.last_day as timestamp), interval '1 day'
    ) as series (day)
),

target_days as (
    -- constant and series targets, day by day, with the period of `per` each day falls in;
    -- on each day the first target (in declaration order) that covers it applies
    select *
    from (
        select
            t.kpi,
            t.source,
            coalesce(t.dimension, 'total') as dimension,
            coalesce(t.dimension_value, 'total') as dimension_value,
            t.carry,
            t.value,
            d.day,
            __days_between__(__period_start__(t.per, d.day), __period_end__(t.per, __period_start__(t.per, d.day))) + 1 as per_days,
            __period_start__(t.per, d.day) as per_start,
            row_number() over (
                partition by t.kpi, t.dimension, t.dimension_value, d.day order by t.priority
            ) as day_rank
        from target_definitions as t
        inner join days as d
            on
                (t.valid_from is null or d.day >= t.valid_from)
                and (t.valid_to is null or d.day <= t.valid_to)
                and (t.kind = 'value' or t.series_start = __period_start__(t.per, d.day))
        where t.kind in ('value', 'series') and t.carry in ('sum', 'level')
    ) as ranked
    where day_rank = 1
),

target_periods as (
    -- each target day in the period of every grain that holds it (for equality joins)
    select
        td.*,
        g.grain,
        __period_start__(g.grain, td.day) as period_start
    from target_days as td
    cross join (values ('day'), ('week'), ('month'), ('quarter'), ('year')) as g (grain)
),

target_pieces as (
    -- each observed period's overlap with each period a target is stated for
    select
        b.kpi,
        b.grain,
        b.period_start,
        b.period_end,
        b.dimension,
        b.dimension_value,
        tp.source,
        tp.carry,
        tp.value,
        tp.per_days,
        count(*) as days,
        count(case when b.elapsed_days is null or tp.day < b.period_start + b.elapsed_days then 1 end) as days_to_date
    from base as b
    inner join target_periods as tp
        on
            tp.kpi = b.kpi
            and tp.grain = b.grain
            and tp.period_start = b.period_start
            and tp.dimension = b.dimension
            and tp.dimension_value = b.dimension_value
    group by
        b.kpi,
        b.grain,
        b.period_start,
        b.period_end,
        b.dimension,
        b.dimension_value,
        b.elapsed_days,
        tp.source,
        tp.carry,
        tp.value,
        tp.per_start,
        tp.per_days
),

spread_targets as (
    -- amounts and counts: each stated period's share by days (exact when periods align);
    -- rates and levels: the day-weighted mean; for a partial period, the share due by its last day
    select
        kpi,
        grain,
        period_start,
        dimension,
        dimension_value,
        0 as tier,
        0 as priority,
        string_agg(distinct source, '; ' order by source) as source,
        case
            when max(carry) = 'sum' then sum(value * days / per_days)
            else sum(value * days) / sum(days)
        end as target,
        case
            when max(carry) = 'sum' then sum(value * days_to_date / per_days)
            else sum(value * days) / sum(days)
        end as target_to_date
    from target_pieces
    group by kpi, grain, period_start, period_end, dimension, dimension_value
    -- a target applies to a period only when targets cover every day of it
    having sum(days) = __days_between__(period_start, period_end) + 1
),

exact_targets as (
    -- targets of KPIs that do not carry to other grains (distinct counts)
    select
        b.kpi,
        b.grain,
        b.period_start,
        b.dimension,
        b.dimension_value,
        0 as tier,
        t.priority,
        t.source,
        t.value as target,
        t.value as target_to_date
    from base as b
    inner join target_definitions as t
        on
            t.kpi = b.kpi
            and t.carry = 'exact'
            and t.per = b.grain
            and (t.kind = 'value' or t.series_start = b.period_start)
            and (t.valid_from is null or b.period_start >= t.valid_from)
            and (t.valid_to is null or b.period_end <= t.valid_to)
            and coalesce(t.dimension, 'total') = b.dimension
            and coalesce(t.dimension_value, 'total') = b.dimension_value
),

growth_targets as (
    -- the same period last year, grown by the target's rate
    select
        b.kpi,
        b.grain,
        b.period_start,
        b.dimension,
        b.dimension_value,
        1 as tier,
        t.priority,
        t.source,
        ly.value * (1 + t.growth) as target,
        ly.value * (1 + t.growth) as target_to_date
    from base as b
    inner join target_definitions as t
        on
            t.kpi = b.kpi
            and t.kind = 'growth'
            and (t.valid_from is null or b.period_start >= t.valid_from)
            and (t.valid_to is null or b.period_end <= t.valid_to)
            and coalesce(t.dimension, 'total') = b.dimension
            and coalesce(t.dimension_value, 'total') = b.dimension_value
    inner join observations as ly
        on
            ly.kpi = b.kpi
            and ly.grain = b.grain
            and ly.dimension = b.dimension
            and ly.dimension_value = b.dimension_value
            and ly.period_start = b.last_year_start
),

chosen_targets as (
    -- value and series targets first, then the first growth target that applies
    select
        kpi,
        grain,
        period_start,
        dimension,
        dimension_value,
        target,
        target_to_date,
        source,
        row_number() over (
            partition by kpi, grain, period_start, dimension, dimension_value order by tier, priority
        ) as rank
    from (
        select * from spread_targets
        union all
        select * from exact_targets
        union all
        select * from growth_targets
    ) as candidates
    where target is not null
),

recent_periods as (
    -- mean and spread of the periods before, for the deviation flag
    select
        b.kpi,
        b.grain,
        b.period_start,
        b.dimension,
        b.dimension_value,
        avg(p.value) as trailing_mean,
        stddev_samp(p.value) as trailing_stddev
    from base as b
    inner join catalog as c on b.kpi = c.kpi
    cross join lateral generate_series(1, c.deviation_periods) as offsets (k)
    inner join base as p
        on
            p.kpi = b.kpi
            and p.grain = b.grain
            and p.dimension = b.dimension
            and p.dimension_value = b.dimension_value
            and p.period_index = b.period_index - offsets.k
            and not p.is_partial_period
    group by b.kpi, b.grain, b.period_start, b.dimension, b.dimension_value, c.deviation_periods
    having count(p.value) = c.deviation_periods
)

select
    b.kpi,
    c.label,
    c.category,
    c.format,
    c.unit,
    c.direction,
    b.grain,
    b.period_start,
    b.period_end,
    b.dimension,
    b.dimension_value,
    b.value,
    b.numerator,
    b.denominator,
    b.is_partial_period,
    b.previous_value,
    b.value - b.previous_value as previous_change,
    __divide__(b.value - b.previous_value, abs(b.previous_value)) as previous_change_rate,
    ptd.previous_value_to_date,
    ly.value as last_year_value,
    b.value - ly.value as last_year_change,
    __divide__(b.value - ly.value, abs(ly.value)) as last_year_change_rate,
    ct.target,
    ct.target_to_date,
    ct.source as target_source,
    __attainment__(c.direction, b.value, ct.target) as attainment,
    b.value - ct.target as target_gap,
    __status__(c.direction, b.value, ct.target_to_date, c.on_track, c.at_risk) as status,
    pj.projected_value,
    __attainment__(c.direction, pj.projected_value, ct.target) as projected_attainment,
    __status__(c.direction, pj.projected_value, ct.target, c.on_track, c.at_risk) as projected_status,
    tr.trailing_mean,
    tr.trailing_stddev,
    coalesce(
        not b.is_partial_period
        and abs(b.value - tr.trailing_mean)
        > c.deviation_k * tr.trailing_stddev + 1e-9 * greatest(abs(tr.trailing_mean), 1),
        false
    ) as is_deviation
from base as b
inner join catalog as c on b.kpi = c.kpi
left join previous_to_date as ptd
    on
        b.kpi = ptd.kpi
        and b.grain = ptd.grain
        and b.period_start = ptd.period_start
        and b.dimension = ptd.dimension
        and b.dimension_value = ptd.dimension_value
left join observations as ly
    on
        b.kpi = ly.kpi
        and b.grain = ly.grain
        and b.dimension = ly.dimension
        and b.dimension_value = ly.dimension_value
        and b.last_year_start = ly.period_start
left join chosen_targets as ct
    on
        b.kpi = ct.kpi
        and b.grain = ct.grain
        and b.period_start = ct.period_start
        and b.dimension = ct.dimension
        and b.dimension_value = ct.dimension_value
        and ct.rank = 1
left join paces as pj
    on
        b.kpi = pj.kpi
        and b.grain = pj.grain
        and b.period_start = pj.period_start
        and b.dimension = pj.dimension
        and b.dimension_value = pj.dimension_value
left join recent_periods as tr
    on
        b.kpi = tr.kpi
        and b.grain = tr.grain
        and b.period_start = tr.period_start
        and b.dimension = tr.dimension
        and b.dimension_value = tr.dimension_value
