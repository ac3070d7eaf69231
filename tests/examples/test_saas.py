"""The Cloudberry Analytics example (examples/saas), built end to end by the installed wheel
(`kpi build`: gate, dbt build, audit, publish) on a copy outside the repository; every KPI
it publishes is checked against an oracle computed in Python from its raw CSVs."""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

from tests.support.raw_oracle import RawOracle
from tests.support.saas_oracle import DIMENSIONS, ORACLE, RawCloudberry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "saas"
LAST_DAY = "2026-10-31"
GRAINS = ("day", "week", "month", "quarter", "year")

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def published(installed_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse `kpi build` published, from a copy of the example."""
    folder = tmp_path_factory.mktemp("saas")
    project = folder / "saas"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", "warehouse", "logs"))
    env = {
        **os.environ,
        "KPI_WAREHOUSE": str(folder / "saas.duckdb"),
        "KPI_EXPORT_DIR": str(folder / "exports"),
    }
    kpi = str(installed_wheel / "kpi")
    for args in (["validate"], ["compile", "--check"], ["build", "--as-of", LAST_DAY]):
        result = subprocess.run(
            [kpi, *args, "--project-dir", str(project)],
            cwd=folder, env=env, capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        if args == ["validate"]:  # owners, targets, descriptions: no hygiene warning
            assert "warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    return folder / "saas.duckdb"


def test_every_kpi_matches_the_oracle_at_every_grain_and_slice(published: Path) -> None:
    oracle = RawOracle(RawCloudberry(EXAMPLE / "seeds"), "sunday", ORACLE)
    with duckdb.connect(str(published), read_only=True) as con:
        rows = con.execute(
            "select kpi, grain, dimension, period_start, dimension_value, value"
            " from analytics.kpi_values"
        ).fetchall()
    published_values: dict[tuple[str, str, str], dict] = {}
    for kpi, grain, dimension, start, value_of, value in rows:
        published_values.setdefault((kpi, grain, dimension), {})[(start, value_of)] = value
    expected_sets = {
        (kpi, grain, dimension)
        for kpi in ORACLE for grain in GRAINS for dimension in ("total", *DIMENSIONS[kpi])
    }
    assert set(published_values) == expected_sets
    for key in sorted(expected_sets):
        expected = oracle.values(*key)
        got = published_values[key]
        assert set(got) == set(expected), key
        wrong = {
            period: (float(want) if want is not None else None, got[period])
            for period, want in expected.items()
            if not _close(None if want is None else float(want), got[period])
        }
        assert not wrong, (key, dict(sorted(wrong.items())[:5]))


def test_the_numbers_tell_a_growing_subscription_business(published: Path) -> None:
    with duckdb.connect(str(published), read_only=True) as con:
        months = con.execute(
            "select mrr, paying_accounts from analytics.kpi_monthly order by period_start"
        ).fetchall()
        churn, conversion = con.execute(
            "select avg(logo_churn), avg(trial_to_paid) from analytics.kpi_monthly"
        ).fetchone()
    (first_mrr, first_accounts), (last_mrr, last_accounts) = months[0], months[-1]
    assert len(months) == 22 and last_mrr > 100 * first_mrr and last_accounts > 100 * first_accounts
    assert 0.005 < churn < 0.05 and 0.15 < conversion < 0.45


def test_the_generator_writes_the_committed_csvs(tmp_path: Path) -> None:
    generate = _module(EXAMPLE / "generate.py")
    generate.write(generate.generate(), tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.csv"))
    assert written == sorted(p.relative_to(EXAMPLE / "seeds") for p in (EXAMPLE / "seeds").rglob("*.csv"))
    for path in written:
        assert (tmp_path / path).read_bytes() == (EXAMPLE / "seeds" / path).read_bytes(), path


def _close(want: float | None, got: float | None) -> bool:
    if want is None or got is None:
        return want is got
    return math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-12)


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("saas_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
