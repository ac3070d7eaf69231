"""The entity- and time-aware kinds (cumulative, lifetime value, conversion, retention,
churn, snapshot) on real DuckDB against an independent Python oracle, on hand-made data
around month ends, a leap day, a year boundary and ISO week 53 (2020-12-28..2021-01-03).

Each model is generated in both dialects: the postgres SQL must run on DuckDB unchanged.
"""

from __future__ import annotations

import datetime as dt
import random
from functools import cache

import duckdb
import pandas as pd
import pytest

from pipeline.compiler import Compiled, compile_files
from tests.support import kinds_oracle as oracle
from tests.support.generated import _CONFIG, _REF, catalog_of

GRAINS = ("day", "week", "month", "quarter", "year")
DIALECTS = ("duckdb", "postgres")
D = dt.date

# edge days: Jan 31, Feb 28 and the leap day, a year end inside ISO week 53, month ends
EDGES = [
    D(2019, 12, 30), D(2019, 12, 31), D(2020, 1, 31), D(2020, 2, 28), D(2020, 2, 29),
    D(2020, 3, 1), D(2020, 5, 15), D(2020, 12, 28), D(2020, 12, 31), D(2021, 1, 1),
    D(2021, 1, 3), D(2021, 1, 4), D(2021, 2, 28), D(2021, 3, 1),
]  # fmt: skip
# no row at all in April 2020 nor from 2020-06-01 to 2020-11-30: empty periods
GAP = (D(2020, 4, 1), D(2020, 4, 30))
QUIET = (D(2020, 6, 1), D(2020, 11, 30))


def _busy_days(rng: random.Random, count: int) -> list[dt.date]:
    days = []
    while len(days) < count:
        day = D(2019, 12, 30) + dt.timedelta(days=rng.randrange(428))
        if not (GAP[0] <= day <= GAP[1] or QUIET[0] <= day <= QUIET[1]):
            days.append(day)
    return days


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)))


