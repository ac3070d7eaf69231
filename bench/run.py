"""Benchmark of the KPI layer at scale (run on demand, not in CI).

    .venv/bin/python bench/run.py [--orders 1000000] [--cache /tmp] [--lookback 3]

In one run on one machine it measures, each step in its own process (wall time and peak
resident memory from wait4):

1. the KPI layer's build (`dbt run` of the measures and values models of orders,
   order_items and sessions, the generated SQL over the marts, read from Parquet sources)
   against the floor: the minimal hand-written DuckDB SQL for the same KPI values (one
   day-grain scan per fact table rolled up to coarser grains, a distinct count in one
   grouping-sets pass; bench/hand_queries.py), and checks that both give the same values;
   the whole KPI layer (`dbt run -s path:models/kpi`) is timed too;
2. the daily run (`dbt run` of every model: staging, marts, KPI layer) over one more day of
   data plus late changes in the lookback window, with the project compiled incremental,
   against a full rebuild (`--full-refresh`) of every model; the upstream and KPI layer
   shares come from the models' own times, and the measure models are timed alone too;
3. bench/compile_kpis.py: `kpi validate` + `kpi compile` of 1,000 KPIs;
4. `kpi build` end to end, as a scheduled run does it: load the Parquet files into the
   warehouse, the input gate (Great Expectations over every row), dbt build of every
   model and test into a run schema, audit, publish, Parquet export (`--skip-build`
   leaves it out; `--build-only` runs it alone and prints).

The raw data are generated once as Parquet under `<cache>/kpi-bench/` and read through
dbt-duckdb external sources (KPI_RAW_PARQUET); the project is copied there too, so the
repository's warehouse/ and target/ are never touched. It prints a table and writes it,
with a description of the machine, to docs/benchmarks.md (`--output`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDERS_PER_SCALE = 3000  # scale 1 of the generator is about 3,000 orders
BIG_FACTS = ("orders", "order_items", "sessions")
NOTES = "## Notes"
LAYER = [f"kpi_measures__{f}" for f in BIG_FACTS] + [f"kpi_values__{f}" for f in BIG_FACTS]


@dataclass
class Step:
    label: str
    seconds: float
    peak_mb: float
    detail: str = ""
    sql: float = 0.0  # dbt steps: the models' own time (run_results.json)
    nodes: dict[str, float] = field(default_factory=dict)  # dbt steps: seconds by model


def sql_seconds(step: Step) -> float:
    return step.sql or float("nan")


def measured(
    label: str, argv: list[str], env: dict[str, str] | None = None, output: list[str] | None = None
) -> Step:
    """Run a command in a new process; its wall time and peak RSS (its children included).
    With `output`, the command's (short) standard output is captured into it."""
    started = time.perf_counter()
    pipe = subprocess.PIPE if output is not None else None
    process = subprocess.Popen(
        argv, env={**os.environ, **(env or {})}, cwd=ROOT, stdout=pipe, text=True
    )
    _, status, usage = os.wait4(process.pid, 0)
    if output is not None and process.stdout is not None:
        output.extend(process.stdout.read().splitlines())
        print("\n".join(output))
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode:
        sys.exit(f"{label}: {' '.join(argv)} failed ({process.returncode})")
    step = Step(label, seconds, usage.ru_maxrss / 1024)
    print(f"  {label}: {seconds:.1f} s, peak {step.peak_mb:.0f} MB", flush=True)
    return step


def python(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


# --- steps run in their own process ------------------------------------------------------


def step_generate(out: str, scale: str, seed: str) -> None:
    from pipeline.datagen.write import write_parquet

    partial = Path(out + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    counts = write_parquet(partial, float(scale), int(seed))
    (partial / "counts.json").write_text(json.dumps(counts, indent=1))
    partial.rename(out)


def step_dbt(project: str, warehouse: str, parquet: str, target: str, *args: str) -> None:
    from pipeline.project import Project

    env = {
        "KPI_WAREHOUSE": warehouse,
        "KPI_RAW_PARQUET": parquet,
        "KPI_TARGET": "duckdb",
        "DBT_TARGET_PATH": target,
        "DBT_LOG_PATH": str(Path(target) / "logs"),
    }
    Project(Path(project), env).dbt(list(args))


def step_hand(warehouse: str, out: str) -> None:
    """The hand-written queries, each result fetched into memory and saved for checking."""
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT / "bench"))
    from hand_queries import QUERIES

    from pipeline.publish import connect

    con = connect(Path(warehouse), read_only=True)  # under the same memory limit as dbt
    for name, query in QUERIES.items():
        pq.write_table(con.execute(query).to_arrow_table(), Path(out) / f"{name}.parquet")
    con.close()


