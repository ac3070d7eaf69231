"""The gate on small frames: real Great Expectations, real DuckDB (in memory), no dbt."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd
import pytest
from rich.console import Console

from pipeline import build
from pipeline.progress import Detail, Event, Stage
from pipeline.quality.gate import Validator, validate_table
from pipeline.quality.read import read_chunks, type_offenders
from pipeline.quality.report import render_gate
from pipeline.quality.run import run_gate as run_in_warehouse
from pipeline.quality.sources import SourceTable
from pipeline.quality.spec import parse_spec
from pipeline.quality.suite import ROW
from pipeline.warehouse.names import Relation

AS_OF = datetime(2026, 11, 15, 23, 59, 59)

SPEC = """\
version: 1
source: shop
tables:
  customers:
    key: customer_id
    columns: {customer_id: integer, signed_up_at: timestamp}
    checks:
      - unique: customer_id
        policy: block
      - freshness: {column: signed_up_at, max_age: 30d}
      - not_empty: true
  orders:
    key: order_id
    columns:
      order_id: integer
      customer_id: integer
      ordered_at: timestamp
      shipped_at: timestamp
      status: string
      amount: number
    checks:
      - unique: order_id
        max_quarantine_percent: 50
      - not_null: [order_id]
      - references: {column: customer_id, table: customers}
        max_quarantine_percent: 30
      - accepted_values: {column: status, values: [placed, shipped]}
        max_quarantine_percent: 30
      - between: {column: amount, min: 0}
        policy: warn
      - not_in_future: [ordered_at]
        max_quarantine_percent: 30
      - in_order: [customers.signed_up_at, ordered_at, shipped_at]
        max_quarantine_percent: 30
      - volume: {max_drop: 0.5}
