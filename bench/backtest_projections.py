"""Backtest of the projection to period end (docs/projections.md), run on demand.

    .venv/bin/python bench/backtest_projections.py [--warehouse PATH]

For every complete month of the demo's published `kpi_values` and every KPI that adds up
over days (and ratios of those) tracked by day, it projects the month from its first 7, 14
and 21 days with the method of `kpi_values` (its Python oracle, tests/support/
projection_oracle.py, over the KPI's day values) and with the naive run rate (to date *
days in the month / days elapsed), and prints the mean absolute percentage error against
the month's actual value, per KPI, over the months with a year of history before them
(earlier months use the run rate by construction). Without --warehouse it builds the demo
(`kpi build --as-of 2026-11-15`) into a temporary warehouse first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import projection_oracle as po  # noqa: E402

DEMO_AS_OF = "2026-11-15"
ELAPSED = (7, 14, 21)


def build_demo(folder: Path) -> Path:
    warehouse = folder / "demo.duckdb"
    env = {
        **os.environ,
        "KPI_WAREHOUSE": str(warehouse),
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
    }
    kpi = Path(sys.executable).with_name("kpi")
    subprocess.run([str(kpi), "build", "--as-of", DEMO_AS_OF], cwd=ROOT, env=env, check=True)
    return warehouse


def read(warehouse: Path) -> tuple[dict, dict, dict]:
    """(day values per KPI: value or (numerator, denominator) dicts; complete months per KPI:
    {start: (end, value)}; additivity per KPI)."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        additivity = dict(
            con.execute(
                "select kpi, additivity from analytics.kpi_catalog "
                "where additivity in ('additive', 'ratio')"
            ).fetchall()
        )
        rows = con.execute(
            "select kpi, grain, period_start, period_end, value, numerator, denominator, "
            "is_partial_period from analytics.kpi_values "
            "where dimension = 'total' and grain in ('day', 'month')"
        ).fetchall()
    days: dict = defaultdict(lambda: ({}, {}))
    months: dict = defaultdict(dict)
    for kpi, grain, start, end, value, numerator, denominator, partial in rows:
        if kpi not in additivity:
            continue
        if grain == "day":
            top, bottom = days[kpi]
            ratio = additivity[kpi] == "ratio"
            top[start] = numerator if ratio else value
            bottom[start] = denominator if ratio else None
        elif not partial:
            months[kpi][start] = (end, value)
    return dict(days), dict(months), additivity


def backtest(days: dict, months: dict, additivity: dict) -> list[tuple]:
    """Per KPI: (kpi, months, MAPE of the method and of the run rate per elapsed day count)."""
    out = []
    for kpi in sorted(set(days) & set(months)):
        top, bottom = days[kpi]
        ratio = additivity[kpi] == "ratio"
        first_day = min(top)
        errors: dict = defaultdict(list)
        for start, (end, actual) in sorted(months[kpi].items()):
            if start - dt.timedelta(weeks=min(po.REFERENCE_WEEKS)) < first_day or not actual:
                continue
            for elapsed in ELAPSED:
                last = start + dt.timedelta(days=elapsed - 1)
                seen_top = {d: v for d, v in top.items() if d <= last}
                seen_bottom = {d: v for d, v in bottom.items() if d <= last} if ratio else None
                for naive in (False, True):
                    projected = po.project(seen_top, seen_bottom, start, end, last, naive=naive)
                    if projected is not None:
                        errors[(elapsed, naive)].append(abs(projected - actual) / abs(actual))
        if errors:
            count = len(errors[(ELAPSED[0], True)])
            mape = {key: sum(v) / len(v) for key, v in errors.items()}
            out.append((kpi, count, mape))
    return out


def table(results: list[tuple]) -> str:
    header = "| KPI | months | " + " | ".join(f"{d} days: pace / run rate" for d in ELAPSED) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(ELAPSED)]
    for kpi, count, mape in results:
        cells = [
            f"{mape[(d, False)] * 100:.1f}% / {mape[(d, True)] * 100:.1f}%"
            + (" ✓" if mape[(d, False)] < mape[(d, True)] else "")
            for d in ELAPSED
        ]
        lines.append(f"| `{kpi}` | {count} | " + " | ".join(cells) + " |")
    better = sum(m[(d, False)] < m[(d, True)] for _, _, m in results for d in ELAPSED)
    lines.append(f"\nThe pace is better than the run rate in {better} of {len(results) * len(ELAPSED)} cells (✓).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, help="a built demo warehouse (default: build one)")
    args = parser.parse_args()
    if args.warehouse is not None:
        print(table(backtest(*read(args.warehouse))))
        return
    with tempfile.TemporaryDirectory(prefix="kpi-backtest-") as folder:
        print(table(backtest(*read(build_demo(Path(folder))))))


if __name__ == "__main__":
    main()
