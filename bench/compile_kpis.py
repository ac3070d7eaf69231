"""Benchmark: `kpi validate` + `kpi compile` on N generated KPI definitions (default 1,000).

Run on demand, not in CI:  .venv/bin/python bench/compile_kpis.py [--kpis 1000]
It copies the project's model YAML into a temporary project, writes N KPIs over the
demo marts (simple KPIs of every aggregation, ratios and derived KPIs, with dimensions),
and times the two commands as a user runs them (new processes), best of 5: wall time and
the CPU time of the process (user + system; on a loaded machine the wall time is not it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACTS = [
    (
        "orders",
        "order_date",
        ["net_revenue", "cogs", "discount_amount", "units", "fulfilment_hours"],
        ["channel", "device", "customers.segment"],
    ),
    ("sessions", "session_date", ["pageviews", "duration_seconds"], ["source", "medium", "device"]),
    (
        "tickets",
        "created_date",
        ["first_response_minutes", "resolution_hours", "csat_score"],
        ["channel", "category"],
    ),
    (
        "order_items",
        "order_date",
        ["net_amount", "quantity", "refund_amount"],
        ["category", "customers.segment"],
    ),
]
AGGS = ["sum", "count", "count_distinct", "average", "min", "max", "median"]


def metric_files(n: int) -> dict[str, str]:
    files: dict[str, list[str]] = {}
    simple: list[str] = []
    for i in range(n):
        model, time_col, columns, dims = FACTS[i % len(FACTS)]
        name = f"kpi_{i:04d}"
        lines = [
            f"  - name: {name}",
            f"    category: {['financial', 'customer', 'sales_marketing', 'operational', 'people'][i % 5]}",
            f"    description: Generated KPI number {i}.",
            "    owner: bench",
        ]
        kind = i % 10
        if kind < 7 or len(simple) < 2:
            agg = AGGS[i % len(AGGS)] if kind != 0 else "sum"
            lines += [
                f"    model: {model}",
                f"    time: {time_col}",
                f"    {agg}: {columns[i % len(columns)]}",
                f"    dimensions: [{', '.join(dims[: 1 + i % len(dims)])}]",
            ]
            if i % 3 == 0:
                lines.append(f"    filter: {columns[0]} is not null")
            if agg in ("sum", "count", "count_distinct"):
                simple.append(name)
        elif kind < 9:
            lines.append(f"    ratio: {{numerator: {simple[-1]}, denominator: {simple[-2]}}}")
        else:
            lines.append(f"    derived: ({simple[-1]} - {simple[-2]}) / {simple[-1]}")
        files.setdefault(f"metrics/bench_{i // 100:02d}.yml", ["kpis:"]).extend(lines)
    return {path: "\n".join(lines) + "\n" for path, lines in files.items()}


# as in a user's shell: Python keeps the bytecode of the modules it compiles
USER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """Best of 5 runs: (wall seconds, CPU seconds of the process)."""
    best = (float("inf"), float("inf"))
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(args, cwd=cwd, env=USER_ENV, check=True, capture_output=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        best = min(best, (wall, cpu))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kpis", type=int, default=1000)
    n = parser.parse_args().kpis
    kpi = str(Path(sys.executable).with_name("kpi"))
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        shutil.copy(ROOT / "dbt_project.yml", project)
        shutil.copytree(
            ROOT / "models", project / "models", ignore=shutil.ignore_patterns("kpi", "*.sql")
        )
        (project / "metrics").mkdir()
        shutil.copy(ROOT / "metrics" / "_project.yml", project / "metrics")
        for path, text in metric_files(n).items():
            (project / path).parent.mkdir(parents=True, exist_ok=True)
            (project / path).write_text(text)
        check = subprocess.run([kpi, "validate"], cwd=project, capture_output=True, text=True)
        if check.returncode:
            sys.exit(f"generated KPIs do not validate:\n{check.stdout}{check.stderr}")
        validate = timed([kpi, "validate"], project)
        compile_ = timed([kpi, "compile"], project)
        generated = sum(
            len(p.read_text()) for p in (project / "models" / "kpi").rglob("*") if p.is_file()
        )
    total = (validate[0] + compile_[0], validate[1] + compile_[1])
    for label, (wall, cpu) in (
        ("kpi validate", validate),
        ("kpi compile", compile_),
        ("together", total),
    ):
        print(f"{label:13s} {wall:5.2f} s wall  {cpu:5.2f} s CPU")
    print(f"{n} KPIs (target: together < 1 s); {generated / 1e6:.1f} MB of generated models")


if __name__ == "__main__":
    main()
