"""Where the gate reads each dbt source table: resolved from the sources' YAML as dbt would."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import Location
from pipeline.quality.sources import guarded, project_vars, source_tables
from pipeline.quality.spec import SpecError, parse_spec
from pipeline.warehouse.names import Relation

SOURCES = """\
version: 2
sources:
  - name: shop
    schema: "{{ var('raw_schema', 'raw') }}"
    tables:
      - name: orders
      - name: customers
        identifier: customers_v2
  - name: billing
    database: lake
    schema: "{{ env_var('BILLING_SCHEMA', 'stripe') }}"
    tables:
      - name: invoices
  - name: crm
    tables:
      - name: accounts
"""


def _models(tmp_path: Path, text: str = SOURCES) -> Path:
    folder = tmp_path / "models" / "staging"
    folder.mkdir(parents=True)
    (folder / "_sources.yml").write_text(text)
    return tmp_path / "models"


def test_each_table_is_where_its_source_says(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_SCHEMA", "billing_prod")
    tables = {(t.source, t.table): t for t in source_tables(_models(tmp_path), {})}
    assert tables["shop", "orders"].relation == Relation("raw", "orders")
    assert tables["shop", "customers"].relation == Relation("raw", "customers_v2")
    assert tables["billing", "invoices"].relation == Relation("billing_prod", "invoices", "lake")
    assert tables["crm", "accounts"].relation == Relation("crm", "accounts")  # dbt's default
    # only a schema following var('raw_schema') reads the gate's input in a build
    assert {k for k, t in tables.items() if t.gated} == {("shop", "orders"), ("shop", "customers")}
    assert tables["shop", "customers"].location == Location("models/staging/_sources.yml", 7)


def test_the_projects_vars_set_the_schema(tmp_path):
    (tmp_path / "dbt_project.yml").write_text(
        "name: p\nvars:\n  raw_schema: landing\n  p:\n    other: x\n"
    )
    values = project_vars(tmp_path)
    assert values == {"raw_schema": "landing", "other": "x"}
    tables = {t.table: t for t in source_tables(_models(tmp_path), values)}
    assert tables["orders"].relation == Relation("landing", "orders") and tables["orders"].gated


def test_jinja_the_gate_cannot_follow_is_refused_with_its_location(tmp_path):
    text = SOURCES.replace("{{ env_var('BILLING_SCHEMA', 'stripe') }}", "{{ target.schema }}_raw")
    with pytest.raises(SpecError) as error:
        source_tables(_models(tmp_path, text), {})
    (problem,) = map(str, error.value.issues)
    assert problem.startswith("models/staging/_sources.yml:11: error: schema: the gate cannot tell")


def test_a_var_without_a_value_is_refused(tmp_path):
    text = SOURCES.replace("var('raw_schema', 'raw')", "var('landing')")
    with pytest.raises(SpecError, match=r"_sources.yml:4: error: schema: var\('landing'\) has no value"):
        source_tables(_models(tmp_path, text), {})


def test_two_gated_tables_with_one_identifier_are_refused(tmp_path):
    text = SOURCES.replace("identifier: customers_v2", "identifier: orders")
    with pytest.raises(SpecError, match="both read 'orders' from the gate's input"):
        source_tables(_models(tmp_path, text), {})


def test_expectations_name_a_dbt_source_table(tmp_path):
    tables = source_tables(_models(tmp_path), {})
    spec = parse_spec(
        "version: 1\nsource: shop\ntables:\n  orders:\n    key: id\n    columns: {id: integer}\n"
        "  refunds:\n    key: id\n    columns: {id: integer}\n",
        "e.yml",
    )
    with pytest.raises(SpecError) as error:
        guarded(spec, tables)
    assert [str(i) for i in error.value.issues] == [
        "e.yml:7: error: shop.refunds is not a table of a dbt source (declare it under `sources:` "
        "in a YAML file of models/)"
    ]
    found, unguarded = guarded(spec[:1], tables)
    assert found["orders"].relation == Relation("raw", "orders")
    assert {(t.source, t.table) for t in unguarded} == {
        ("shop", "customers"), ("billing", "invoices"), ("crm", "accounts")}
