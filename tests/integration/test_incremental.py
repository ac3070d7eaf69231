"""Incremental models (the customers, orders, order_items and sessions marts, measures,
distinct windows): a daily run with late changes equals a full rebuild.

The project is copied to a temporary folder and compiled with an incremental lookback of
3 days (`config.incremental.lookback_days` added to its metrics/_project.yml); the raw
data are Parquet files read as dbt-duckdb external sources (`KPI_RAW_PARQUET`). "Before"
is the final data set without its last day of orders and sessions and with late changes
inside the lookback window (orders and sessions that arrive late, orders whose status
changes, an order that is deleted) and customers whose attributes change; the incremental
run over the final data must give exactly the rows of a full rebuild, and must not rewrite
stored rows outside the recomputed periods.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.datagen.write import write_parquet
from pipeline.project import DbtError, Project
from tests.conftest import release_duckdb_handles
from tests.support.projects import copy_project

LOOKBACK_DAYS = 3
SCALE = 0.2  # about 600 orders and 24,000 sessions

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("incremental")
    copy_project(folder, LOOKBACK_DAYS)
    write_parquet(folder / "final", SCALE, seed=7)
    yield folder


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"copy ({query}) to '{path}' (format parquet)")


def write_before(final: Path, before: Path) -> date:
    """The data set one day earlier, with late changes inside the lookback window; returns
    the last day of orders in the final data."""
    con = duckdb.connect()
    for table in final.rglob("*.parquet"):
        con.execute(f"create view {table.stem} as select * from '{table}'")
    last: date = con.execute("select max(ordered_at)::date from orders").fetchone()[0]  # type: ignore[index]
    window = last - timedelta(days=2)  # late changes on the two days before the last one
    con.execute(
        f"""create table dropped as select order_id from orders
        where ordered_at::date = '{last}' or (ordered_at::date >= '{window}' and order_id % 3 = 0)"""
    )
    # a customer without orders in the final data
    buyer_no_more = con.execute(
        "select min(customer_id) from customers where customer_id not in (select customer_id from orders)"
    ).fetchone()[0]  # type: ignore[index]
    assert buyer_no_more is not None
    changed = {
        # and orders inside the window that are gone from the final data: one of a
        # customer whose other orders are older, one of a customer with no other order
        "orders": f"""select * replace (case when ordered_at::date >= '{window}'
            and order_id % 5 = 1 then 'cancelled' else status end as status)
            from orders where order_id not in (select order_id from dropped)
            union all
            select * replace ((select max(order_id) + 1 from orders) as order_id,
                timestamp '{window} 12:00:00' as ordered_at)
            from orders where order_id = (select min(order_id) from orders
                where status <> 'cancelled' and customer_id not in (select customer_id
                from orders where ordered_at::date >= '{window}'))
            union all
            select * replace ((select max(order_id) + 2 from orders) as order_id,
                timestamp '{window} 13:00:00' as ordered_at, {buyer_no_more} as customer_id)
            from orders where order_id = (select min(order_id) from orders
                where status <> 'cancelled')""",
        # customers whose attributes change (acquisition_channel: no KPI is sliced by it)
        "customers": """select * replace (case when customer_id % 7 = 0 then
            case when acquisition_channel = 'email' then 'social' else 'email' end
            else acquisition_channel end as acquisition_channel) from customers""",
        "order_items": "select * from order_items where order_id not in (select order_id from dropped)",
        "shipments": "select * from shipments where order_id not in (select order_id from dropped)",
        "returns": """select * from returns where order_item_id not in (select order_item_id
            from order_items where order_id in (select order_id from dropped))""",
        "sessions": f"""select * from sessions where not (started_at::date >= '{last}'
            or (started_at::date >= '{window}' and session_id % 3 = 0))""",
    }
    for table in final.rglob("*.parquet"):
        target = before / table.relative_to(final)
        query = changed.get(table.stem, f"select * from {table.stem}")
        _copy(con, query, target)
    con.close()
    return last


def _run(folder: Path, warehouse: str, data: str, args: list[str]) -> None:
    project = Project(
        folder / "project",
        env={
            "KPI_WAREHOUSE": str(folder / warehouse),
            "KPI_RAW_PARQUET": str(folder / data),
            "KPI_TARGET": "duckdb",
            "DBT_TARGET_PATH": str(folder / f"target_{warehouse}"),
            "DBT_LOG_PATH": str(folder / "logs"),
        },
    )
    try:
        project.dbt(args)
    finally:
        release_duckdb_handles()


def _query(folder: Path, warehouse: str, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(folder / warehouse)) as con:
        return con.execute(sql).df()


def _execute(folder: Path, warehouse: str, sql: str) -> None:
    with duckdb.connect(str(folder / warehouse)) as con:
        con.execute(sql)


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


def test_incremental_run_equals_full_rebuild(workspace: Path) -> None:
    last = write_before(workspace / "final", workspace / "before")
    stored_day = date(2025, 3, 3)  # long before the window: its rows must stay as stored
    recent_day = last - timedelta(days=2)  # inside the window: recomputed

    _run(workspace, "incremental.duckdb", "before", ["run"])
    measure = "analytics.kpi_measures__orders"
    where = "grain = 'day' and dimension = 'total' and period_start = "
    original = _query(
        workspace,
        "incremental.duckdb",
        f"select orders_placed from {measure} where {where}'{stored_day}'",
    ).iloc[0, 0]
    windows = "analytics.kpi_windows__active_customers"
    at = "window_name = 'month_to_date' and dimension = 'total' and period_start = "
    original_window = _query(
        workspace, "incremental.duckdb", f"select value from {windows} where {at}'{stored_day}'"
    ).iloc[0, 0]
    # marks: a rewritten row loses its mark (pageviews -1 - n, undone by the same)
    marked = "update analytics.sessions set pageviews = -1 - pageviews where session_date = "
    for day in (stored_day, recent_day):
        _execute(workspace, "incremental.duckdb", f"{marked}'{day}'")
        _execute(
            workspace,
            "incremental.duckdb",
            f"update {measure} set orders_placed = -1 where {where}'{day}'",
        )
        _execute(
            workspace, "incremental.duckdb", f"update {windows} set value = -1 where {at}'{day}'"
        )

    # the fact marts first: their marks are undone before the KPI models read them
    _run(workspace, "incremental.duckdb", "final", ["run", "--exclude", "path:models/kpi"])
    mart_marks = _query(
        workspace,
        "incremental.duckdb",
        f"""select session_date, count(*) filter (where pageviews < 0) as marked, count(*) as rows
        from analytics.sessions where session_date in ('{stored_day}', '{recent_day}')
        group by 1 order by 1""",
    )
    assert mart_marks["marked"].tolist() == [mart_marks["rows"][0], 0], (
        "fact mart: a stored day outside the window was rewritten, or one inside was not"
    )
    _execute(workspace, "incremental.duckdb", f"{marked}'{stored_day}'")

    _run(workspace, "incremental.duckdb", "final", ["run", "--select", "path:models/kpi"])
    marks = _query(
        workspace,
        "incremental.duckdb",
        f"select period_start, orders_placed from {measure} where {where}'{stored_day}' or {where}'{recent_day}' order by 1",
    )
    assert marks["orders_placed"].tolist()[0] == -1, "a stored row outside the window was rewritten"
    assert marks["orders_placed"].tolist()[1] >= 0, "a row inside the window was not recomputed"
    grains = _query(
        workspace,
        "incremental.duckdb",
        f"""select grain, min(period_start) as first from {measure}
        where period_start > '{stored_day}' and orders_placed is not null group by grain""",
    )
    assert set(grains["grain"]) >= {"day", "week", "month", "quarter", "year"}
    window_marks = _query(
        workspace,
        "incremental.duckdb",
        f"select value from {windows} where {at}'{stored_day}' or {at}'{recent_day}' order by period_start",
    )["value"].tolist()
    assert window_marks[0] == -1, "a stored window row outside the window was rewritten"
    assert window_marks[1] >= 0, "a window row inside the window was not recomputed"

    # undo the mark, then run what reads the measures
    _execute(
        workspace,
        "incremental.duckdb",
        f"update {measure} set orders_placed = {int(original)} where {where}'{stored_day}'",
    )
    _execute(
        workspace,
        "incremental.duckdb",
        f"update {windows} set value = {original_window} where {at}'{stored_day}'",
    )
    _run(
        workspace,
        "incremental.duckdb",
        "final",
        ["run", "--select", "path:models/kpi", "--exclude", "path:models/kpi/measures"],
    )
    _run(workspace, "full.duckdb", "final", ["run"])

    keys = ["kpi", "grain", "period_start", "dimension", "dimension_value"]
    columns = "kpi, grain, period_start, period_end, dimension, dimension_value, value, numerator, denominator"
    incremental = _sorted(
        _query(workspace, "incremental.duckdb", f"select {columns} from analytics.kpi_values"), keys
    )
    full = _sorted(
        _query(workspace, "full.duckdb", f"select {columns} from analytics.kpi_values"), keys
    )
    assert len(full) > 0
    assert (full["period_end"].max()) >= pd.Timestamp(last)
    pd.testing.assert_frame_equal(incremental, full, check_exact=False, rtol=1e-9, atol=1e-9)

    incremental_models = {  # and their keys
        "customers": "customer_id",
        "orders": "order_id",
        "order_items": "order_item_id",
        "sessions": "session_id",
        "kpi_measures__orders": "grain, period_start, dimension, dimension_value",
        "kpi_measures__sessions": "grain, period_start, dimension, dimension_value",
        "kpi_measures__tickets": "grain, period_start, dimension, dimension_value",
        "kpi_windows__active_customers": "window_name, grain, period_start, dimension, dimension_value",
        "kpi_windows": "kpi, window_name, grain, period_start, dimension, dimension_value",
        "kpi_entities__clv_365d": "entity",
    }
    for table, order in incremental_models.items():
        a = _query(
            workspace, "incremental.duckdb", f"select * from analytics.{table} order by {order}"
        )
        b = _query(workspace, "full.duckdb", f"select * from analytics.{table} order by {order}")
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)

    # every dbt test passes on the incrementally built warehouse, the unit tests of the
    # incremental marts included
    _run(workspace, "incremental.duckdb", "final", ["test"])


def test_a_fact_mart_whose_columns_changed_is_not_appended_to(workspace: Path) -> None:
    # on the warehouse the test above left (the same module runs it first)
    if not (workspace / "incremental.duckdb").exists():
        _run(workspace, "incremental.duckdb", "final", ["run", "--select", "+sessions"])
    _execute(workspace, "incremental.duckdb", "alter table analytics.sessions drop column device")
    with pytest.raises(DbtError, match=r"columns of .*sessions.* changed .*--full-refresh"):
        _run(workspace, "incremental.duckdb", "final", ["run", "--select", "sessions"])
    _run(
        workspace, "incremental.duckdb", "final", ["run", "--select", "sessions", "--full-refresh"]
    )
    rebuilt = _query(
        workspace, "incremental.duckdb", "select count(device) > 0 from analytics.sessions"
    )
    assert rebuilt.iloc[0, 0]