@cache
def shop(noise: bool = True) -> dict[str, pd.DataFrame]:
    """The hand-placed rows below (with known answers), plus random ones when `noise`."""
    rng = random.Random(53)
    # orders: customer 1 buys in January and March 2020 but not February (non-consecutive)
    orders = [
        (1, 1, dt.datetime(2020, 1, 31, 23, 59), 10.0, "web", False),
        (2, 1, dt.datetime(2020, 3, 1, 0, 0), 5.0, "web", False),
        (3, 2, dt.datetime(2020, 2, 29, 12, 0), 7.5, "app", False),
        (4, None, dt.datetime(2020, 2, 29, 13, 0), 99.0, None, False),  # no customer
        (5, 3, None, 50.0, "web", False),  # no time: outside the data
        (6, 3, dt.datetime(2020, 12, 31, 8, 0), None, "app", False),  # no amount
        (7, 4, dt.datetime(2021, 3, 1, 9, 0), 20.0, "web", True),  # cancelled on the last day
        (8, 2, dt.datetime(2020, 3, 1, 10, 0), 3.0, "app", False),
    ]
    for day in [*EDGES, *_busy_days(rng, 120)] if noise else []:
        orders.append(
            (
                len(orders) + 1,
                rng.randint(2, 12),
                _at(day, rng),
                round(rng.uniform(1, 200), 2),
                rng.choice(["web", "app", None]),
                rng.random() < 0.15,
            )
        )
    # employees: a rehire (employee 5, two intervals), open intervals, a NULL department
    employees = [
        (1, D(2019, 6, 1), None, "sales"),
        (2, D(2019, 12, 31), D(2020, 2, 29), "sales"),
        (3, D(2020, 1, 31), D(2020, 12, 31), None),
        (4, D(2020, 2, 29), None, "ops"),
        (5, D(2020, 1, 10), D(2020, 2, 28), "ops"),
        (5, D(2020, 6, 1), None, "ops"),
        (6, D(2020, 12, 28), D(2021, 1, 3), "sales"),
        (7, D(2021, 1, 4), D(2021, 1, 4), "ops"),  # one day
        (8, D(2021, 3, 1), None, "sales"),
        (9, D(2020, 5, 5), D(2020, 5, 1), "ops"),  # ends before it starts: ignored
    ]
    for i in range(10, 40 if noise else 10):
        start = D(2019, 11, 1) + dt.timedelta(days=rng.randrange(480))
        end = start + dt.timedelta(days=rng.randrange(0, 200)) if rng.random() < 0.6 else None
        employees.append((i, start, end, rng.choice(["sales", "ops", None])))
    # tickets: timestamps, open ones (NULL resolved_at)
    tickets = []
    for i, day in enumerate([*EDGES, *_busy_days(rng, 60)], 1):
        created = _at(day, rng)
        resolved = (
            created + dt.timedelta(hours=rng.randrange(0, 24 * 40)) if rng.random() < 0.75 else None
        )
        tickets.append((i, created, resolved, rng.choice(["email", "chat"])))
    # stock snapshots: not every day (a week and April 2020 without any), several products
    inventory = []
    day = D(2019, 12, 25)
    while day <= D(2021, 3, 2):
        skipped = GAP[0] <= day <= GAP[1] or D(2020, 12, 28) <= day <= D(2021, 1, 3)
        if not skipped and (day in EDGES or rng.random() < 0.4):
            for product in range(1, 4):
                if rng.random() < 0.8:
                    inventory.append(
                        (day, product, ["lamps", "rugs", None][product - 1], rng.randrange(0, 50))
                    )
        day += dt.timedelta(days=1)
    # leads → deals: same day, exactly within, one day late, before the lead, lost deals
    leads = [
        (1, dt.datetime(2020, 1, 31, 18, 0), "web"),
        (2, dt.datetime(2020, 2, 28, 9, 0), "fair"),
        (3, dt.datetime(2020, 2, 29, 9, 0), "web"),
        (4, dt.datetime(2020, 12, 31, 9, 0), None),
        (5, dt.datetime(2021, 1, 3, 9, 0), "fair"),
        (None, dt.datetime(2021, 1, 4, 9, 0), "web"),  # no entity: never converts
    ]
    deals = [
        (1, D(2020, 1, 31), True),  # same day, earlier in the day than the lead: converts
        (2, D(2020, 3, 9), True),  # 10 days later: converts
        (3, D(2020, 3, 11), True),  # 11 days later: too late
        (3, D(2020, 2, 28), True),  # before the lead: does not count
        (4, D(2021, 1, 2), False),  # lost
        (5, D(2021, 1, 13), True),
    ]
    for lead_id in range(10, 80 if noise else 10):
        created = _at(rng.choice(_busy_days(rng, 1) + EDGES), rng)
        leads.append((lead_id, created, rng.choice(["web", "fair", None])))
        if rng.random() < 0.6:
            closed = created.date() + dt.timedelta(days=rng.randrange(-3, 16))
            deals.append((lead_id, closed, rng.random() < 0.7))
    return {
        "orders": pd.DataFrame(
            orders,
            columns=["order_id", "customer_id", "ordered_at", "amount", "channel", "is_cancelled"],
        ).astype({"customer_id": "Int64"}),
        "employees": _dates(
            pd.DataFrame(employees, columns=["employee_id", "hired_on", "left_on", "department"]),
            "hired_on",
            "left_on",
        ),
        "tickets": pd.DataFrame(
            tickets, columns=["ticket_id", "created_at", "resolved_at", "channel"]
        ),
        "inventory": _dates(
            pd.DataFrame(
                inventory, columns=["snapshot_date", "product_id", "category", "quantity"]
            ),
            "snapshot_date",
        ),
        "leads": pd.DataFrame(leads, columns=["lead_id", "created_at", "source"]).astype(
            {"lead_id": "Int64"}
        ),
        "deals": _dates(
            pd.DataFrame(deals, columns=["lead_id", "closed_on", "is_won"]), "closed_on"
        ),
    }


def _dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[s]")
    return frame


