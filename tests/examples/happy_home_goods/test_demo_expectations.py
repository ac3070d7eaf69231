"""The demo's expectation files (models/staging/*/_*__expectations.yml): one contract per
raw table of the generator's schema, its keys, references and accepted values, the
policies of the defects the generator can inject, and dbt tests that agree with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.datagen.schema import ACCEPTED_VALUES, FOREIGN_KEYS, TABLES
from pipeline.quality.spec import load_specs, order_tables
from tests.support.projects import REPO_ROOT as REPO


@pytest.fixture(scope="module")
def specs():
    return {t.name: t for t in load_specs(REPO / "models")}


def test_every_raw_table_has_its_contract(specs):
    assert set(specs) == {t.name for t in TABLES}
    for table in TABLES:
        spec = specs[table.name]
        assert list(spec.columns) == table.column_names, table.name
        assert spec.key == table.key
        ids = {e.id for e in spec.expectations}
        assert f"{table.name}.columns" in ids
        assert f"{table.name}.unique.{'.'.join(table.key)}" in ids
        assert f"{table.name}.not_empty" in ids and f"{table.name}.volume" in ids


def test_foreign_keys_and_accepted_values_are_declared(specs):
    for table, column, parent, to in FOREIGN_KEYS:
        e = specs[table].expectation(f"{table}.references.{column}")
        assert (e.params["table"], e.params["to"]) == (parent, to)
    for (table, column), values in ACCEPTED_VALUES.items():
        e = specs[table].expectation(f"{table}.accepted_values.{column}")
        assert e.params["values"] == list(values)


def test_policies_of_the_defect_expectations(specs):
    policy = {e.id: e.policy for t in specs.values() for e in t.expectations}
    assert policy["orders.unique.order_id"] == "block"
    assert policy["order_items.not_null.order_item_id"] == "block"  # part of an order
    assert policy["orders.accepted_values.status"] == "quarantine"
    assert policy["order_items.cascade.order_id"] == "quarantine"
    assert policy["nps_responses.between.score"] == "quarantine"
    assert policy["sessions.freshness.started_at"] == "block"
    assert policy["email_campaigns.in_order.clicks.opens"] == "warn"


def test_parents_come_before_children(specs):
    ordered = [t.name for t in order_tables(specs.values())]
    for table, _, parent, _ in FOREIGN_KEYS:
        assert ordered.index(parent) < ordered.index(table)


def test_location_is_relative_to_the_project(specs):
    assert specs["orders"].location.file == "models/staging/shop/_shop__expectations.yml"
    assert specs["orders"].location.line > 0


# the dbt generic test that checks the same thing as each kind of row expectation
DBT_TWIN = {
    "not_null": "not_null", "between": "accepted_range", "accepted_values": "accepted_values",
    "references": "relationships", "not_in_future": "not_after_end_date",
}


def _dbt_tests(models: Path) -> list[tuple[str, str | None, str, dict]]:
    """(raw table, column or None, test name, test entry) of every dbt source test and
    every test of a staging model (stg_<source>__<table>)."""
    from ruamel.yaml import YAML

    out = []

    def collect(table: str, node: dict) -> None:
        for column in [None, *(node.get("columns") or [])]:
            holder = node if column is None else column
            for test in holder.get("data_tests") or []:
                name, body = (test, {}) if isinstance(test, str) else next(iter(test.items()))
                out.append((table, column and column["name"], name, body or {}))

    for path in sorted(models.glob("staging/*/_*__*.yml")):
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        for source in data.get("sources") or []:
            for table in source.get("tables") or []:
                collect(table["name"], table)
        for model in data.get("models") or []:
            if "__" in model["name"]:
                collect(model["name"].split("__", 1)[1], model)
    return out


def _twins(e, tests) -> list[dict]:
    """The dbt tests that check what expectation `e` checks."""
    found = []
    for table, column, name, body in tests:
        if table != e.table:
            continue
        if e.kind == "in_order":
            earlier, later = e.params["earlier"], e.params["later"]
            expression = " ".join(str((body.get("arguments") or {}).get("expression", "")).split())
            if name == "expression_is_true" and expression in (
                f"{earlier} <= {later}", f"{later} >= {earlier}"
            ):
                found.append(body)
        elif e.kind == "unique":
            if (len(e.columns) == 1 and (column, name) == (e.columns[0], "unique")) or (
                name == "unique_combination_of_columns" and column is None
                and set((body.get("arguments") or {}).get("combination_of_columns", []))
                == set(e.columns)
            ):
                found.append(body)
        elif DBT_TWIN.get(e.kind) == name and column == e.columns[0]:
            found.append(body)
    return found


def test_dbt_tests_that_repeat_a_warn_expectation_only_warn(specs):
    """One policy per fact: a dbt test repeating a warn expectation must not fail the run
    that the gate lets through (clicks <= impressions, clicks <= opens <= sends)."""
    tests = _dbt_tests(REPO / "models")
    warned = [e for spec in specs.values() for e in spec.expectations if e.policy == "warn"]
    twins = [(e.id, body) for e in warned for body in _twins(e, tests)]
    assert len(twins) >= 3  # the matcher finds the demo's three
    wrong = [eid for eid, body in twins if (body.get("config") or {}).get("severity") != "warn"]
    assert wrong == []