"""


RELATIONS = {name: Relation("raw", name) for name in ("customers", "orders")}
TABLES = [SourceTable("shop", n, r, True, "_shop__sources.yml:1") for n, r in RELATIONS.items()]


def run_gate(con, specs, **kwargs):
    return run_in_warehouse(con, specs, TABLES, **kwargs)


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


@pytest.fixture()
def specs():
    return {t.name: t for t in parse_spec(SPEC, "x.yml")}


def _orders(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["order_id", "customer_id", "ordered_at", "shipped_at", "status", "amount"]
    )
    for column in ("ordered_at", "shipped_at"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


CLEAN = [
    (1, 10, "2026-11-01", "2026-11-02", "placed", 5.0),
    (2, 10, "2026-11-03", "2026-11-04", "shipped", 7.5),
    (3, 11, "2026-11-05", None, "placed", 0.0),
    (4, 11, "2026-11-06", "2026-11-07", "placed", 1.0),
]


def _warehouse(orders: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # as publish.connect
    con.execute("CREATE SCHEMA raw")
    customers = pd.DataFrame(  # noqa: F841 - read by DuckDB below
        {"customer_id": [10, 11], "signed_up_at": pd.to_datetime(["2026-10-01", "2026-11-05"])}
    )
    con.execute("CREATE TABLE raw.customers AS SELECT * FROM customers")
    con.register("orders_frame", orders)
    con.execute("CREATE TABLE raw.orders AS SELECT * FROM orders_frame")
    return con


def _gate(orders: pd.DataFrame, specs, baselines=None, chunk_rows=2):
    con = _warehouse(orders)
    ordered = [specs["customers"], specs["orders"]]
    return run_gate(con, ordered, run_id="t", as_of=AS_OF, baselines=baselines or {},
                    chunk_rows=chunk_rows), con


def test_clean_data_passes(specs):
    gate, _ = _gate(_orders(CLEAN), specs, baselines={"orders": 4})
    assert gate.status == "passed", gate.to_dict()
    orders = gate.table("orders")
    assert orders.chunks == 2 and orders.passed_rows == 4


def test_each_policy(specs):
    rows = [
        *CLEAN,
        (5, 99, "2026-11-07", "2026-11-08", "placed", 1.0),     # orphan customer
        (6, 10, "2026-11-07", "2026-11-08", "on_hold", 1.0),    # unknown status
        (7, 10, "2027-11-07", None, "placed", -3.0),            # future, negative (warn)
        (8, 10, "2026-11-07", "2026-11-01", "placed", 1.0),     # shipped before ordered
        (9, 11, "2026-11-04", None, "placed", 1.0),             # ordered before signup
    ]
    gate, _ = _gate(_orders(rows), specs)
    orders = gate.table("orders")
    action = {e.id: e.action for e in orders.expectations}
    assert action["orders.references.customer_id"] == "quarantined"
    assert action["orders.accepted_values.status"] == "quarantined"
    assert action["orders.not_in_future.ordered_at"] == "quarantined"
    assert action["orders.between.amount"] == "warned"
    assert action["orders.in_order.ordered_at.shipped_at"] == "quarantined"
    assert action["orders.in_order.customers.signed_up_at.ordered_at"] == "quarantined"
    assert action["orders.volume"] == "skipped"  # no baseline
    # rowids are the raw positions: rows 5..9 are rowids 4..8; the warned row 7 is also
    # in the future, so it is quarantined for that reason only
    assert sorted(orders.quarantine) == [4, 5, 6, 7, 8]
    reasons = dict(orders.quarantine[5])
    assert "got status='on_hold'" in reasons["orders.accepted_values.status"]
    assert orders.raw_rows == orders.passed_rows + orders.quarantined_rows
    warned = gate.outcome("orders.between.amount")
    assert warned.unexpected_count == 1
    assert warned.samples and warned.samples[0]["order_id"] == 7
    assert not gate.blocked and gate.status == "quarantined"


def test_duplicates_in_different_positions_meet_in_one_chunk(specs):
    rows = [*CLEAN, (1, 10, "2026-11-01", "2026-11-02", "placed", 5.0)]
    con = _warehouse(_orders(rows))
    con.execute("CREATE TEMP TABLE __gate_quarantine (table_name VARCHAR, row BIGINT)")
    chunks = list(read_chunks(con, specs["orders"], RELATIONS, 5, 1, ["customer_id"]))
    # the 3 rows with a unique key come one by one; both rows of order 1 come together
    assert sorted(len(c) for c in chunks) == [1, 1, 1, 2]
    assert sorted(r for c in chunks for r in c.index) == [0, 1, 2, 3, 4]
    assert any((c["order_id"] == 1).sum() == 2 for c in chunks)
    gate, _ = _gate(_orders(rows), specs, chunk_rows=1)
    unique = gate.outcome("orders.unique.order_id")
    assert unique.action == "quarantined" and unique.unexpected_count == 2


def test_a_block_stops_and_sets_nothing_aside(specs):
    customers_dup = _orders(CLEAN)
    gate, con = _gate(customers_dup, specs)
    con.execute("INSERT INTO raw.customers VALUES (10, TIMESTAMP '2026-11-15')")
    gate = run_gate(con, [specs["customers"], specs["orders"]], run_id="t", as_of=AS_OF,
                    baselines={})
    assert gate.blocked
    outcome = gate.outcome("customers.unique.customer_id")
    assert (outcome.action, outcome.policy, outcome.unexpected_count) == ("blocked", "block", 2)
    assert gate.table("customers").quarantine == {}


def test_quarantine_over_its_limit_blocks(specs):
    rows = [(i, 10, "2026-11-01", None, "unknown", 1.0) for i in range(1, 5)]
    gate, _ = _gate(_orders(rows), specs)
    outcome = gate.outcome("orders.accepted_values.status")
    assert outcome.action == "blocked" and "over the quarantine limit" in outcome.note
    assert gate.table("orders").quarantine == {}


def test_schema_drift_blocks_and_skips_the_rest(specs, validator):
    frame = _orders(CLEAN).rename(columns={"ordered_at": "order_timestamp"})
    profile = pd.DataFrame({"row_count": [4]})
    outcome = validate_table(
        specs["orders"], sample=frame, profile=profile, chunks=lambda: iter([]), as_of=AS_OF,
        validator=validator,
    )
    columns = next(e for e in outcome.expectations if e.id == "orders.columns")
    assert columns.action == "blocked"
    assert columns.note == "missing: ordered_at; unexpected: order_timestamp"
    assert outcome.status == "blocked"
    skipped = {e.id for e in outcome.expectations if e.action == "skipped"}
    assert "orders.not_in_future.ordered_at" in skipped


def test_retyped_column_blocks(specs, validator):
    frame = _orders(CLEAN)
    frame["amount"] = frame["amount"].map(lambda v: f"{v:.2f} USD").astype("str")
    outcome = validate_table(
        specs["orders"], sample=frame, profile=pd.DataFrame({"row_count": [4]}),
        chunks=lambda: iter([]), as_of=AS_OF, validator=validator,
    )
    retyped = next(e for e in outcome.expectations if e.id == "orders.type.amount")
    assert retyped.action == "blocked"
    assert {e.id for e in outcome.expectations if e.action == "blocked"} == {"orders.type.amount"}


def test_table_level_checks(specs, validator):
    customers = specs["customers"]
    sample = pd.DataFrame({"customer_id": [1], "signed_up_at": pd.to_datetime(["2026-10-01"])})
    stale = pd.DataFrame({"row_count": [1], "max__signed_up_at": pd.to_datetime(["2026-09-01"])})
    outcome = validate_table(customers, sample=sample, profile=stale,
                             chunks=lambda: iter([sample.assign(**{ROW: [0]}).set_index(ROW, drop=False)]),
                             as_of=AS_OF, validator=validator)
    fresh = next(e for e in outcome.expectations if e.kind == "freshness")
    assert fresh.action == "blocked" and "max age 30d" in fresh.note
    empty = pd.DataFrame({"row_count": [0], "max__signed_up_at": [pd.NaT]})
    outcome = validate_table(customers, sample=sample.iloc[0:0], profile=empty,
                             chunks=lambda: iter([]), as_of=AS_OF, validator=validator)
    assert next(e for e in outcome.expectations if e.kind == "not_empty").action == "blocked"


def test_volume_band(specs):
    gate, _ = _gate(_orders(CLEAN[:1]), specs, baselines={"orders": 4})
    volume = gate.outcome("orders.volume")
    assert volume.action == "blocked" and volume.observed == 1
    assert "baseline 4 rows" in volume.note
    gate, _ = _gate(_orders(CLEAN[:2]), specs, baselines={"orders": 4})
    assert gate.outcome("orders.volume").action == "passed"


def test_report_shows_a_table_checks_observed_value(specs):
    """A blocked volume check reads as the table's row count, not as one failing row."""
    gate, _ = _gate(_orders(CLEAN[:2]), specs, baselines={"orders": 40})
    console = Console(record=True, width=200)
    render_gate(gate, console)
    line = next(x for x in console.export_text().splitlines() if "orders.volume" in x)
    assert "— observed 2;" in line and "rows (" not in line


