"""What validation accepts beside what the broken-metric corpus refuses: filters proven
boolean, functions the dialect knows, targets, and names."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.catalog import read_catalog
from pipeline.compiler import check_files
from pipeline.semantics.marts import RESERVED_KPI_NAMES

FIXTURES = Path(__file__).parents[2] / "fixtures"
HEADER = "relationships:\n  - {from: orders, to: customers, on: customer_id}\nkpis:\n"


@pytest.fixture(scope="module")
def catalog():
    return read_catalog(FIXTURES / "catalog" / "models", FIXTURES.parents[1])


def _errors(catalog, kpis: str, dialect: str = "postgres") -> list[str]:
    text = f"config: {{dialect: {dialect}}}\n{HEADER}{kpis}"
    _, issues = check_files({"metrics/x.yml": text}, catalog)
    return [str(i) for i in issues if ": error: " in str(i)]


def _simple(line: str, name: str = "k", extra: str = "") -> str:
    return (
        f"  - name: {name}\n    category: financial\n    model: orders\n"
        f"    time: order_date\n{line}\n{extra}"
    )


@pytest.mark.parametrize(
    "condition",
    [
        "is_cancelled",
        "not is_cancelled",
        "amount > 0",
        "status = 'shipped' and not is_cancelled",
        "status in ('a', 'b') or status is null",
        "status is not null",
        "amount between 10 and 20",
        "status like 'ship%'",
        "status ilike 'ship%'",
        "true",
        "false",
        "coalesce(is_cancelled, false)",
        "case when amount > 10 then is_cancelled else false end",
        "cast(status as boolean)",
        "customers.segment = 'trade'",
        "starts_with(status, 'ship')",
        "(not (is_cancelled))",
        "is_cancelled is distinct from true",
    ],
)
def test_a_condition_is_a_filter(catalog, condition: str):
    assert _errors(catalog, _simple("    sum: amount", extra=f'    filter: "{condition}"\n')) == []


@pytest.mark.parametrize(
    ("condition", "fault"),
    [
        ("amount * 2", "amount * 2 is not a condition"),
        ("1", "1 is not a condition"),
        ("status", "column 'status' is varchar, not boolean"),
        ("is_cancelled or amount", "column 'amount' is decimal(12,2), not boolean"),
        ("coalesce(amount, 0)", "column 'amount' is decimal(12,2), not boolean"),
        ("case when is_cancelled then amount end", "column 'amount' is decimal(12,2)"),
    ],
)
def test_a_value_is_not_a_filter(catalog, condition: str, fault: str):
    errors = _errors(catalog, _simple("    sum: amount", extra=f'    filter: "{condition}"\n'))
    assert len(errors) == 1 and fault in errors[0], errors


@pytest.mark.parametrize("dialect", ["postgres", "duckdb"])
@pytest.mark.parametrize(
    "expression",
    [
        "coalesce(amount, 0)",
        "abs(amount)",
        "round(amount, 1)",
        "greatest(amount, 0)",
        "extract(epoch from ordered_at)",
        "date_trunc('month', order_date)",
        "upper(status)",
    ],
)
def test_functions_the_dialect_knows_are_accepted(catalog, dialect: str, expression: str):
    assert _errors(catalog, _simple(f'    max: "{expression}"'), dialect) == []


def test_an_unknown_function_is_refused_wherever_it_is_called(catalog):
    errors = _errors(catalog, _simple('    sum: "amount * frobnicate(amount)"'))
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "metrics/x.yml:9:19: error: kpi 'k': sum expression: unknown SQL function 'frobnicate' in postgres"
    )


@pytest.mark.parametrize("expression", ["amount; drop table orders", ";amount", "amount;;"])
def test_a_statement_separator_is_refused(catalog, expression: str):
    errors = _errors(catalog, _simple(f'    sum: "{expression}"'))
    assert len(errors) == 1 and ("';'" in errors[0] or "statements" in errors[0]), errors


def test_a_semicolon_inside_a_string_is_data(catalog):
    assert (
        _errors(catalog, _simple("    count: order_id", extra="    filter: \"status = 'a;b'\"\n"))
        == []
    )


@pytest.mark.parametrize(
    "targets",
    [
        "[{growth: -0.1}]",  # shrinking is a growth target like any other
        "[{value: 100, per: month}]",
        "[{growth: 0.1, to: 2025-05-31}, {growth: 0.2, from: 2025-06-01}]",
        "[{growth: 0.1}, {growth: 0.2, where: {channel: web}}]",
    ],
)
def test_targets_that_can_apply_are_accepted(catalog, targets: str):
    extra = f"    dimensions: [channel]\n    grains: [month, year]\n    targets: {targets}\n"
    assert _errors(catalog, _simple("    count: order_id", extra=extra)) == []


def test_a_negative_target_is_accepted_where_the_kpi_can_be_negative(catalog):
    # a difference, and a sum of a column with no test keeping it >= 0
    extra = "    targets: [{value: -5, per: month}]\n"
    assert _errors(catalog, _simple('    sum: "amount - 10"', extra=extra)) == []


def test_every_reserved_name_is_refused_and_ordinary_ones_are_not(catalog):
    for name in [*sorted(RESERVED_KPI_NAMES), "select", "order", "group", "from", "table"]:
        errors = _errors(catalog, _simple("    count: order_id", name=name))
        assert len(errors) == 1 and f"name '{name}' is reserved" in errors[0], errors
    for name in ("orders_placed", "revenue", "sessions", "first_orders", "values", "grains"):
        assert _errors(catalog, _simple("    count: order_id", name=name)) == []
