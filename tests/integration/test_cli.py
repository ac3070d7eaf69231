"""The `kpi` command as users run it: exit codes, messages, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import EXIT_INTERNAL

ROOT = Path(__file__).resolve().parents[2]
KPI = str(Path(sys.executable).with_name("kpi"))


def kpi(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KPI, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's metric files, model YAML and generated models."""
    shutil.copy(ROOT / "dbt_project.yml", tmp_path)
    shutil.copytree(ROOT / "metrics", tmp_path / "metrics")
    shutil.copytree(ROOT / "models", tmp_path / "models")
    shutil.copytree(ROOT / "macros", tmp_path / "macros")
    return tmp_path


def test_validate_accepts_the_reference_kpis():
    result = kpi("validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "are valid" in result.stderr


def test_validate_reports_every_mistake_with_its_place_and_exits_2(project: Path):
    revenue = project / "metrics/financial/revenue.yml"
    revenue.write_text(revenue.read_text().replace("sum: net_revenue", "sum: net_revenu"))
    margins = project / "metrics/financial/margins.yml"
    margins.write_text(margins.read_text().replace("category: financial", "category: finance", 1))
    (project / "metrics/broken.yml").write_text("kpis:\n  - name: x\n    category: [\n")
    result = kpi("validate", cwd=project)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("metrics/financial/revenue.yml:")
        and "error: kpi 'revenue': sum expression: unknown column 'net_revenu' in orders (did you mean 'net_revenue'?)" in line
        for line in lines
    ), lines
    assert any("category 'finance' is not one of" in line for line in lines)
    assert not any("is not a KPI" in line for line in lines)  # a KPI that failed to load cascades nothing
    assert any(line.startswith("metrics/broken.yml:4:1: error: invalid YAML") for line in lines), lines
    assert "Traceback" not in result.stdout + result.stderr


def test_compile_check_names_stale_files_and_compile_fixes_them(project: Path):
    assert kpi("compile", "--check", cwd=project).returncode == 0
    path = project / "metrics/sales_marketing/web.yml"
    path.write_text(path.read_text().replace("average: pageviews", "max: pageviews"))
    (project / "models/kpi/wide/kpi_hourly.sql").write_text("select 1\n")
    result = kpi("compile", "--check", cwd=project)
    assert result.returncode == 1
    assert "stale: models/kpi/measures/kpi_measures__sessions.sql" in result.stdout
    assert "stale: models/kpi/wide/kpi_hourly.sql" in result.stdout
    assert kpi("compile", cwd=project).returncode == 0
    assert not (project / "models/kpi/wide/kpi_hourly.sql").exists()
    assert kpi("compile", "--check", cwd=project).returncode == 0


def test_compile_refuses_an_invalid_project_without_writing(project: Path):
    before = {p: p.read_bytes() for p in (project / "models/kpi").rglob("*") if p.is_file()}
    path = project / "metrics/customer/nps.yml"
    path.write_text(path.read_text().replace("derived: 100 * (promoters - detractors) / nps_responses", "derived: promoters + nps"))
    result = kpi("compile", cwd=project)
    assert result.returncode == 2
    assert "kpi 'nps': depends on itself: nps → nps" in result.stderr
    assert before == {p: p.read_bytes() for p in (project / "models/kpi").rglob("*") if p.is_file()}


def test_a_user_error_is_its_located_lines_and_debug_shows_the_traceback(project: Path):
    path = project / "metrics/financial/revenue.yml"
    path.write_text(path.read_text().replace("sum: net_revenue", "sum: net_revenu"))
    line, text = next(
        (n, text) for n, text in enumerate(path.read_text().splitlines(), 1) if "net_revenu" in text
    )
    result = kpi("compile", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"metrics/financial/revenue.yml:{line}:{text.index('net_revenu') + 1}: error: kpi "
        "'revenue': sum expression: unknown column 'net_revenu' in orders (did you mean 'net_revenue'?)"
    ]
    assert "Traceback" not in result.stdout + result.stderr
    debug = kpi("--debug", "compile", cwd=project)
    assert debug.returncode == 2, debug.stdout + debug.stderr
    assert "Traceback (most recent call last):" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1] == (
        f"pipeline.errors.UserError: {result.stderr.strip()}"
    )


def test_an_unexpected_error_is_one_line_with_a_hint_and_debug_shows_the_traceback(monkeypatch):
    """An exception no rule expects (a bug: here one put in the compiler's path)."""
    from typer.testing import CliRunner

    from pipeline import cli, compiler

    def broken(project):
        raise KeyError("orders")

    monkeypatch.setattr(compiler, "read_metric_files", broken)
    plain = CliRunner().invoke(cli.app, ["list"])
    assert plain.exit_code == EXIT_INTERNAL, plain.output
    assert plain.stderr.splitlines() == [
        "error: KeyError: 'orders' (unexpected; `kpi --debug …` shows the traceback)"
    ]
    debug = CliRunner().invoke(cli.app, ["--debug", "list"])
    assert debug.exit_code == EXIT_INTERNAL, debug.output
    assert "Traceback (most recent call last):" in debug.stderr
    assert 'raise KeyError("orders")' in debug.stderr


