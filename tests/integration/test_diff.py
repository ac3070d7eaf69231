"""`kpi diff` on a temporary git repository: a base commit, then a working tree where one
KPI's filter changed, one was renamed, one added and one removed.

The repository is a copy of the project (dbt project, models, seeds, macros, dbt tests)
with a small metric set of its own, so the test does not move when metrics/ does. The
dbt-building test builds the base once and the working tree incrementally.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from pipeline import compiler, diff
from pipeline.project import Project

ROOT = Path(__file__).resolve().parents[2]

BASE_KPIS = """\
version: 1
kpis:
  - name: revenue
    description: Net revenue of non-cancelled orders.
    category: financial
    owner: finance@example.com
    model: orders
    time: order_date
    sum: net_revenue
    filter: not is_cancelled
    dimensions: [channel]
    format: currency
    targets: [{value: 500000, per: month}]

  - name: orders_placed
    description: Orders not cancelled.
    category: sales_marketing
    owner: sales@example.com
    model: orders
    time: order_date
    count: order_id
    filter: not is_cancelled
    dimensions: [channel]

  - name: aov
    description: Net revenue per order.
    category: sales_marketing
    owner: sales@example.com
    ratio: {numerator: revenue, denominator: orders_placed}
    dimensions: [channel]
    format: currency

  - name: gross_sales
    description: List-price value of non-cancelled orders.
    category: financial
    owner: finance@example.com
    model: orders
    time: order_date
    sum: gross_revenue
    filter: not is_cancelled
    grains: [month, year]
    format: currency

  - name: cancelled_orders
    description: Orders cancelled.
    category: sales_marketing
    owner: sales@example.com
    model: orders
    time: order_date
    count: order_id
    filter: is_cancelled
    grains: [month]
"""

# the working tree: revenue leaves out the marketplace, gross_sales is renamed,
# cancelled_orders removed, web_orders added
HEAD_KPIS = (
    BASE_KPIS.replace(
        "    sum: net_revenue\n    filter: not is_cancelled\n",
        "    sum: net_revenue\n    filter: not is_cancelled and channel <> 'marketplace'\n",
    )
    .replace("name: gross_sales", "name: gross_sales_list_price")
    .split("  - name: cancelled_orders")[0]
    + """\
  - name: web_orders
    description: Orders placed on the web shop.
    category: sales_marketing
    owner: sales@example.com
    model: orders
    time: order_date
    count: order_id
    filter: channel = 'web'
    grains: [month]
"""
)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def make_repo(folder: Path, kpis: str) -> Path:
    """A git repository holding a copy of the project with `kpis` as its metrics, committed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(ROOT / name, folder / name)
    for name in ("macros", "models", "seeds"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("kpi"))
    shutil.copytree(ROOT / "tests" / "dbt", folder / "tests" / "dbt")
    (folder / "metrics").mkdir()
    shutil.copy(ROOT / "metrics" / "_project.yml", folder / "metrics" / "_project.yml")
    write_kpis(folder, kpis)
    (folder / ".gitignore").write_text("target/\nlogs/\nwarehouse/\n*.duckdb\n")
    git(folder, "init", "--quiet", "--initial-branch=main")
    git(folder, "add", "--all")
    git(folder, "commit", "--quiet", "-m", "base")
    return folder