def step_before(final: str, before: str) -> None:
    """The data one day earlier: without the last day of orders (and their items,
    shipments, returns) and sessions, and with late changes on the two days before it
    (a third of the orders and sessions arrive late; some orders change status)."""
    import duckdb

    final_dir, before_dir = Path(final), Path(before)
    partial = Path(before + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    con = duckdb.connect()
    tables = sorted(final_dir.rglob("*.parquet"))
    for table in tables:
        con.execute(f"create view {table.stem} as select * from '{table}'")
    last = con.execute("select max(ordered_at)::date from orders").fetchone()[0]  # type: ignore[index]
    window = f"date '{last}' - 2"
    con.execute(
        f"""create table dropped as select order_id from orders where ordered_at::date = '{last}'
        or (ordered_at::date >= {window} and order_id % 3 = 0)"""
    )
    queries = {
        "orders": f"""select * replace (case when ordered_at::date >= {window} and order_id % 5 = 1
            then 'cancelled' else status end as status) from orders
            where order_id not in (select order_id from dropped)""",
        "order_items": "select * from order_items where order_id not in (select order_id from dropped)",
        "shipments": "select * from shipments where order_id not in (select order_id from dropped)",
        "returns": """select * from returns where order_item_id not in (select order_item_id
            from order_items where order_id in (select order_id from dropped))""",
        "sessions": f"""select * from sessions where not (started_at::date >= '{last}'
            or (started_at::date >= {window} and session_id % 3 = 0))""",
    }
    for table in tables:
        target = partial / table.relative_to(final_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        query = queries.get(table.stem, f"select * from {table.stem}")
        con.execute(f"copy ({query}) to '{target}' (format parquet, compression zstd)")
    con.close()
    partial.rename(before_dir)


# --- the benchmark -----------------------------------------------------------------------


def node_seconds(target: Path) -> dict[str, float]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].rsplit(".", 1)[-1]: r["execution_time"] for r in results}


def kpi_build(work: Path, data: Path) -> Step:
    """`kpi build --raw-parquet` in a copy of the project with a warehouse of its own;
    the notes give the stages' times from the build report."""
    import duckdb

    from tests.support.projects import copy_project

    project = copy_project(work / "build")
    with duckdb.connect() as con:  # the data's last day: freshness is judged against it
        row = con.execute(
            f"SELECT max(ordered_at)::DATE FROM read_parquet('{data / 'shop' / 'orders.parquet'}')"
        ).fetchone()
    as_of = str(row[0]) if row else ""
    step = measured(
        "kpi build end to end (load, gate, dbt build, audit, publish, export)",
        [str(Path(sys.executable).parent / "kpi"), "build", "--as-of", as_of,
         "--raw-parquet", str(data), "--project-dir", str(project)],
        env={"KPI_WAREHOUSE": str(work / "build" / "warehouse.duckdb")},
    )
    report = json.loads((project / "target" / "kpi" / "last_run.json").read_text())
    stages = report["timings_seconds"]
    step.detail = ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()) + (
        f"; {step.seconds - sum(stages.values()):.0f} s compile, start-up and export"
    )
    return step