def test_list_json_gives_every_kpi_with_its_fields():
    result = kpi("list", "--json")
    assert result.returncode == 0
    rows = json.loads(result.stdout)
    assert {"revenue", "conversion_rate", "cac", "aov"} <= {r["name"] for r in rows}
    assert all(set(r) == {"name", "label", "category", "type", "grains", "owner"} for r in rows)
    assert next(r for r in rows if r["name"] == "aov")["type"] == "ratio"


@pytest.mark.dbt
def test_query_prints_the_kpi_mart_rows_with_targets_and_comparisons(demo_warehouse: Path):
    env = {"KPI_WAREHOUSE": str(demo_warehouse)}
    result = kpi("query", "revenue", "--grain", "month", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {"value", "target", "attainment", "status", "previous_value", "last_year_value", "target_source"} <= set(rows[0])
    assert rows[-1]["target"] == 500000 and rows[-1]["is_partial_period"] is True
    by_channel = json.loads(kpi("query", "revenue", "--grain", "month", "--by", "channel", "--format", "json", env=env).stdout)
    assert {r["dimension_value"] for r in by_channel} == {"web", "app", "marketplace"}
    csv = kpi("query", "aov", "--grain", "year", "--format", "csv", env=env).stdout.splitlines()
    assert csv[0].startswith("kpi,label,category") and len(csv) == 4  # header + 2024, 2025, 2026
    wrong = kpi("query", "revenu", "--grain", "month", env=env)
    assert wrong.returncode == 2 and "did you mean 'revenue'?" in wrong.stderr + wrong.stdout
    assert "Traceback" not in wrong.stderr


def test_build_from_a_folder_that_does_not_exist_is_a_user_error(tmp_path: Path):
    result = kpi("build", "--raw-parquet", str(tmp_path / "nowhere"),
                 env={"KPI_WAREHOUSE": str(tmp_path / "wh.duckdb")})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"--raw-parquet: no folder {tmp_path / 'nowhere'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_parquet_layout_without_the_table_is_a_user_error(tmp_path: Path):
    (tmp_path / "raw").mkdir()
    result = kpi("check", "--raw-parquet", str(tmp_path / "raw"), "--raw-parquet-layout",
                 "{source}.parquet", env={"KPI_WAREHOUSE": str(tmp_path / "wh.duckdb")})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--raw-parquet-layout: Parquet layout '{source}.parquet' must hold {table}" in result.stderr
    assert "Traceback" not in result.stderr


def test_build_from_parquet_without_a_table_names_the_file_and_its_stage(tmp_path: Path):
    """The progress shows each stage with the time since the start; the missing file of a
    declared raw table fails the run before anything is loaded, with its declaration."""
    (tmp_path / "raw" / "shop").mkdir(parents=True)
    result = kpi("build", "--as-of", "2026-11-15", "--raw-parquet", str(tmp_path / "raw"),
                 env={"KPI_WAREHOUSE": str(tmp_path / "wh.duckdb")})
    assert result.returncode == 1, result.stdout + result.stderr
    assert any(line.split()[1:] == ["s", "load"] for line in result.stderr.splitlines()
               if line.strip().endswith("load")), result.stderr
    assert f"{tmp_path / 'raw' / 'shop' / 'orders'}.parquet" in result.stderr
    assert "_shop__expectations.yml" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_reports_a_file_that_is_not_utf8_at_its_bad_byte(project: Path):
    (project / "metrics/latin1.yml").write_bytes("kpis: []\n# Caf\xe9\n".encode("latin-1"))
    result = kpi("validate", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "metrics/latin1.yml:2:6: error: not UTF-8 text: byte 0xe9 cannot be decoded; save the file as UTF-8" in result.stdout.splitlines()
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_refuses_an_alias_bomb(project: Path):
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 12)]  # 10^12 values
    (project / "metrics/bomb.yml").write_text("\n".join(lines) + "\n")
    result = kpi("validate", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "metrics/bomb.yml:1:5: error: YAML aliases repeat more than 10,000 values; write them out" in result.stdout.splitlines()


def test_generate_help_lists_the_defects_it_accepts():
    from pipeline.datagen import DEFECTS

    result = kpi("generate", "--help")
    assert result.returncode == 0, result.stderr
    words = set(result.stdout.replace(",", " ").replace(".", " ").split())
    assert set(DEFECTS) <= words, result.stdout