def write_kpis(folder: Path, kpis: str, *, compile_models: bool = True) -> None:
    (folder / "metrics" / "kpis.yml").write_text(kpis)
    if compile_models:
        result = compiler.compile_project(Project(folder))
        assert result.ok, [str(i) for i in result.issues]
        compiler.write(result.files, folder)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Base committed; the working tree changed (and compiled, as a user would commit it)."""
    folder = make_repo(tmp_path_factory.mktemp("diff") / "project", BASE_KPIS)
    write_kpis(folder, HEAD_KPIS)
    return folder


# ------------------------------------------------------------ definitions and SQL (no dbt)


@pytest.fixture(scope="module")
def definitions(repo: Path) -> diff.DiffReport:
    return diff.diff(repo, "main", values=False)


def test_each_change_is_reported(definitions: diff.DiffReport):
    statuses = {c.name: c.status for c in definitions.kpis}
    assert statuses == {
        "revenue": "changed",
        "gross_sales_list_price": "added",
        "gross_sales": "removed",
        "web_orders": "added",
        "cancelled_orders": "removed",
    }
    assert definitions.unchanged == ["aov", "orders_placed"]  # values not compared here
    assert definitions.base.commit and definitions.head.commit is None
    assert definitions.base.compiles and definitions.head.compiles


def test_a_changed_filter_is_shown_field_by_field(definitions: diff.DiffReport):
    revenue = definitions.kpi("revenue")
    assert revenue is not None
    assert [(f.field, f.base, f.head) for f in revenue.definition] == [
        ("filter", "NOT is_cancelled", "NOT is_cancelled AND channel <> 'marketplace'")
    ]


def test_a_rename_is_an_addition_and_a_removal_with_the_same_definition(
    definitions: diff.DiffReport,
):
    renamed = definitions.kpi("gross_sales_list_price")
    assert renamed is not None and renamed.renamed_from == "gross_sales"
    assert [f.field for f in renamed.definition] == ["label"]  # the default label follows the name
    new = definitions.kpi("web_orders")
    assert new is not None and new.renamed_from is None


def test_the_generated_sql_diff_names_the_files(definitions: diff.DiffReport):
    changes = {s.path: s for s in definitions.sql}
    values = "models/kpi/values/kpi_values__orders.sql"
    assert changes[values].status == "changed"
    assert "marketplace" in changes["models/kpi/measures/kpi_measures__orders.sql"].diff
    assert all(s.added_lines + s.removed_lines > 0 for s in definitions.sql)


def test_only_the_metric_definitions_count_not_the_file_text(tmp_path: Path):
    spaced = BASE_KPIS.replace("filter: not is_cancelled", "filter: NOT   is_cancelled")
    folder = make_repo(tmp_path / "project", BASE_KPIS)
    write_kpis(folder, spaced + "# reformatted\n")
    report = diff.diff(folder, "HEAD", values=False)
    assert report.kpis == []
    assert report.sql == []


def test_a_base_that_does_not_compile_is_reported(tmp_path: Path):
    broken = BASE_KPIS.replace("sum: net_revenue", "sum: net_revenu")
    folder = make_repo(tmp_path / "project", BASE_KPIS)
    write_kpis(folder, broken, compile_models=False)
    git(folder, "commit", "--quiet", "-am", "broken")
    write_kpis(folder, BASE_KPIS)
    report = diff.diff(folder, "HEAD", values=False)
    assert not report.base.compiles
    assert any("unknown column 'net_revenu'" in issue for issue in report.base.issues)
    assert report.head.compiles
    markdown = diff.render_markdown(report)
    assert "does not compile" in markdown


def test_an_unknown_ref_is_a_diff_error(repo: Path):
    with pytest.raises(diff.DiffError, match="unknown git ref 'nope'"):
        diff.diff(repo, "nope", values=False)


def test_an_uncompiled_working_tree_is_compiled_for_the_diff(tmp_path: Path):
    folder = make_repo(tmp_path / "project", BASE_KPIS)
    write_kpis(folder, HEAD_KPIS, compile_models=False)  # the YAML only: models are stale
    report = diff.diff(folder, "HEAD", values=False)
    assert {c.name for c in report.kpis} >= {"revenue", "web_orders", "cancelled_orders"}
    assert any("stale" in note for note in report.head.notes)
    assert any(s.path == "models/kpi/measures/kpi_measures__orders.sql" for s in report.sql)
    assert not (folder / "target").exists()


# ------------------------------------------------------------ values (dbt)


@pytest.fixture(scope="module")
def built(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> diff.DiffReport:
    """The diff with values; its warehouses kept in a workdir for independent checks."""
    work = tmp_path_factory.mktemp("diff-work")
    return diff.diff(repo, "main", workdir=work, top=5)


def base_of(report: diff.DiffReport) -> Path:
    assert report.base.warehouse
    return Path(report.base.warehouse)


def head_of(report: diff.DiffReport) -> Path:
    assert report.head.warehouse
    return Path(report.head.warehouse)


def _rows(warehouse: Path, sql: str, params: list[object]) -> list[tuple[object, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params).fetchall()


@pytest.mark.dbt
def test_values_of_the_changed_filter_move_by_the_marketplace_revenue(
    built: diff.DiffReport,
):
    report = built
    assert report.values_compared, diff.problems(report)
    revenue = report.kpi("revenue")
    assert revenue is not None and revenue.values is not None
    # independently: the month totals drop by the marketplace's net revenue of the month
    marketplace = dict(
        _rows(
            head_of(report),
            "select date_trunc('month', order_date)::date::varchar, sum(net_revenue)::double"
            " from analytics.orders where not is_cancelled and channel = 'marketplace'"
            " group by 1 having sum(net_revenue) <> 0",
            [],
        )
    )
    assert marketplace
    months = {
        m.period_start: m
        for m in _all_moves(report, "revenue")
        if m.grain == "month" and m.dimension == "total"
    }
    assert set(months) == set(marketplace)
    for month, move in months.items():
        assert move.change == pytest.approx(-marketplace[month], rel=1e-9)
        assert move.relative == pytest.approx(move.change / abs(move.base), rel=1e-9)
    # the other channels' slices do not move; the marketplace slice drops to 0
    sliced = [m for m in _all_moves(report, "revenue") if m.dimension == "channel"]
    assert {m.dimension_value for m in sliced} == {"marketplace"}
    assert all(m.head == 0 for m in sliced)
    # the report: the largest moves first, the top 5, counted by grain
    moves = revenue.values.moves
    assert len(moves) == 5
    changes = [abs(m.change or 0) for m in moves]
    assert changes == sorted(changes, reverse=True)
    assert moves[0].grain == "year"
    assert revenue.values.moved == sum(revenue.values.moved_by_grain.values())
    assert revenue.values.moved_by_grain["month"] == 2 * len(marketplace)  # total + slice
    assert revenue.values.only_base == revenue.values.only_head == 0


def _all_moves(report: diff.DiffReport, kpi: str) -> list[diff.Move]:
    """Every moved row of a KPI, recomputed with the top set beyond any limit."""
    diffs, _, _ = diff.compare_values(base_of(report), head_of(report), {kpi: kpi}, top=1_000_000)
    return diffs[kpi].moves


@pytest.mark.dbt
def test_a_kpi_computed_from_the_changed_one_moves_without_a_definition_change(
    built: diff.DiffReport,
):
    report = built
    aov = report.kpi("aov")
    assert aov is not None and aov.status == "changed"
    assert aov.definition == [] and aov.values is not None and aov.values.moved > 0
    assert "orders_placed" in report.unchanged


@pytest.mark.dbt
def test_renamed_added_and_removed_kpis_with_their_rows(built: diff.DiffReport):
    report = built
    renamed = report.kpi("gross_sales_list_price")
    assert renamed is not None and renamed.renamed_from == "gross_sales"
    assert renamed.values is not None and not renamed.values.changed
    assert renamed.values.compared == _count(base_of(report), "gross_sales")
    added = report.kpi("web_orders")
    assert added is not None and added.rows == _count(head_of(report), "web_orders") > 0
    removed = report.kpi("cancelled_orders")
    assert removed is not None and removed.rows == _count(base_of(report), "cancelled_orders") > 0
    assert _count(head_of(report), "cancelled_orders") == 0


def _count(warehouse: Path, kpi: str) -> int:
    rows = _rows(warehouse, "select count(*) from analytics.kpi_values where kpi = ?", [kpi])
    return int(rows[0][0])  # type: ignore[call-overload]


@pytest.mark.dbt
def test_markdown_and_terminal_output(built: diff.DiffReport):
    from rich.console import Console

    report = built
    markdown = diff.render_markdown(report)
    lines = markdown.splitlines()
    assert lines[0].startswith("## KPI diff: `main (")
    assert "**KPIs: 2 added, 2 removed, 2 changed, 1 unchanged; " in markdown
    assert (
        "| 🟢 added | `gross_sales_list_price` | renamed from gross_sales; values identical |"
        in lines
    )
    assert any(line.startswith("| 🔴 removed | `cancelled_orders` | removed, ") for line in lines)
    assert any(line.startswith("| 🟡 changed | `revenue` | definition: filter; ") for line in lines)
    assert "### `revenue`" in lines
    assert "| grain | period | slice | base | head | change | change % |" in lines
    assert "<details><summary>Generated SQL: " in markdown
    console = Console(record=True, width=160)
    diff.render_terminal(report, console)
    text = console.export_text()
    assert "revenue" in text and "renamed from gross_sales" in text
    data = diff.render_json(report)
    assert '"renamed_from": "gross_sales"' in data


# ------------------------------------------------------------ CI workflow and pre-commit


def _kpi_command_options() -> dict[str, set[str]]:
    """Every `kpi` subcommand with its option names, as the CLI declares them."""
    import typer.main

    from pipeline.cli import app

    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {})
    return {
        name: {opt for param in command.params for opt in getattr(param, "opts", [])}
        for name, command in commands.items()
    }


def _check_command(line: str, options: dict[str, set[str]]) -> None:
    """A shell line running one of the project's tools: the tool, subcommand and options exist."""
    import shlex

    words = shlex.split(line.split(">")[0].split("||")[0])
    tool = words[0]
    if tool.startswith(".venv/bin/"):
        assert Path(sys_bin(tool)).exists(), tool
    elif tool == ".ci/run":
        assert (ROOT / tool).is_file() and (ROOT / tool).stat().st_mode & 0o111
    elif tool == "make":
        makefile = (ROOT / "Makefile").read_text()
        for target in words[1:]:
            rule = target.replace(".venv/bin/", "$(BIN)/")
            assert (
                f"\n{rule}:" in makefile
                or f"\n{target}:" in makefile
                or f" {target}" in (makefile.split("\n.PHONY:")[1].split("\n")[0])
            ), target
    if tool.endswith("/kpi"):
        command = words[1]
        assert command in options, f"no `kpi {command}`"
        for word in words[2:]:
            if word.startswith("--"):
                assert word in options[command], f"`kpi {command}` has no {word}"


