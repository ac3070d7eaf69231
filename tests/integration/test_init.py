"""`kpi init` in an existing dbt project and in an empty folder, through the real command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from pipeline.quality.spec import parse_spec

KPI = str(Path(sys.executable).with_name("kpi"))


def kpi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DBT_PROFILES_DIR"}
    return subprocess.run([KPI, *args], cwd=cwd, capture_output=True, text=True, env=env)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def _subscriptions_project(root: Path) -> None:
    _write(root / "dbt_project.yml", """
        name: saas
        version: "1.0.0"
        config-version: 2
        profile: saas
    """)
    _write(root / "profiles.yml", """
        saas:
          target: "{{ env_var('SAAS_TARGET', 'local') }}"
          outputs:
            local:
              type: duckdb
              path: saas.duckdb
    """)
    _write(root / "models/staging/billing/_billing__sources.yml", """
        version: 2
        sources:
          - name: billing
            tables:
              - name: invoices
                columns:
                  - name: invoice_id
                    data_type: integer
                    data_tests: [unique, not_null]
                  - name: issued_at
                    data_type: timestamp
                    data_tests: [not_null]
                  - name: plan
                    data_type: varchar
                    data_tests:
                      - accepted_values:
                          arguments:
                            values: [starter, team, enterprise]
                  - name: amount
                    data_type: decimal(12, 2)
    """)
    _write(root / "models/marts/_marts__models.yml", """
        version: 2
        models:
          - name: invoices
            columns:
              - name: invoice_id
                data_type: integer
              - name: issued_at
                data_type: timestamp
              - name: amount
                data_type: decimal(12, 2)
    """)


def test_init_in_a_dbt_project_writes_what_validates(tmp_path: Path) -> None:
    _subscriptions_project(tmp_path)
    result = kpi("init", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    project = yaml.safe_load((tmp_path / "metrics/_project.yml").read_text())
    assert project["config"]["dialect"] == "duckdb"  # the profile's adapter
    (kpi_doc,) = yaml.safe_load((tmp_path / "metrics/invoices.yml").read_text())["kpis"]
    assert (kpi_doc["model"], kpi_doc["time"], kpi_doc["count"]) == ("invoices", "issued_at", "*")

    path = tmp_path / "models/staging/billing/_billing__expectations.yml"
    (table,) = parse_spec(path.read_text(), str(path))
    assert table.source == "billing" and table.name == "invoices"
    document = yaml.safe_load(path.read_text())["tables"]["invoices"]
    assert document["key"] == "invoice_id"
    assert document["columns"] == {
        "invoice_id": "integer", "issued_at": "timestamp", "plan": "string", "amount": "number",
    }
    checks = document["checks"]
    assert {"unique": "invoice_id", "policy": "block"} in checks
    assert {"not_null": ["invoice_id", "issued_at"]} in checks
    assert {"accepted_values": {"column": "plan", "values": ["starter", "team", "enterprise"]}} in checks
    assert {"not_in_future": ["issued_at"]} in checks

    validated = kpi("validate", cwd=tmp_path)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "1 KPIs in 2 metric files are valid" in validated.stderr

    before = {p: p.read_bytes() for p in tmp_path.rglob("*.yml")}
    again = kpi("init", cwd=tmp_path)
    assert again.returncode == 0 and "wrote:" not in again.stdout
    assert before == {p: p.read_bytes() for p in tmp_path.rglob("*.yml")}


def test_init_in_an_empty_folder_writes_a_dbt_project(tmp_path: Path) -> None:
    folder = tmp_path / "My KPIs"
    folder.mkdir()
    result = kpi("init", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    project = yaml.safe_load((folder / "dbt_project.yml").read_text())
    assert project["name"] == project["profile"] == "my_kpis"
    profile = yaml.safe_load((folder / "profiles.yml").read_text())["my_kpis"]
    assert profile["outputs"]["duckdb"]["type"] == "duckdb"
    assert "note: no model's YAML lists a date or timestamp column" in result.stderr
    validated = kpi("validate", cwd=folder)
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_a_source_without_columns_takes_the_warehouse_s(tmp_path: Path) -> None:
    """A source whose YAML lists no columns: the expectations list the columns of its
    table where the source says it is (its schema, its identifier) in the profile's file."""
    import duckdb

    _subscriptions_project(tmp_path)
    _write(tmp_path / "models/staging/billing/_billing__sources.yml", """
        sources:
          - name: billing
            schema: "{{ var('billing_schema', 'landing') }}"
            tables: [{name: invoices, identifier: invoices_v2}, {name: refunds}]
    """)
    with duckdb.connect(str(tmp_path / "saas.duckdb")) as con:
        con.execute("create schema landing")
        con.execute("create table landing.invoices_v2 (id bigint, issued_at timestamptz, plan varchar)")
    result = kpi("init", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    document = yaml.safe_load((tmp_path / "models/staging/billing/_billing__expectations.yml").read_text())
    assert list(document["tables"]) == ["invoices"]  # refunds: not in the warehouse
    assert document["tables"]["invoices"]["columns"] == {
        "id": "integer", "issued_at": "timestamp", "plan": "string",
    }