METRICS = """
kpis:
  - {name: revenue, category: financial, model: orders, time: ordered_at, sum: amount, filter: not is_cancelled, dimensions: [channel]}
  - {name: revenue_to_date, category: financial, cumulative: revenue, dimensions: [channel]}
  - name: clv
    category: customer
    lifetime_value: {model: orders, time: ordered_at, entity: customer_id, sum: amount, filter: not is_cancelled}
  - name: clv_30d
    category: customer
    lifetime_value: {model: orders, time: ordered_at, entity: customer_id, sum: amount * 2, filter: not is_cancelled, horizon_days: 30}
  - name: clv_7d
    category: customer
    lifetime_value: {model: orders, time: ordered_at, entity: customer_id, sum: amount, filter: not is_cancelled, horizon_days: 7}
  - name: lead_to_won
    category: sales_marketing
    conversion:
      base: {model: leads, time: created_at, entity: lead_id}
      event: {model: deals, time: closed_on, entity: lead_id, filter: is_won}
      within_days: 10
    dimensions: [source]
  - {name: customer_retention, category: customer, retention: {model: orders, time: ordered_at, entity: customer_id, filter: not is_cancelled}, dimensions: [channel]}
  - {name: customer_churn, category: customer, churn: {model: orders, time: ordered_at, entity: customer_id, filter: not is_cancelled}, dimensions: [channel]}
  - {name: turnover, category: people, churn: {model: employees, start: hired_on, end: left_on, entity: employee_id}, dimensions: [department]}
  - {name: staying, category: people, retention: {model: employees, start: hired_on, end: left_on, entity: employee_id, filter: department <> 'ops'}}
  - {name: headcount, category: people, snapshot: {model: employees, start: hired_on, end: left_on, count: employee_id}, dimensions: [department]}
  - {name: avg_headcount, category: people, snapshot: {model: employees, start: hired_on, end: left_on, count: "*", take: average}}
  - {name: open_tickets, category: customer, snapshot: {model: tickets, start: created_at, end: resolved_at, count: ticket_id}, dimensions: [channel]}
  - {name: stock, category: operational, snapshot: {model: inventory, time: snapshot_date, sum: quantity, filter: product_id <> 2}, dimensions: [category]}
  - {name: avg_stock, category: operational, snapshot: {model: inventory, time: snapshot_date, sum: quantity, take: average}, dimensions: [category]}
  - {name: revenue_per_head, category: financial, derived: revenue / headcount, grains: [month, quarter, year]}
"""


@cache
def built(
    dialect: str, week_start: str = "monday", noise: bool = True
) -> duckdb.DuckDBPyConnection:
    tables = shop(noise)
    config = f"config: {{week_start: {week_start}}}\n"
    compiled = compile_files({"metrics/kinds.yml": config + METRICS}, catalog_of(tables), dialect)
    assert compiled.ok, "\n".join(str(i) for i in compiled.issues)
    return _run_values(compiled, tables)


def _run_values(compiled: Compiled, tables: dict[str, pd.DataFrame]) -> duckdb.DuckDBPyConnection:
    """The values models and what they read (not the marts built on them)."""
    con = duckdb.connect()
    for name, frame in tables.items():
        con.register(f"{name}__frame", frame)
        con.execute(f"create table {name} as select * from {name}__frame")
    models = {
        path.rsplit("/", 1)[-1][:-4]: text
        for path, text in compiled.files.items()
        if path.startswith("models/") and path.endswith(".sql")
    }

    def create(name: str) -> None:
        if name in tables:
            return
        body = _CONFIG.sub("", models[name])
        for dependency in _REF.findall(body):
            create(dependency)
        con.execute(f"create table if not exists {name} as {_REF.sub(lambda m: m.group(1), body)}")

    for name in sorted(models):
        if name.startswith("kpi_values__"):
            create(name)
    return con