def sys_bin(tool: str) -> str:
    """A .venv/bin tool: the project's .venv, or the running interpreter's bin folder."""
    import sys

    local = ROOT / tool
    return str(local if local.exists() else Path(sys.executable).with_name(Path(tool).name))


def test_the_ci_workflow_runs_the_projects_checks_and_the_diff_on_pull_requests():
    import yaml

    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert "pull_request" in triggers
    options = _kpi_command_options()
    runs: list[str] = []
    for job in workflow["jobs"].values():
        assert job["runs-on"] and job["steps"]
        uses = {step.get("uses", "").split("@")[0]: step for step in job["steps"]}
        assert uses["actions/checkout"]["with"]["fetch-depth"] == 0
        assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"
        for step in job["steps"]:
            runs += [line.strip() for line in step.get("run", "").splitlines() if line.strip()]
    assert ".ci/run" in runs
    pr_job = next(j for j in workflow["jobs"].values() if "pull_request" in j.get("if", ""))
    pr_runs = " ".join(s.get("run", "") for s in pr_job["steps"])
    for command in ("kpi validate", "kpi compile --check", "kpi diff --base", "gh pr comment"):
        assert command in pr_runs, command
    assert "--format markdown" in pr_runs
    for line in runs:
        if line.startswith((".venv/", ".ci/", "make ")):
            _check_command(line.replace('"origin/${{ github.base_ref }}"', "origin/main"), options)


def test_the_pre_commit_hooks_run_existing_commands():
    import yaml

    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"kpi-validate", "kpi-compile-check", "ruff", "tests", "kpi-diff"} <= set(hooks)
    options = _kpi_command_options()
    for hook in hooks.values():
        assert hook["language"] == "system"
        _check_command(hook["entry"], options)
    assert hooks["kpi-validate"]["files"] == "^(metrics|models)/"