def test_report_is_json_ready(specs):
    import json

    gate, _ = _gate(_orders([*CLEAN, (5, 99, "2026-11-07", None, "placed", 1.0)]), specs)
    data = json.loads(json.dumps(gate.to_dict()))
    orphan = next(
        e for t in data["tables"] for e in t["expectations"]
        if e["id"] == "orders.references.customer_id"
    )
    assert orphan["unexpected_count"] == 1 and orphan["action"] == "quarantined"
    assert orphan["samples"][0]["__orphan__customer_id"] == 99


def _text_orders(**changes: dict[int, str]) -> pd.DataFrame:
    """CLEAN with some columns as text (as a CSV loads when a value does not convert)."""
    frame = _orders(CLEAN)
    for column, values in changes.items():
        frame[column] = frame[column].astype("str")
        for position, value in values.items():
            frame.loc[position, column] = value
    return frame


@pytest.mark.parametrize(
    ("column", "bad"),
    [
        ("amount", "N/A"),
        ("ordered_at", "11/11/2026 14:37:05"),
        ("ordered_at", "2026-11-05T16:39:11+05:00"),  # an offset: refused (not read as UTC)
    ],
)
def test_a_failed_type_check_shows_the_rows_that_break_it(specs, column, bad):
    gate, _ = _gate(_text_orders(**{column: {2: bad}}), specs)
    outcome = gate.outcome(f"orders.type.{column}")
    assert outcome.action == "blocked"
    assert outcome.unexpected_count == 1 and outcome.element_count == 4
    assert [(s["order_id"], s[column]) for s in outcome.samples] == [(3, bad)]
    assert "1 value(s) are not" in outcome.note
    saved = gate.to_dict()["tables"][1]["expectations"]
    assert next(e for e in saved if e["id"] == outcome.id)["unexpected_count"] == 1