def compare(warehouse: Path, hand: Path) -> str:
    """The generated KPI values equal the hand-written ones (rows the hand-written queries
    do not have are empty periods or slices of the dense spine: 0 or NULL)."""
    import duckdb
    import pandas as pd

    sys.path.insert(0, str(ROOT / "bench"))
    from hand_queries import AVERAGES, KPIS

    con = duckdb.connect(str(warehouse), read_only=True)
    keys = ["grain", "period_start", "dimension", "dimension_value"]
    checked = 0
    for kpi, (fact, dimensions) in KPIS.items():
        frame = pd.read_parquet(hand / f"{fact}.parquet")
        frame = frame[frame["dimension"].isin(["total", *dimensions])]
        if kpi in AVERAGES:
            count = frame[f"{kpi}__count"].astype(float)
            value = frame[f"{kpi}__sum"].astype(float) / count.replace(0, float("nan"))
        else:  # a sum or count over no rows is 0 in the KPI layer
            value = frame[kpi].astype(float).fillna(0.0)
        expected = frame[keys].assign(expected=value.to_numpy())
        ours = con.execute(
            f"select {', '.join(keys)}, value from analytics.kpi_values__{fact} where kpi = ?",
            [kpi],
        ).df()
        for side in (ours, expected):
            side["period_start"] = pd.to_datetime(side["period_start"]).dt.strftime("%Y-%m-%d")
        merged = ours.merge(expected, on=keys, how="outer", indicator=True)
        missing = merged[merged["_merge"] == "right_only"]
        if len(missing):
            raise AssertionError(
                f"{kpi}: {len(missing)} hand-written rows missing, e.g. {missing.head(3)}"
            )
        extra = merged[merged["_merge"] == "left_only"]
        if (extra["value"].fillna(0) != 0).any():
            raise AssertionError(
                f"{kpi}: rows only in the KPI layer are not empty: {extra.head(3)}"
            )
        both = merged[merged["_merge"] == "both"]
        a, b = both["value"].astype(float), both["expected"].astype(float)
        close = ((a - b).abs() <= 1e-6 * b.abs().clip(lower=1)) | (a.isna() & b.isna())
        if not close.all():
            raise AssertionError(f"{kpi}: values differ: {both[~close].head(3)}")
        checked += len(both)
    con.close()
    return f"{checked:,} values of {len(KPIS)} KPIs equal"


