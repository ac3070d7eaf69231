"""The business shape the KPIs need: growth, weekly pattern, holiday peak, campaigns,
conversion, AOV, CAC, repeat buyers, returns, support and NPS levels."""

from __future__ import annotations

import duckdb

from .conftest import scalar

NET_SALES = """
    (select o.order_id, o.ordered_at, sum(i.quantity * i.unit_price - i.discount_amount) as net
     from orders o join order_items i using (order_id)
     where o.status <> 'cancelled' group by all)"""


def ratio(db: duckdb.DuckDBPyConnection, sql: str) -> float:
    return float(scalar(db, sql))


def test_scale_one_volumes(db: duckdb.DuckDBPyConnection) -> None:
    counts = {t: scalar(db, f"select count(*) from {t}") for t in (
        "orders", "sessions", "customers", "products", "leads", "tickets", "nps_responses")}
    assert 2_700 <= counts["orders"] <= 3_300
    assert 110_000 <= counts["sessions"] <= 130_000
    assert 700 <= counts["customers"] <= 1_000
    assert counts["products"] == 60
    for table in ("leads", "tickets", "nps_responses"):
        assert 200 <= counts[table] <= 600, table
    items_per_order = ratio(db, "select (select count(*) from order_items) / count(*) from orders")
    assert 1.7 <= items_per_order <= 1.9


def test_weekends_are_busier_on_the_web_and_quieter_in_the_crm(
    db: duckdb.DuckDBPyConnection,
) -> None:
    # Rows per weekend day over rows per weekday, counting the days without rows too.
    per_day = """
        with days as (select d::date as d from range(date '2024-11-01', date '2026-11-16',
                                                      interval 1 day) r(d)),
        n as (select days.d, count({col}) as n from days left join {table}
              on {col}::date = days.d group by 1)
        select avg(n) filter (where isodow(d) >= 6) / avg(n) filter (where isodow(d) < 6)
        from n"""
    assert ratio(db, per_day.format(col="started_at", table="sessions")) > 1.15
    assert ratio(db, per_day.format(col="created_at", table="tickets")) < 0.7


def test_december_peaks_and_summer_dips(db: duckdb.DuckDBPyConnection) -> None:
    monthly = """
        select (select count(*) from sessions where started_at >= '{a}' and started_at < '{b}')
             / (select count(*) from sessions where started_at >= '{c}' and started_at < '{d}')"""
    # December 2025 against the October before it (growth works against it).
    assert ratio(db, monthly.format(a="2025-12-01", b="2026-01-01",
                                    c="2025-10-01", d="2025-11-01")) > 1.3
    # July against May of the same year (idem).
    assert ratio(db, monthly.format(a="2026-07-01", b="2026-08-01",
                                    c="2026-05-01", d="2026-06-01")) < 0.95


def test_black_friday_is_the_busiest_day(db: duckdb.DuckDBPyConnection) -> None:
    for year in (2024, 2025):
        top = scalar(db, f"""
            select started_at::date from sessions where year(started_at) = {year}
            group by 1 order by count(*) desc limit 1""")
        assert str(top) in ("2024-11-29", "2025-11-28")
    orders_top = scalar(db, """
        select ordered_at::date from orders where year(ordered_at) = 2025
        group by 1 order by count(*) desc, 1 limit 1""")
    assert str(orders_top) == "2025-11-28"


def test_second_year_grows_about_sixty_percent_and_repeat_orders_pile_up(
    db: duckdb.DuckDBPyConnection,
) -> None:
    year_over_year = """
        select count(*) filter (where {t} >= '2025-11-01' and {t} < '2026-11-01')
             / count(*) filter (where {t} < '2025-11-01') from {table}"""
    new_customers = ratio(db, year_over_year.format(t="signed_up_at", table="customers"))
    assert 1.4 <= new_customers <= 2.0
    # Customers keep buying for years: orders grow faster than the customers acquired.
    orders = ratio(db, year_over_year.format(t="ordered_at", table="orders"))
    assert new_customers + 0.5 <= orders <= 3.2