def test_timestamps_in_utc_pass_the_type_check(specs):
    frame = _text_orders(ordered_at={0: "2026-11-01T00:00:00Z", 1: "2026-11-03 00:00:00+00:00"})
    assert type_offenders(_warehouse(frame), RELATIONS["orders"], "ordered_at", "timestamp", 3)[0] == 0


def test_the_inputs_fingerprint_tells_an_unchanged_input_from_a_changed_one(specs, monkeypatch):
    from pipeline import publish

    gate, con = _gate(_orders(CLEAN), specs)
    customers, orders = gate.inputs.tables
    assert (customers.table, customers.rows, customers.newest) == (
        "customers", 2, "2026-11-05T00:00:00")
    # orders declares no freshness check: its first timestamp column
    assert (orders.rows, orders.newest) == (4, "2026-11-06T00:00:00")
    assert not gate.inputs.unchanged and gate.inputs.published_run is None
    # as if that run was published
    run = publish.new_run_id()
    publish.start_run(con, run, as_of=AS_OF)
    publish.record_inputs(con, run, gate.inputs.fingerprint())
    publish.set_status(con, run, "published")

    def again():
        return run_gate(con, [specs["customers"], specs["orders"]], run_id="t2", as_of=AS_OF,
                        baselines={})

    gate = again()
    assert gate.inputs.unchanged and gate.inputs.published_run == run
    assert (gate.inputs.action, gate.status, gate.blocked) == ("warned", "warned", False)
    monkeypatch.setenv("KPI_UNCHANGED_INPUTS", "block")
    gate = again()
    assert gate.blocked and "unchanged since the published run" in gate.why_blocked
    # same row count, same newest timestamp, one value changed: not the same input
    con.execute("UPDATE raw.orders SET status = 'shipped' WHERE order_id = 1")
    gate = again()
    assert not gate.inputs.unchanged and not gate.blocked


def test_a_column_with_a_time_zone_is_refused(specs):
    con = _warehouse(_orders(CLEAN))
    con.execute("ALTER TABLE raw.orders ALTER ordered_at TYPE TIMESTAMPTZ")
    gate = run_gate(con, [specs["customers"], specs["orders"]], run_id="t", as_of=AS_OF,
                    baselines={})
    outcome = gate.outcome("orders.type.ordered_at")
    assert outcome.action == "blocked" and outcome.unexpected_count == 4
    assert len(outcome.samples) == 3 and outcome.samples[0]["order_id"] == 1


TEXT_SPEC = """\
version: 1
source: shop
tables:
  customers:
    key: customer_id
    columns: {customer_id: integer, signed_up_at: string}
  orders:
    key: order_id
    columns: {order_id: integer, customer_id: integer, ordered_at: string, shipped_at: string,
              status: string, amount: string}
    checks:
      - references: {column: customer_id, table: customers}
      - not_in_future: [ordered_at]
        as: timestamp
        max_quarantine_percent: 50
      - in_order: [customers.signed_up_at, ordered_at, shipped_at]
        as: timestamp
        max_quarantine_percent: 50
        policy: warn
      - between: {column: amount, min: 0}
        as: number
        max_quarantine_percent: 50
      - freshness: {column: ordered_at, max_age: 30d}
        as: timestamp
"""