def machine() -> list[str]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory = next(
        (
            int(line.split()[1]) / 1024**2
            for line in read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal")
        ),
        0.0,
    )
    from importlib.metadata import version

    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores (nproc); memory {memory:.1f} GiB",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()}, duckdb {version('duckdb')}, dbt-core {version('dbt-core')}, "
        f"dbt-duckdb {version('dbt-duckdb')}; dbt threads {os.environ.get('KPI_DBT_THREADS', '1')}, "
        f"DuckDB memory limit {os.environ.get('KPI_DUCKDB_MEMORY_LIMIT', '2GB')}",
    ]


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders in the data set")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp"), help="folder for data and warehouses"
    )
    parser.add_argument("--lookback", type=int, default=3, help="incremental lookback in days")
    parser.add_argument("--kpis", type=int, default=1000, help="KPIs for the compile benchmark")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument(
        "--layer-only",
        action="store_true",
        help="only part 1 (KPI layer against the floor); prints, writes nothing",
    )
    parser.add_argument("--skip-build", action="store_true", help="leave out part 4 (kpi build)")
    parser.add_argument(
        "--build-only", action="store_true", help="only part 4 (kpi build); prints, writes nothing"
    )
    options = parser.parse_args()

    started, load_before = datetime.now(UTC), load()
    scale = options.orders / ORDERS_PER_SCALE
    base = options.cache.resolve() / "kpi-bench"
    final = base / f"parquet-orders{options.orders}-seed{options.seed}"
    before = base / f"parquet-orders{options.orders}-seed{options.seed}-before"
    work = base / f"work-orders{options.orders}"
    base.mkdir(parents=True, exist_ok=True)
    steps: list[Step] = []

    print(f"data: {final}", flush=True)
    if not final.is_dir():
        steps.append(
            measured(
                "generate Parquet (once, cached)",
                python("_generate", str(final), str(scale), str(options.seed)),
            )
        )
    counts = json.loads((final / "counts.json").read_text())
    if not before.is_dir() and not (options.layer_only or options.build_only):
        measured(
            "data of the day before (once, cached)", python("_before", str(final), str(before))
        )

    if options.build_only:
        shutil.rmtree(work / "build", ignore_errors=True)
        build = kpi_build(work, final)
        print(f"{build.label}: {build.seconds:.0f} s, peak {build.peak_mb:.0f} MB; {build.detail}")
        return

    from tests.support.projects import copy_project

    # 1. the KPI layer against the floor, over the same marts
    shutil.rmtree(work, ignore_errors=True)
    project = copy_project(work / "full")
    warehouse = work / "full" / "bench.duckdb"

    def dbt(
        label: str,
        target: str,
        data: Path,
        *args: str,
        project: Path = project,
        warehouse: Path = warehouse,
    ) -> Step:
        # one target folder per project: later runs reuse dbt's partial parsing, as a
        # user's repeated runs do
        folder = project.parent / "target"
        argv = python("_dbt", str(project), str(warehouse), str(data), str(folder), *args)
        step = measured(label, argv)
        seconds = node_seconds(folder)
        step.sql = sum(seconds.values())
        step.nodes = seconds
        measures = [v for k, v in seconds.items() if k.startswith("kpi_measures__")]
        slowest = sorted(seconds.items(), key=lambda kv: -kv[1])[:3]
        step.detail = f"SQL {sum(seconds.values()):.1f} s in {len(seconds)} models" + (
            f" (measures {sum(measures):.1f} s)" if measures else ""
        )
        step.detail += "; slowest: " + ", ".join(f"{k} {v:.1f} s" for k, v in slowest)
        return step

    steps.append(
        dbt(
            "upstream: staging + marts (dbt run)",
            "t_upstream",
            final,
            "run",
            "--exclude",
            "path:models/kpi",
        )
    )
    kpi_layer = dbt(
        "KPI layer, 3 fact tables: measures + values (dbt run)",
        "t_layer",
        final,
        "run",
        "--select",
        *LAYER,
    )
    steps.append(kpi_layer)
    hand_dir = work / "hand"
    hand_dir.mkdir()
    hand = measured(
        "floor: minimal hand-written SQL, same KPIs", python("_hand", str(warehouse), str(hand_dir))
    )
    hand.detail = compare(warehouse, hand_dir)
    steps.append(hand)
    if options.layer_only:
        print(
            f"KPI layer / floor: {kpi_layer.seconds / hand.seconds:.2f}; {hand.detail}"
        )
        return
    steps.append(
        dbt(
            "whole KPI layer, all models (dbt run)",
            "t_kpi",
            final,
            "run",
            "--select",
            "path:models/kpi",
        )
    )

    # 2. incremental: build the day before, then the daily run with one more day, against a
    # full rebuild; every model, as a scheduled `dbt run` does
    project_inc = copy_project(work / "incremental", options.lookback)
    warehouse_inc = work / "incremental" / "bench.duckdb"

    def dbt_inc(label: str, target: str, data: Path, *args: str) -> Step:
        return dbt(label, target, data, *args, project=project_inc, warehouse=warehouse_inc)

    dbt_inc("setup: build of the day before", "t_before", before, "run")
    # the sources' Parquet folder (an env var) changed: parse once, as yesterday's run did
    dbt_inc("setup: parse with the new day's folder", "t_parse", final, "parse")
    incremental = dbt_inc(
        f"daily run, every model (+1 day, lookback {options.lookback})",
        "t_incremental",
        final,
        "run",
    )
    full = dbt_inc(
        "full rebuild, every model (--full-refresh)", "t_full", final, "run", "--full-refresh"
    )
    steps += [incremental, full]
    # the incremental models alone (the layer above also rebuilds what reads them)
    measures_inc = dbt_inc(
        f"measure models only: incremental run (lookback {options.lookback})",
        "t_measures_incremental",
        final,
        "run",
        "--select",
        "path:models/kpi/measures",
    )
    measures_full = dbt_inc(
        "measure models only: full rebuild (--full-refresh)",
        "t_measures_full",
        final,
        "run",
        "--select",
        "path:models/kpi/measures",
        "--full-refresh",
    )
    steps += [measures_inc, measures_full]

    # 3. compile
    printed: list[str] = []
    compile_ = measured(
        f"kpi validate + compile, {options.kpis} KPIs (bench/compile_kpis.py)",
        [sys.executable, str(ROOT / "bench" / "compile_kpis.py"), "--kpis", str(options.kpis)],
        output=printed,
    )
    compile_.detail = "; ".join(" ".join(line.split()) for line in printed)
    steps.append(compile_)

    # 4. the scheduled job, end to end
    if not options.skip_build:
        steps.append(kpi_build(work, final))

    ratio = kpi_layer.seconds / hand.seconds
    share = incremental.seconds / full.seconds

    def layer_share(kpi: bool) -> str:
        def part(step: Step) -> float:
            return sum(v for k, v in step.nodes.items() if k.startswith("kpi_") == kpi)

        return f"{part(incremental):.1f} s / {part(full):.1f} s = **{part(incremental) / part(full):.0%}**"

    lines = [
        "| step | wall (s) | peak memory (MB) | notes |",
        "|---|---:|---:|---|",
        *(f"| {s.label} | {s.seconds:.1f} | {s.peak_mb:.0f} | {s.detail} |" for s in steps),
    ]
    summary = [
        f"- KPI layer / floor (minimal hand-written SQL): **{ratio:.2f}** (target ≤ 1.3)",
        f"- daily run / full rebuild, every model: **{share:.0%}** wall (target ≤ 10%); "
        f"the models' own SQL time: upstream (staging, marts) {layer_share(False)}, "
        f"KPI layer {layer_share(True)}",
        f"- measure models alone, incremental / full: **{measures_inc.seconds / measures_full.seconds:.0%}** wall, "
        f"**{sql_seconds(measures_inc) / sql_seconds(measures_full):.0%}** of their SQL time",
        "- `kpi validate` + `kpi compile` of 1,000 KPIs: the notes of its row give "
        "bench/compile_kpis.py's own timing (best of 3 new processes each; target: together < 2 s); "
        "the row's wall time and memory are the whole script's (3 runs of each command plus setup)",
    ]
    rows = ", ".join(f"{k} {v:,}" for k, v in counts.items() if v >= 100_000)
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            "Measured by `bench/run.py` (on demand, not in CI): "
            f"`.venv/bin/python bench/run.py --orders {options.orders} --lookback {options.lookback}`.",
            "",
            f"Data: {options.orders:,} orders (generator scale {scale:.1f}, seed {options.seed}): {rows} rows, "
            "read as Parquet through dbt-duckdb external sources (`KPI_RAW_PARQUET`).",
            "",
            "## Machine",
            "",
            *machine(),
            f"- run started {started:%Y-%m-%d %H:%M} UTC; load average (1/5/15 min) before {load_before}, after {load()}",
            "",
            "## Results",
            "",
            *lines,
            "",
            *summary,
            "",
            "Each step runs in its own process; wall time includes dbt's start-up and parsing "
            "(the notes give the models' own SQL time from run_results.json); peak memory is the "
            "process's maximum resident set (wait4), children included.",
            "",
        ]
    )
    print()
    print("\n".join([*lines, "", *summary]))
    if not options.no_write:
        # a hand-written "## Notes" section (reading the figures) is kept across runs
        old = options.output.read_text() if options.output.is_file() else ""
        notes = old[old.index(NOTES) :] if NOTES in old else ""
        options.output.write_text(text + ("\n" + notes if notes else ""))
        print(f"\nwrote {options.output}")


if __name__ == "__main__":
    commands: dict[str, Callable[..., None]] = {
        "_generate": step_generate,
        "_dbt": step_dbt,
        "_hand": step_hand,
        "_before": step_before,
    }
    if len(sys.argv) > 1 and sys.argv[1] in commands:
        sys.path.insert(0, str(ROOT))
        commands[sys.argv[1]](*sys.argv[2:])
    else:
        sys.path.insert(0, str(ROOT))
        main()
