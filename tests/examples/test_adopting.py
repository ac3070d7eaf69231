"""docs/adopting.md, walked through as written with the installed wheel in a fresh folder.

The starting point is an empty dbt project (dbt_project.yml, profiles.yml on DuckDB) with
one raw table, `raw.orders`, already in the warehouse. The steps come from the guide
itself: every fenced block after a `<!-- walkthrough -->` comment, in order; a `yaml` or
`sql` block is a file named by its first line's comment, a `sh` block one command per
line. `<!-- walkthrough: commit as origin/main -->` commits the folder and makes it the
branch `origin/main` that `kpi diff --base origin/main` compares with. The published KPI
marts are checked against the raw rows, summed in Python.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "adopting.md"
COMMIT = "commit as origin/main"
_STEP = re.compile(r"<!-- walkthrough(?:: (?P<action>[^>]*?))? -->\n(?:```(?P<lang>\w+)\n(?P<body>.*?)```)?", re.S)

pytestmark = pytest.mark.dbt


@dataclass(frozen=True)
class Step:
    kind: str  # "file", "command" or "commit"
    text: str  # the command line, or the file's text
    path: str = ""  # a file's path


def guide_steps(text: str) -> list[Step]:
    steps: list[Step] = []
    for match in _STEP.finditer(text):
        if match["action"] == COMMIT:
            steps.append(Step("commit", ""))
            continue
        assert match["action"] is None and match["lang"], match.group(0)
        body = match["body"]
        if match["lang"] == "sh":
            steps += [Step("command", line) for line in body.splitlines() if line.strip()]
            continue
        first = body.splitlines()[0]
        path = re.fullmatch(r"(?:#|--) (\S+)", first)
        assert path, f"a {match['lang']} block of the walkthrough starts with its path: {first}"
        steps.append(Step("file", body, path[1]))
    return steps


def yaml_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def raw_orders() -> list[tuple[int, datetime, float]]:
    """About 1,200 orders over the last 100 days, deterministic amounts from 5 to 245."""
    start = datetime.combine(date.today() - timedelta(days=100), datetime.min.time())
    return [
        (i, start + timedelta(minutes=117 * i), float(5 + (i * 37) % 241)) for i in range(1, 1201)
    ]


def _project(folder: Path) -> None:
    (folder / "dbt_project.yml").write_text(
        'name: shop\nversion: "1.0.0"\nconfig-version: 2\nprofile: shop\n'
    )
    (folder / "profiles.yml").write_text(
        "shop:\n  target: dev\n  outputs:\n"
        "    dev: {type: duckdb, path: shop.duckdb, schema: analytics}\n"
    )
    (folder / ".gitignore").write_text("shop.duckdb*\ntarget/\nlogs/\nscorecard.html\n")
    with duckdb.connect(str(folder / "shop.duckdb")) as con:
        con.execute("create schema raw")
        con.execute("create table raw.orders (order_id integer, ordered_at timestamp, amount double)")
        con.executemany("insert into raw.orders values (?, ?, ?)", raw_orders())


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=kpi", "-c", "user.email=kpi@example.com", *args],
        cwd=folder, check=True, capture_output=True,
    )


@pytest.fixture(scope="module")
def walked(installed_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The folder after the guide's steps; returns each command's output."""
    folder = tmp_path_factory.mktemp("adopting") / "shop"
    folder.mkdir()
    _project(folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KPI_", "DBT_"))}
    env["PATH"] = f"{installed_wheel}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"  # tables as wide as a terminal's, not cut at 80 characters
    outputs: dict[str, str] = {}
    commands = lines = 0
    published = False
    for step in guide_steps(GUIDE.read_text(encoding="utf-8")):
        if step.kind == "commit":
            _git(folder, "init", "-q", "-b", "main")
            _git(folder, "add", "-A")
            _git(folder, "commit", "-q", "-m", "KPIs")
            _git(folder, "update-ref", "refs/remotes/origin/main", "HEAD")
        elif step.kind == "file":
            path = folder / step.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(step.text, encoding="utf-8")
            lines += yaml_lines(step.text) * (path.suffix == ".yml") * (not published)
        else:
            argv = shlex.split(step.text)
            started = time.perf_counter()
            result = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            print(f"{seconds:6.1f} s  {step.text}")
            assert result.returncode == 0, f"{step.text}\n{result.stdout}\n{result.stderr}"
            outputs[step.text] = result.stdout + result.stderr
            commands += not published
            published = published or argv[:2] == ["kpi", "build"]
    print(f"to the published KPI marts: {commands} commands, {lines} lines of YAML")
    assert published
    assert commands <= 5 and lines <= 15, (commands, lines)
    outputs["folder"] = str(folder)
    return outputs


def test_the_published_marts_hold_the_raw_rows_sums(walked: dict[str, str]) -> None:
    by_month: dict[date, list[float]] = {}
    for _, ordered_at, amount in raw_orders():
        by_month.setdefault(ordered_at.date().replace(day=1), []).append(amount)
    warehouse = Path(walked["folder"]) / "shop.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select kpi, period_start, value, target from analytics.kpi_values"
            " where grain = 'month' and dimension = 'total' order by kpi, period_start"
        ).fetchall()
    published = {(kpi, start): (value, target) for kpi, start, value, target in rows}
    assert {kpi for kpi, _ in published} == {"orders_count", "revenue"}  # kpi init's and ours
    assert {start for _, start in published} >= set(by_month)
    for (kpi, start), (value, target) in published.items():
        amounts = by_month.get(start, [])
        want = sum(amounts) if kpi == "revenue" else len(amounts)
        assert value == pytest.approx(want), (kpi, start)
        assert (target is not None) == (kpi == "revenue")


def test_query_status_scorecard_and_diff_show_the_numbers(walked: dict[str, str]) -> None:
    month = max(o[1] for o in raw_orders()).strftime("%Y-%m")
    assert month in walked["kpi query revenue --grain month"]
    assert "revenue" in walked["kpi status --grain month"].lower()
    assert (Path(walked["folder"]) / "scorecard.html").stat().st_size > 0
    diff = walked["kpi diff --base origin/main --format markdown"]
    assert "| 🟡 changed | `revenue` | definition: filter;" in diff, diff
    assert "values not compared" not in diff and "build failed" not in diff, diff


def test_init_proposed_expectations_from_the_warehouse_columns_and_the_gate_read_them(
    walked: dict[str, str],
) -> None:
    import json

    import yaml

    folder = Path(walked["folder"])
    spec = yaml.safe_load((folder / "models/staging/shop/_shop__expectations.yml").read_text())
    orders = spec["tables"]["orders"]
    assert orders["columns"] == {"order_id": "integer", "ordered_at": "timestamp", "amount": "number"}
    assert {"not_in_future": ["ordered_at"]} in orders["checks"]
    report = json.loads((folder / "target/kpi/last_run.json").read_text())
    (table,) = report["gate"]["tables"]
    assert (table["table"], table["status"], table["raw_rows"]) == ("orders", "passed", len(raw_orders()))
