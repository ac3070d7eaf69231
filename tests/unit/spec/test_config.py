"""Project settings under `config:` as loaded (bad values: tests/fixtures/broken_metrics)."""

from __future__ import annotations

from pipeline.plan.planner import plan
from pipeline.spec.load import load

PROJECT = """\
version: 1
config:
  week_start: sunday
  incremental:
    lookback_days: 3
"""


def test_the_incremental_lookback_loads_and_reaches_the_plan():
    spec, issues = load({"metrics/_project.yml": PROJECT})
    assert not issues, [str(i) for i in issues]
    assert spec.config.incremental_lookback_days == 3
    assert spec.config.week_start == "sunday"
    assert plan(spec).lookback_days == 3


def test_a_lookback_of_zero_is_allowed():
    spec, issues = load({"metrics/_project.yml": PROJECT.replace("3", "0")})
    assert not issues, [str(i) for i in issues]
    assert spec.config.incremental_lookback_days == 0


def test_without_the_block_measure_models_are_not_incremental():
    text = PROJECT.replace("  incremental:\n    lookback_days: 3\n", "")
    spec, issues = load({"metrics/_project.yml": text})
    assert not issues, [str(i) for i in issues]
    assert spec.config.incremental_lookback_days is None
    assert plan(spec).lookback_days is None


def test_an_empty_block_is_reported_at_its_place():
    text = PROJECT.replace("    lookback_days: 3\n", "    {}\n").replace(":\n    {}", ": {}")
    _, issues = load({"metrics/_project.yml": text})
    assert [str(i) for i in issues] == [
        "metrics/_project.yml:4:16: error: missing required field 'lookback_days'"
    ]


def test_a_project_files_kpis_under_its_own_categories():
    from pipeline.catalog import read_catalog
    from pipeline.compiler import check_files
    from tests.unit.spec.test_broken_metrics import FIXTURES, ROOT

    project = "config:\n  categories: [revenue, product]\n"
    kpi = "kpis:\n  - {name: mrr, category: revenue, model: orders, time: order_date, sum: amount}\n"
    catalog = read_catalog(FIXTURES / "catalog" / "models", ROOT)
    spec, issues = check_files({"metrics/_project.yml": project, "metrics/mrr.yml": kpi}, catalog)
    assert not [str(i) for i in issues if i.level.value == "error"]
    assert spec.config.categories == ("revenue", "product")