def _values(
    con: duckdb.DuckDBPyConnection,
    kpi: str,
    grain: str,
    dimension: str = "total",
    column: str = "value",
) -> dict[tuple, float | None]:
    model = "kpi_values__composite" if kpi == "revenue_per_head" else f"kpi_values__{kpi}"
    rows = con.execute(
        f"select period_start, dimension_value, {column} from {model}"
        " where kpi = ? and grain = ? and dimension = ?",
        [kpi, grain, dimension],
    ).fetchall()
    assert len(rows) == len({(s, v) for s, v, _ in rows}), "duplicate keys"
    return {(start, value): v for start, value, v in rows}


def _close(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected), sorted(set(actual) ^ set(expected))[:5]
    for key, value in expected.items():
        if value is None:
            assert actual[key] is None, key
        else:
            assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def _rows(table: str) -> list[dict]:
    frame = shop()[table].astype(object)
    records = frame.where(frame.notna(), None).to_dict("records")
    for row in records:
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                row[key] = value.to_pydatetime()
    return records


def _day_columns(rows: list[dict], *columns: str) -> list[dict]:
    for row in rows:
        for column in columns:
            row[column] = row[column].date() if row[column] is not None else None
    return rows


def orders(**kwargs) -> oracle.Rows:
    return oracle.Rows(
        _rows("orders"),
        time="ordered_at",
        entity="customer_id",
        where=lambda r: not r["is_cancelled"],
        dimensions={"channel": lambda r: r["channel"]},
        **kwargs,
    )


def employees(**kwargs) -> oracle.Rows:
    return oracle.Rows(
        _day_columns(_rows("employees"), "hired_on", "left_on"),
        start="hired_on",
        end="left_on",
        entity="employee_id",
        dimensions={"department": lambda r: r["department"]},
        **kwargs,
    )


def tickets() -> oracle.Rows:
    return oracle.Rows(
        _rows("tickets"),
        start="created_at",
        end="resolved_at",
        amount=oracle.counted("ticket_id"),
        dimensions={"channel": lambda r: r["channel"]},
    )


def inventory(**kwargs) -> oracle.Rows:
    return oracle.Rows(
        _day_columns(_rows("inventory"), "snapshot_date"),
        time="snapshot_date",
        amount=lambda r: r["quantity"],
        dimensions={"category": lambda r: r["category"]},
        **kwargs,
    )


def leads(**kwargs) -> oracle.Rows:
    return oracle.Rows(
        _rows("leads"),
        time="created_at",
        entity="lead_id",
        dimensions={"source": lambda r: r["source"]},
        **kwargs,
    )


def deals() -> oracle.Rows:
    return oracle.Rows(
        _day_columns(_rows("deals"), "closed_on"),
        time="closed_on",
        entity="lead_id",
        where=lambda r: r["is_won"],
    )


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("grain", GRAINS)
def test_cumulative_is_the_running_total_of_its_input(dialect, grain):
    con = built(dialect)
    source = orders(amount=lambda r: r["amount"])
    for dimension in ("total", "channel"):
        _close(
            _values(con, "revenue_to_date", grain, dimension),
            oracle.cumulative(source, grain, dimension),
        )


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("grain", GRAINS)
def test_lifetime_value_to_date_and_by_cohort(dialect, grain):
    con = built(dialect)
    _close(_values(con, "clv", grain), oracle.lifetime(orders(amount=lambda r: r["amount"]), grain))
    doubled = orders(amount=lambda r: None if r["amount"] is None else r["amount"] * 2)
    _close(_values(con, "clv_30d", grain), oracle.lifetime(doubled, grain, horizon_days=30))
    # another horizon and sum over the same entities (one entities model for the three)
    plain = orders(amount=lambda r: r["amount"])
    _close(_values(con, "clv_7d", grain), oracle.lifetime(plain, grain, horizon_days=7))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("grain", GRAINS)