def test_checks_on_text_columns_read_as_a_type():
    specs = parse_spec(TEXT_SPEC, "x.yml")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.customers AS SELECT * FROM (VALUES (10, '2026-10-01 00:00:00')) "
                "t(customer_id, signed_up_at)")
    con.execute(
        "CREATE TABLE raw.orders AS SELECT * FROM (VALUES "
        "(1, 10, '2026-11-01 10:00:00', '2026-11-02 10:00:00', 'placed', '5.5'),"
        "(2, 10, '2027-01-01 00:00:00', NULL, 'placed', '1'),"          # in the future
        "(3, 10, '2026-11-03 00:00:00', '2026-11-02 00:00:00', 'placed', '-2'),"  # order, range
        "(4, 10, '2026-09-03 00:00:00', NULL, 'placed', '3'),"          # before the sign-up
        "(5, 10, 'yesterday', NULL, 'placed', 'N/A')"                  # unreadable
        ") t(order_id, customer_id, ordered_at, shipped_at, status, amount)"
    )
    gate = run_gate(con, specs, run_id="t", as_of=AS_OF, baselines={}, chunk_rows=2)
    assert gate.outcome("orders.type.ordered_at").success  # declared string: no drift
    assert {(e.id, e.unexpected_count) for e in gate.table("orders").failed} == {
        ("orders.not_in_future.ordered_at", 1),
        ("orders.in_order.ordered_at.shipped_at", 1),
        ("orders.in_order.customers.signed_up_at.ordered_at", 1),
        ("orders.between.amount", 1),
        ("orders.as_timestamp.ordered_at", 1),
        ("orders.as_number.amount", 1),
    }
    assert gate.outcome("orders.freshness.ordered_at").success  # newest readable: 2027-01-01
    assert sorted(gate.table("orders").quarantine) == [1, 2, 4]  # the rowids; in_order warns
    assert gate.outcome("orders.in_order.ordered_at.shipped_at").action == "warned"
    newest = {t.table: t.newest for t in gate.inputs.tables}
    assert newest["orders"] == "2027-01-01T00:00:00"


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ("- not_in_future: [status]", "not_in_future: status is not a date or timestamp"),
        ("- freshness: {column: status, max_age: 1d}", "freshness: status is not a date or timestamp"),
        ("- between: {column: status, min: 0}", "between: status is not a number"),
        ("- unique: status\n        as: timestamp", "unique: `as:` is for between, not_in_future"),
    ],
)
def test_a_check_on_text_needs_its_type(check, message):
    from pipeline.quality.spec import SpecError

    text = SPEC.replace("      - volume: {max_drop: 0.5}", f"      {check}")
    with pytest.raises(SpecError) as info:
        parse_spec(text, "x.yml")
    assert any(message in str(i) for i in info.value.issues), info.value.issues


def test_the_gates_output_leaves_the_quarantined_rows_out_and_accounts_for_every_row(specs):
    from pipeline import publish
    from pipeline.quality.run import write_gate_outputs

    rows = [*CLEAN, (6, 10, "2026-11-07", "2026-11-08", "on_hold", 1.0)]
    con = _warehouse(_orders(rows))
    publish.ensure_meta(con)
    con.execute("CREATE SCHEMA landing")
    con.execute("CREATE TABLE landing.visits AS SELECT range AS visit_id FROM range(3)")
    visits = SourceTable("web", "visits", Relation("landing", "visits"), False, "w.yml:3")
    tables = [*TABLES, visits]
    gate = run_in_warehouse(con, [specs["customers"], specs["orders"]], tables, run_id="t",
                            as_of=AS_OF, baselines={})
    assert [u.table for u in gate.unguarded] == ["visits"] and gate.status == "quarantined"
    run = publish.new_run_id()
    write_gate_outputs(con, gate, tables, run)
    schema = publish.input_schema(run)
    kinds = dict(con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = ?",
        [schema]).fetchall())
    # a copy where rows were set aside, a view elsewhere; nothing for a source read in place
    assert kinds == {"orders": "BASE TABLE", "customers": "VIEW"}
    assert con.execute(f"SELECT list(order_id ORDER BY order_id) FROM {schema}.orders").fetchone() == ([1, 2, 3, 4],)
    counts = con.execute(
        f"SELECT table_name, raw_rows, passed_rows, quarantined_rows FROM {publish.COUNTS_TABLE} "
        "WHERE run_id = ? ORDER BY 1", [run]).fetchall()
    assert counts == [("customers", 2, 2, 0), ("orders", 5, 4, 1), ("visits", 3, 3, 0)]
    stored = con.execute(f"SELECT count(*), min(reason) FROM {publish.QUARANTINE_TABLE}").fetchone()
    assert stored[0] == 1 and "on_hold" in stored[1]


def test_the_gate_tells_its_progress_as_events_per_table_and_chunk(specs):
    events: list[Event] = []
    con = _warehouse(_orders(CLEAN))
    build.run_gate(con, [specs["customers"], specs["orders"]], TABLES, run_id="t", as_of=AS_OF,
                   baselines={}, chunk_rows=3, progress=events.append)
    customers, orders = Stage("gate", "customers"), Stage("gate", "orders")
    assert events == [
        Stage("gate"),
        customers, Detail(customers, "2 of 2 rows"),  # the two customers of _warehouse
        orders, Detail(orders, f"3 of {len(CLEAN)} rows"),
        Detail(orders, f"{len(CLEAN)} of {len(CLEAN)} rows"),
    ]
