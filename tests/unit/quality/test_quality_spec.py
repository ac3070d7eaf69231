"""Expectations files: the repository's files load and match the raw contract; mistakes
are issues at their file and line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.quality.spec import SpecError, load_specs, parse_age, parse_spec

GOOD = """\
version: 1
source: shop
tables:
  orders:
    key: order_id
    columns:
      order_id: integer
      ordered_at: timestamp
    checks:
      - unique: order_id
"""


_SELF_REFERENCE = '      - references: {{column: order_id, table: orders, where: "{}"}}\n'


def test_a_minimal_file():
    [table] = parse_spec(GOOD, "x.yml")
    assert [e.id for e in table.expectations] == [
        "orders.columns", "orders.type.order_id", "orders.type.ordered_at", "orders.unique.order_id",
    ]
    assert table.expectation("orders.unique.order_id").policy == "quarantine"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("      - unique: order_id", "      - unique: order_idd"),
         "x.yml:10: error: unique: orders has no column 'order_idd'"),
        (GOOD.replace("      - unique: order_id", "      - unique: order_id\n        polcy: warn"),
         "x.yml:10: error: tables.orders.checks.0: Additional properties"),
        (GOOD.replace("      - unique: order_id", "      - freshness: {column: ordered_at, "
                      "max_age: 2d}\n        policy: quarantine"),
         "x.yml:10: error: freshness is about the whole table: policy block or warn"),
        (GOOD.replace("ordered_at: timestamp", "ordered_at: datetime"),
         "x.yml:8: error: tables.orders.columns.ordered_at: 'datetime' is not one of"),
        (GOOD.replace("      - unique: order_id", "      - freshness: {column: ordered_at, "
                      "max_age: 2 fortnights}"),
         "x.yml:10: error: freshness: not an age"),
        (GOOD.replace("      - unique: order_id", "      - unique: order_id\n        not_null: x"),
         "x.yml:10: error: tables.orders.checks.0: a check has exactly one kind, found unique, not_null"),
        (GOOD.replace("version: 1", "version: 2"), "x.yml:1: error: version: 1 was expected"),
        (GOOD + "   bad: [", "x.yml:"),
        (GOOD + _SELF_REFERENCE.format("ordered_at > 0) OR (1 = 1"),
         "x.yml:11: error: references: cannot parse references where"),
        (GOOD + _SELF_REFERENCE.format("1 = 1; DROP TABLE orders"),
         "x.yml:11: error: references: references where must be a single SQL expression, not 2 statements"),
        (GOOD + _SELF_REFERENCE.format("order_id IN (SELECT 1)"),
         "x.yml:11: error: references: references where must not contain a subquery"),
    ],
)
def test_mistakes_are_reported_at_their_line(text, message):
    with pytest.raises(SpecError) as info:
        parse_spec(text, "x.yml")
    printed = [str(issue) for issue in info.value.issues]
    assert any(p.startswith(message) for p in printed), printed


def test_cross_file_mistakes(tmp_path):
    folder = tmp_path / "models" / "staging" / "shop"
    folder.mkdir(parents=True)
    (folder / "_shop__expectations.yml").write_text(
        GOOD + "      - references: {column: order_id, table: customers}\n"
        "      - in_order: [products.launched_on, ordered_at]\n"
    )
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path / "models")
    text = str(info.value)
    assert "staging/shop/_shop__expectations.yml:11: error: references unknown table 'customers'" in text
    assert "in_order uses products.launched_on: declare a `references`" in text


def test_a_references_where_reaches_the_gate_as_sqlglot_writes_it(tmp_path):
    folder = tmp_path / "models" / "staging" / "shop"
    folder.mkdir(parents=True)
    path = folder / "_shop__expectations.yml"
    path.write_text(GOOD + _SELF_REFERENCE.format("ordered_at>DATE '2024-01-01'"))
    [orders] = load_specs(tmp_path / "models")
    assert orders.expectation("orders.references.order_id").params["where"] == (
        "ordered_at > CAST('2024-01-01' AS DATE)"
    )
    path.write_text(GOOD + _SELF_REFERENCE.format("status = 'paid'"))
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path / "models")
    assert [str(issue) for issue in info.value.issues] == [
        "models/staging/shop/_shop__expectations.yml:11: error: references where: orders has no "
        "column 'status'"
    ]


def test_parse_age():
    assert parse_age("36h") == timedelta(hours=36)
    assert parse_age("2 days") == timedelta(days=2)
    assert parse_age("1w") == timedelta(weeks=1)
    assert parse_age("90min") == timedelta(minutes=90)
    with pytest.raises(ValueError):
        parse_age("soon")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("order_id + 1", "references where: filter must be true or false for each row: "
                         "order_id + 1 is not a condition"),
        ("ordered_at", "references where: filter must be true or false for each row: "
                       "column 'ordered_at' is timestamp, not boolean"),
        ("max(order_id) > 1", "references: references where must not contain an aggregate"),
        ("order_id > 1 -- and more", "references: references where must not contain SQL comments"),
    ],
)
def test_a_references_where_is_vetted_like_a_metric_filter(tmp_path, where, message):
    folder = tmp_path / "models" / "staging" / "shop"
    folder.mkdir(parents=True)
    (folder / "_shop__expectations.yml").write_text(GOOD + _SELF_REFERENCE.format(where))
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path / "models")
    (problem,) = map(str, info.value.issues)
    assert problem.startswith(f"models/staging/shop/_shop__expectations.yml:11: error: {message}")