def test_conversion_within_days_of_the_base_row(dialect, grain):
    con = built(dialect)
    for dimension in ("total", "source"):
        _close(
            _values(con, "lead_to_won", grain, dimension),
            oracle.conversion(leads(), deals(), 10, grain, dimension),
        )


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("grain", GRAINS)
def test_retention_and_churn_from_rows_and_from_intervals(dialect, grain):
    con = built(dialect)
    for dimension in ("total", "channel"):
        _close(
            _values(con, "customer_retention", grain, dimension),
            oracle.retention(orders(), grain, dimension),
        )
        _close(
            _values(con, "customer_churn", grain, dimension),
            oracle.retention(orders(), grain, dimension, churn=True),
        )
    for dimension in ("total", "department"):
        _close(
            _values(con, "turnover", grain, dimension),
            oracle.retention(employees(), grain, dimension, churn=True),
        )
    no_ops = employees(where=lambda r: r["department"] != "ops" if r["department"] else None)
    _close(_values(con, "staying", grain), oracle.retention(no_ops, grain))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("grain", GRAINS)
def test_snapshots_take_a_level_never_a_sum_over_days(dialect, grain):
    con = built(dialect)
    heads = employees(amount=oracle.counted("employee_id"))
    for dimension in ("total", "department"):
        _close(
            _values(con, "headcount", grain, dimension), oracle.snapshot(heads, grain, dimension)
        )
    _close(_values(con, "avg_headcount", grain), oracle.snapshot(heads, grain, take="average"))
    for dimension in ("total", "channel"):
        _close(
            _values(con, "open_tickets", grain, dimension),
            oracle.snapshot(tickets(), grain, dimension),
        )
    kept = inventory(where=lambda r: r["product_id"] != 2)
    for dimension in ("total", "category"):
        _close(_values(con, "stock", grain, dimension), oracle.snapshot(kept, grain, dimension))
        _close(
            _values(con, "avg_stock", grain, dimension),
            oracle.snapshot(inventory(), grain, dimension, take="average"),
        )


@pytest.mark.parametrize("grain", GRAINS)
def test_weeks_follow_the_projects_week_start(grain):
    con = built("postgres", "sunday")
    heads = employees(amount=oracle.counted("employee_id"), week_start="sunday")
    _close(_values(con, "headcount", grain), oracle.snapshot(heads, grain))
    turnover = oracle.retention(employees(week_start="sunday"), grain, churn=True)
    _close(_values(con, "turnover", grain), turnover)
    conversion = oracle.conversion(leads(week_start="sunday"), deals(), 10, grain)
    _close(_values(con, "lead_to_won", grain), conversion)


# --- known answers on the hand-placed rows alone, worked out by hand (they keep the oracle
# honest too)


def _total(con: duckdb.DuckDBPyConnection, kpi: str, grain: str) -> dict[dt.date, float | None]:
    return {start: v for (start, _), v in _values(con, kpi, grain).items()}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_known_headcount_and_turnover(dialect):
    con = built(dialect, noise=False)
    months = _total(con, "headcount", "month")
    # Jan 31: 1, 2, 3 (hired that day), 5; Feb 29: 2 leaves and 4 joins that day, 5 left
    # the 28th; Dec 31: 3 leaves that day, 6 joined the 28th; Mar 1 2021 (the data's last day)
    assert months[D(2020, 1, 1)] == 4
    assert months[D(2020, 2, 1)] == 4
    assert months[D(2020, 3, 1)] == 3
    assert months[D(2020, 12, 1)] == 5
    assert months[D(2021, 1, 1)] == 3
    assert months[D(2021, 3, 1)] == 4
    # ISO week 53 of 2020 ends on Sunday 2021-01-03, employee 6's last day
    assert _total(con, "headcount", "week")[D(2020, 12, 28)] == 4
    churn = _total(con, "turnover", "month")
    assert churn[D(2019, 6, 1)] is None  # first period
    assert churn[D(2020, 3, 1)] == pytest.approx(2 / 5)  # 2 and 5 of 1, 2, 3, 4, 5
    assert churn[D(2020, 6, 1)] == 0.0  # 5 is back: nobody lost
    assert churn[D(2021, 1, 1)] == pytest.approx(1 / 5)  # 3 of 1, 3, 4, 5, 6