def test_campaign_lifts_its_source_sessions(db: duckdb.DuckDBPyConnection) -> None:
    # outdoor_living_2026 (pinterest cpc, 2026-05-04 .. 05-31) against the four weeks before.
    lift = ratio(db, """
        select count(*) filter (where started_at >= '2026-05-04' and started_at < '2026-06-01')
             / count(*) filter (where started_at >= '2026-04-06' and started_at < '2026-05-04')
        from sessions where source = 'pinterest' and medium = 'cpc'""")
    other = ratio(db, """
        select count(*) filter (where started_at >= '2026-05-04' and started_at < '2026-06-01')
             / count(*) filter (where started_at >= '2026-04-06' and started_at < '2026-05-04')
        from sessions where source = 'google' and medium = 'organic'""")
    assert lift > 2.0 and other < 1.3
    spend = ratio(db, """
        select sum(spend) filter (where spend_date >= '2026-05-04' and spend_date < '2026-06-01')
             / sum(spend) filter (where spend_date >= '2026-04-06' and spend_date < '2026-05-04')
        from ad_spend where channel = 'display'""")
    assert spend > 2.0


def test_conversion_aov_and_cac(db: duckdb.DuckDBPyConnection) -> None:
    conversion = ratio(db, "select count(order_id) / count(*) from sessions")
    assert 0.02 <= conversion <= 0.026
    aov = ratio(db, f"select avg(net) from {NET_SALES}")
    assert 95 <= aov <= 110
    cac = ratio(db, """
        select (select sum(spend) from ad_spend) / count(distinct customer_id) from orders
        where status <> 'cancelled'""")
    assert 45 <= cac <= 60


def test_repeat_buyers_and_returns(db: duckdb.DuckDBPyConnection) -> None:
    repeat = ratio(db, """
        select avg((n >= 2)::int) from (select customer_id, count(*) n from orders group by 1)""")
    assert 0.55 <= repeat <= 0.75
    most = scalar(db, "select max(n) from (select count(*) n from orders group by customer_id)")
    assert int(most) >= 6
    returned = ratio(db, "select (select count(*) from returns) / count(*) from order_items")
    assert 0.07 <= returned <= 0.095
    wrong = ratio(db, "select avg((reason = 'wrong_item')::int) from returns")
    assert 0.10 <= wrong <= 0.20


def test_fulfilment_tail_and_recent_orders(db: duckdb.DuckDBPyConnection) -> None:
    hours = db.execute("""
        select min(epoch(shipped_at - ordered_at)) / 3600,
               max(epoch(shipped_at - ordered_at)) / 3600,
               min(epoch(delivered_at - shipped_at)) / 86400,
               max(epoch(delivered_at - shipped_at)) / 86400
        from shipments join orders using (order_id)""").fetchone()
    assert hours is not None
    assert hours[0] >= 12 and hours[1] <= 72 and hours[2] >= 1 and hours[3] <= 7
    assert scalar(db, "select count(*) from orders where status = 'placed'") > 0
    assert scalar(db, "select min(ordered_at) from orders where status in ('placed', 'shipped')") \
        >= scalar(db, "select timestamp '2026-11-01'")


def test_support_nps_and_people(db: duckdb.DuckDBPyConnection) -> None:
    with_order = ratio(db, """
        select count(order_id) / (select count(*) from orders) from tickets""")
    assert 0.07 <= with_order <= 0.11
    answered = ratio(db, "select count(csat_score) / count(*) from tickets")
    assert 0.5 <= answered <= 0.7
    assert scalar(db, "select count(*) from tickets where resolved_at is null") > 0
    nps_mean = ratio(db, "select avg(score) from nps_responses")
    assert 7.5 <= nps_mean <= 8.5
    headcount = """select count(*) from employees
                   where hired_on <= date '{d}' and (left_on is null or left_on > date '{d}')"""
    assert 35 <= scalar(db, headcount.format(d="2024-11-01")) <= 45
    assert 62 <= scalar(db, headcount.format(d="2026-11-15")) <= 78
    turnover = ratio(db, """
        select count(left_on) / 2.04 / avg_headcount from employees,
        (select 55.0 as avg_headcount) group by avg_headcount""")
    assert 0.08 <= turnover <= 0.25