@pytest.mark.parametrize("dialect", DIALECTS)
def test_known_conversion_rates(dialect):
    con = built(dialect, noise=False)
    months = _total(con, "lead_to_won", "month")
    # lead 1 converts the same day, lead 2 ten days later (over the leap day), lead 3 only
    # eleven days later (and a deal before it does not count), lead 4's deal is lost
    assert months[D(2020, 1, 1)] == 1.0
    assert months[D(2020, 2, 1)] == 0.5
    assert months[D(2020, 3, 1)] is None  # no leads
    assert months[D(2020, 12, 1)] == 0.0
    assert months[D(2021, 1, 1)] == 0.5  # lead 5 converts, the lead without id cannot
    assert _total(con, "lead_to_won", "week")[D(2020, 12, 28)] == 0.5  # leads 4 and 5
    assert _total(con, "lead_to_won", "year") == {D(2020, 1, 1): 0.5, D(2021, 1, 1): 0.5}
    counts = _values(con, "lead_to_won", "year", column="denominator")
    assert counts[(D(2021, 1, 1), "total")] == 2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_known_retention_and_lifetime_values(dialect):
    con = built(dialect, noise=False)
    retention = _total(con, "customer_retention", "month")
    assert retention[D(2020, 1, 1)] is None  # first period
    assert retention[D(2020, 2, 1)] == 0.0  # customer 1 skips February
    assert retention[D(2020, 3, 1)] == 1.0  # customer 2 buys again in March
    assert retention[D(2020, 5, 1)] is None  # nobody active in April
    clv = _total(con, "clv", "month")
    assert clv[D(2020, 1, 1)] == 10.0
    assert clv[D(2020, 2, 1)] == pytest.approx(17.5 / 2)  # the order without customer is out
    assert clv[D(2020, 12, 1)] == pytest.approx(25.5 / 3)  # customer 3's order has no amount
    assert clv[D(2021, 3, 1)] == pytest.approx(25.5 / 3)  # the cancelled order is out
    cohorts = _total(con, "clv_30d", "month")
    assert cohorts[D(2020, 1, 1)] == 20.0  # the March 1st order is day 30: outside
    assert cohorts[D(2020, 2, 1)] == 21.0
    assert cohorts[D(2020, 12, 1)] == 0.0
    assert cohorts[D(2021, 1, 1)] is None  # no newcomer
    assert cohorts[D(2021, 2, 1)] is None  # horizon not over by 2021-03-01
    assert _total(con, "clv_30d", "year") == {
        D(2020, 1, 1): pytest.approx(41 / 3),
        D(2021, 1, 1): None,
    }


def test_a_level_is_not_summed_over_the_days_of_a_period():
    con = built("duckdb")
    year = _values(con, "open_tickets", "year")
    day = _values(con, "open_tickets", "day")
    assert year[(D(2020, 1, 1), "total")] == day[(D(2020, 12, 31), "total")]


def test_values_models_keep_the_long_table_contract():
    con = built("postgres")
    for kpi in ("revenue_to_date", "clv", "lead_to_won", "turnover", "headcount", "stock"):
        described = con.execute(f"describe kpi_values__{kpi}").fetchall()
        assert [(c[0], c[1]) for c in described] == [
            ("kpi", "VARCHAR"),
            ("grain", "VARCHAR"),
            ("period_start", "DATE"),
            ("period_end", "DATE"),
            ("dimension", "VARCHAR"),
            ("dimension_value", "VARCHAR"),
            ("value", "DOUBLE"),
            ("numerator", "DOUBLE"),
            ("denominator", "DOUBLE"),
        ]
        ends = con.execute(
            f"select count(*) from kpi_values__{kpi} where period_end < period_start"
        ).fetchone()
        assert ends == (0,)


def test_a_derived_kpi_reads_a_snapshot_at_the_same_period():
    con = built("postgres")
    per_head = _values(con, "revenue_per_head", "quarter")
    heads = _values(con, "headcount", "quarter")
    money = con.execute(
        "select period_start, value from kpi_values__orders"
        " where kpi = 'revenue' and grain = 'quarter' and dimension = 'total'"
    ).fetchall()
    assert money
    for start, amount in money:
        assert per_head[(start, "total")] == pytest.approx(amount / heads[(start, "total")])
