"""The input gate against every defect the generator can inject: the right expectation
catches it, the right policy acts, and the published marts are unchanged.

The demo is built and published once per session (`published_demo`); each test works
on a copy of that warehouse, with the defect injected into a copy of seeds/ and loaded
into `raw` (the build then runs with `do_seed=False`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline import publish
from pipeline.build import build, check
from pipeline.datagen import inject_defect_into_dir
from pipeline.project import Project
from pipeline.raw import load_raw_csvs

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-15"

pytestmark = pytest.mark.dbt

# defect -> (the expectation that catches it, its policy)
EXPECTED = {
    "duplicate_keys": ("orders.unique.order_id", "block"),
    "null_keys": ("order_items.not_null.order_item_id", "block"),
    "orphan_foreign_keys": ("order_items.references.order_id", "block"),
    "negative_amounts": ("order_items.between.unit_price", "block"),
    "out_of_range_scores": ("nps_responses.between.score", "quarantine"),
    "unknown_status": ("orders.accepted_values.status", "quarantine"),
    "future_dates": ("orders.not_in_future.ordered_at", "quarantine"),
    "timestamps_out_of_order": ("shipments.in_order.shipped_at.delivered_at", "block"),
    "missing_column": ("tickets.columns", "block"),
    "renamed_column": ("orders.columns", "block"),
    "retyped_column": ("order_items.type.unit_price", "block"),
    "empty_table": ("returns.not_empty", "block"),
    "stale_table": ("sessions.freshness.started_at", "block"),
    "volume_drop": ("sessions.volume", "block"),
    "unreadable_amounts": ("order_items.type.unit_price", "block"),
    "reformatted_timestamps": ("orders.type.ordered_at", "block"),
    "timestamps_with_offset": ("orders.type.ordered_at", "block"),
    "clicks_over_impressions": ("ad_spend.in_order.clicks.impressions", "warn"),
}
# defects of a few values that make their column text: the type check names those rows
TYPE_DEFECTS = ("unreadable_amounts", "reformatted_timestamps", "timestamps_with_offset")
ACTION = {"block": "blocked", "quarantine": "quarantined", "warn": "warned"}

_DEMO: dict[str, Path] = {}


def project_for(warehouse: Path) -> Project:
    return Project(REPO, env={
        "KPI_WAREHOUSE": str(warehouse),
        "DBT_TARGET_PATH": str(warehouse.parent / "target"),
        "DBT_LOG_PATH": str(warehouse.parent / "logs"),
    })


@pytest.fixture(scope="session")
def published_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with the demo's raw data and one published run (built once)."""
    if "path" not in _DEMO:
        if not any((REPO / "seeds").rglob("*.csv")):
            pytest.skip("no seed CSVs in seeds/ (run `kpi generate` first)")
        warehouse = tmp_path_factory.mktemp("published_demo") / "wh.duckdb"
        con = publish.connect(warehouse)
        load_raw_csvs(con, REPO / "seeds")
        con.close()
        report = build(project_for(warehouse), as_of=AS_OF, do_seed=False,
                       reports_dir=warehouse.parent / "reports")
        assert report.status == "published", report.error
        con = publish.connect(warehouse)
        con.execute("CHECKPOINT")
        con.close()
        _DEMO["path"] = warehouse
    return _DEMO["path"]


def copy_warehouse(source: Path, target: Path) -> Path:
    """Copy a DuckDB file with its write-ahead log (committed work not yet checkpointed)."""
    shutil.copy(source, target)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copy(wal, target.with_name(target.name + ".wal"))
    return target


def fingerprint(warehouse: Path) -> dict[str, str]:
    con = publish.connect(warehouse)
    try:
        return publish.published_fingerprint(con)
    finally:
        con.close()


def with_defects(published_demo: Path, folder: Path, *names: str) -> tuple[Path, list]:
    """A copy of the demo warehouse whose `raw` tables hold the defects (and only them)."""
    folder.mkdir(parents=True, exist_ok=True)
    warehouse = copy_warehouse(published_demo, folder / "wh.duckdb")
    seeds = folder / "seeds"
    shutil.copytree(REPO / "seeds", seeds)
    defects = [inject_defect_into_dir(seeds, name) for name in names]
    con = publish.connect(warehouse)
    load_raw_csvs(con, seeds, tables=sorted({d.table for d in defects}))
    con.close()
    return warehouse, defects


# Defects on different tables are injected together and built once per group, so that
# the matrix costs a few builds; each test still checks its own defect.
BLOCK_GROUPS = [
    ["duplicate_keys", "missing_column", "retyped_column", "empty_table", "stale_table"],
    ["renamed_column", "volume_drop", "negative_amounts"],
    ["null_keys", "timestamps_out_of_order", "reformatted_timestamps"],
    ["orphan_foreign_keys"],
    ["unreadable_amounts", "timestamps_with_offset"],
]
QUARANTINE = [d for d, (_, p) in EXPECTED.items() if p == "quarantine"]
_BUILDS: dict[tuple[str, ...], tuple] = {}


def built_with(published_demo: Path, tmp_path_factory, names: list[str]):
    """(warehouse, defects, report, fingerprint before) of one build with the defects."""
    key = tuple(names)
    if key not in _BUILDS:
        folder = tmp_path_factory.mktemp("defects")
        warehouse, defects = with_defects(published_demo, folder, *names)
        before = fingerprint(warehouse)
        report = build(project_for(warehouse), as_of=AS_OF, do_seed=False, data_docs=False,
                       reports_dir=folder / "reports")
        _BUILDS[key] = (warehouse, dict(zip(names, defects, strict=True)), report, before)
    return _BUILDS[key]


def test_the_demo_is_published_and_documented(published_demo):
    report = json.loads((published_demo.parent / "reports" / "last_run.json").read_text())
    assert report["status"] == "published" and report["gate"]["status"] == "passed"
    assert Path(report["data_docs"]).is_file()
    con = publish.connect(published_demo)
    counts = con.execute(
        f"SELECT sum(raw_rows), sum(passed_rows), sum(quarantined_rows) FROM {publish.COUNTS_TABLE}"
    ).fetchone()
    con.close()
    assert counts[0] == counts[1] and counts[2] == 0


@pytest.mark.parametrize(
    ("group", "defect"), [(i, d) for i, names in enumerate(BLOCK_GROUPS) for d in names]
)
def test_a_blocking_defect_stops_the_build(published_demo, tmp_path_factory, group, defect):
    expectation, policy = EXPECTED[defect]
    warehouse, defects, report, before = built_with(
        published_demo, tmp_path_factory, BLOCK_GROUPS[group]
    )
    assert report.status == "blocked" and report.exit_code == 1
    assert report.gate is not None
    outcome = report.gate.outcome(expectation)
    assert (outcome.policy, outcome.action) == (policy, "blocked"), outcome
    assert report.gate.table(defects[defect].table).status == "blocked"
    assert fingerprint(warehouse) == before  # byte for byte (md5 of every row)
    saved = json.loads(report.report_path.read_text())
    assert saved["status"] == "blocked" and saved["exit_code"] == 1
    if defect in TYPE_DEFECTS:  # the rows that break the type, not a sample of good ones
        column = defects[defect].columns[0]
        bad = _raw_rows(warehouse, defects[defect].table, column)
        assert outcome.unexpected_count == defects[defect].rows == len(bad)
        assert outcome.samples and outcome.samples[0][column] == bad[0][column]
        stored = next(e for t in saved["gate"]["tables"] for e in t["expectations"]
                      if e["id"] == expectation)
        assert stored["unexpected_count"] == 5 and stored["samples"] == outcome.samples
        assert f"{outcome.id}: " in _terminal(report) and outcome.samples[0][column] in _terminal(report)
    con = publish.connect(warehouse)
    assert publish.published_run(con) == publish.runs(con)[0].run_id  # still the demo's
    con.close()


def _raw_rows(warehouse: Path, table: str, column: str) -> list[dict]:
    """The raw rows whose text `column` does not read as its type (independent of the gate)."""
    con = publish.connect(warehouse)
    try:
        frame = con.execute(f"SELECT * FROM raw.{table}").df()
    finally:
        con.close()
    text = frame[column].astype(str)
    if column.endswith("_at"):
        ok = text.str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    else:
        ok = text.str.fullmatch(r"-?\d+(\.\d+)?")
    return frame[~ok].to_dict(orient="records")


def _terminal(report) -> str:
    import io

    from rich.console import Console

    from pipeline.report import print_report

    out = io.StringIO()
    print_report(report, Console(file=out, width=200, highlight=False))
    return out.getvalue()


@pytest.mark.parametrize("defect", QUARANTINE)
def test_a_quarantine_defect_sets_its_rows_aside(published_demo, tmp_path_factory, defect):
    expectation, policy = EXPECTED[defect]
    warehouse, defects, report, _ = built_with(published_demo, tmp_path_factory, QUARANTINE)
    assert report.status == "published", report.error
    outcome = report.gate.outcome(expectation)
    assert (outcome.policy, outcome.action) == (policy, "quarantined")
    assert outcome.unexpected_count >= defects[defect].rows
    assert outcome.samples, "the report shows sample rows"
    con = publish.connect(warehouse)
    stored = con.execute(
        f"SELECT count(DISTINCT row_number), min(reason), min(row_json) "
        f"FROM {publish.QUARANTINE_TABLE} WHERE run_id = ? AND expectation = ?",
        [report.run_id, expectation],
    ).fetchone()
    con.close()
    assert stored[0] >= defects[defect].rows
    assert stored[1] and stored[2].startswith("{")


def test_quarantine_accounts_for_every_row_and_keeps_the_marts_clean(
    published_demo, tmp_path_factory
):
    warehouse, _, report, before = built_with(published_demo, tmp_path_factory, QUARANTINE)
    assert report.status == "published", report.error
    con = publish.connect(warehouse)
    run_id = report.run_id
    bad = con.execute(
        f"SELECT table_name FROM {publish.COUNTS_TABLE} WHERE run_id = ? "
        "AND raw_rows <> passed_rows + quarantined_rows", [run_id],
    ).fetchall()
    assert bad == []  # no row disappears silently
    quarantined = con.execute(
        f"SELECT sum(quarantined_rows) FROM {publish.COUNTS_TABLE} WHERE run_id = ?", [run_id]
    ).fetchone()[0]
    stored = con.execute(
        f"SELECT count(DISTINCT (table_name, row_number)) FROM {publish.QUARANTINE_TABLE} "
        "WHERE run_id = ?", [run_id],
    ).fetchone()[0]
    assert quarantined == stored > 0
    for sql in (
        "SELECT count(*) FROM analytics.orders WHERE status = 'on_hold'",
        "SELECT count(*) FROM analytics.nps_responses WHERE score > 10",
        "SELECT count(*) FROM analytics.orders WHERE ordered_at > TIMESTAMP '2026-11-16'",
    ):
        assert con.execute(sql).fetchone()[0] == 0, sql
    con.close()
    # the previous marts were kept intact: rollback restores them byte for byte
    publish.rollback_warehouse(warehouse)
    assert fingerprint(warehouse) == before


def test_check_runs_the_gate_alone_and_writes_nothing(published_demo, tmp_path):
    warehouse, _ = with_defects(published_demo, tmp_path, "unknown_status")
    before = fingerprint(warehouse)
    con = publish.connect(warehouse)
    runs_before = len(publish.runs(con))
    con.close()
    report = check(project_for(warehouse), as_of=AS_OF, do_seed=False,
                   reports_dir=tmp_path / "reports")
    assert report.status == "checked" and report.exit_code == 0
    assert report.gate.outcome("orders.accepted_values.status").action == "quarantined"
    assert report.data_docs is not None and report.data_docs.is_file()
    assert any(report.data_docs.parent.joinpath("validations").rglob("*.html"))
    con = publish.connect(warehouse)
    assert len(publish.runs(con)) == runs_before
    assert con.execute(f"SELECT count(*) FROM {publish.QUARANTINE_TABLE}").fetchone()[0] == 0
    con.close()
    assert fingerprint(warehouse) == before


# --- raw data from Parquet (KPI_RAW_PARQUET), the path of data too large for seeds ------


@pytest.fixture(scope="module")
def demo_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's raw data (scale 1, seed 42: the seeds' rows) as Parquet files."""
    from pipeline.datagen import write_parquet

    folder = tmp_path_factory.mktemp("demo_parquet")
    write_parquet(folder, 1.0, 42)
    return folder


def parquet_project(warehouse: Path, parquet: Path) -> Project:
    project = project_for(warehouse)
    return Project(project.root, {**project.env, "KPI_RAW_PARQUET": str(parquet)})


def test_parquet_raw_data_publish_the_same_marts_as_the_seeds(
    published_demo, demo_parquet, tmp_path
):
    warehouse = tmp_path / "wh.duckdb"
    report = build(parquet_project(warehouse, demo_parquet), as_of=AS_OF, data_docs=False,
                   reports_dir=tmp_path / "reports")
    assert report.status == "published", report.error
    assert "load" in report.timings and "seed" not in report.timings
    # every mart equal row for row; the float columns of kpi_values and kpi_windows to 1e-9
    # (parallel sums of doubles add in another order on differently laid out tables)
    ours, demo = fingerprint(warehouse), fingerprint(published_demo)
    for table, keys in FLOAT_TABLES.items():
        assert ours.pop(table).split(":")[0] == demo.pop(table).split(":")[0]
        assert float_differences(warehouse, published_demo, table, keys) == []
    assert ours == demo
    con = publish.connect(warehouse)
    try:
        # nothing was set aside: the run's input is a view of raw, not a second copy
        kinds = dict(con.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = ?",
            [publish.input_schema(report.run_id)],
        ).fetchall())
        assert set(kinds.values()) == {"VIEW"} and "sessions" in kinds
    finally:
        con.close()


VALUE_KEYS = ("kpi", "grain", "period_start", "dimension", "dimension_value")
FLOAT_TABLES = {"kpi_values": VALUE_KEYS, "kpi_windows": ("window_name", *VALUE_KEYS)}


def float_differences(a: Path, b: Path, table: str, keys: tuple[str, ...]) -> list[tuple]:
    """Rows of a published table that differ (floats beyond 1e-9 relative)."""
    import duckdb

    with duckdb.connect() as con:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            "table_catalog = 'a' AND table_schema = ? AND table_name = ?",
            [publish.PUBLISHED_SCHEMA, table],
        ).fetchall()
        differ = [
            f"abs(x.{c} - y.{c}) > 1e-9 * greatest(1, abs(x.{c}))"
            f" OR (x.{c} IS NULL) <> (y.{c} IS NULL)"
            if kind == "DOUBLE" else f"x.{c} IS DISTINCT FROM y.{c}"
            for c, kind in columns if c not in keys
        ]
        name = f"{publish.PUBLISHED_SCHEMA}.{table}"
        return con.execute(
            f"SELECT {', '.join('x.' + k for k in keys)} FROM a.{name} x "
            f"FULL JOIN b.{name} y USING ({', '.join(keys)}) "
            f"WHERE x.kpi IS NULL OR y.kpi IS NULL OR {' OR '.join(f'({d})' for d in differ)} "
            "LIMIT 10"
        ).fetchall()


def test_parquet_rows_set_aside_never_reach_the_marts(published_demo, demo_parquet, tmp_path):
    """Quarantined rows of a Parquet table: the run reads a copy without them (dbt's
    sources must not read KPI_RAW_PARQUET's files directly during kpi build)."""
    import duckdb

    folder = tmp_path / "raw"
    shutil.copytree(demo_parquet, folder)
    orders = folder / "shop" / "orders.parquet"
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * REPLACE (CASE WHEN order_id % 500 = 0 THEN 'on_hold' ELSE status "
            f"END AS status) FROM read_parquet('{demo_parquet / 'shop' / 'orders.parquet'}')) "
            f"TO '{orders}' (FORMAT parquet)"
        )
        changed = con.execute(
            f"SELECT count(*) FILTER (WHERE status = 'on_hold'), count(*) FROM read_parquet('{orders}')"
        ).fetchone()
    assert changed is not None and changed[0] > 0
    warehouse = tmp_path / "wh.duckdb"
    report = build(parquet_project(warehouse, folder), as_of=AS_OF, data_docs=False,
                   reports_dir=tmp_path / "reports")
    assert report.status == "published", report.error
    assert report.gate is not None
    assert report.gate.outcome("orders.accepted_values.status").action == "quarantined"
    con = publish.connect(warehouse)
    try:
        published = con.execute(
            f"SELECT count(*) FROM {publish.PUBLISHED_SCHEMA}.orders"
        ).fetchone()
        kind = con.execute(
            "SELECT table_type FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = 'orders'",
            [publish.input_schema(report.run_id)],
        ).fetchone()
    finally:
        con.close()
    assert published == (changed[1] - report.gate.table("orders").quarantined_rows,)
    assert report.gate.table("orders").quarantined_rows >= changed[0]
    assert kind == ("BASE TABLE",)


def test_a_missing_parquet_file_fails_the_run_naming_it(demo_parquet, tmp_path):
    folder = tmp_path / "raw"
    shutil.copytree(demo_parquet, folder)
    (folder / "crm" / "tickets.parquet").unlink()
    report = build(parquet_project(tmp_path / "wh.duckdb", folder), as_of=AS_OF,
                   data_docs=False, reports_dir=tmp_path / "reports")
    assert report.status == "failed"
    assert report.error and f"{folder / 'crm' / 'tickets'}.parquet" in report.error
    assert "_crm__expectations.yml" in report.error


def test_timestamps_with_an_offset_are_refused_after_dbt_seed(published_demo, tmp_path):
    """dbt seed drops an offset silently (16:39+05:00 would read as 16:39 UTC): the build
    loads that table again as written, and the gate blocks naming the rows."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("dbt_project.yml", "profiles.yml", ".dbtignore", "macros", "models", "tests"):
        (root / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "seeds", root / "seeds")
    defect = inject_defect_into_dir(root / "seeds", "timestamps_with_offset")
    warehouse = copy_warehouse(published_demo, tmp_path / "wh.duckdb")
    before = fingerprint(warehouse)
    project = Project(root, env=project_for(warehouse).env)
    report = build(project, as_of=AS_OF, data_docs=False, reports_dir=tmp_path / "reports")
    assert report.status == "blocked", report.error
    outcome = report.gate.outcome("orders.type.ordered_at")
    assert outcome.action == "blocked" and outcome.unexpected_count == defect.rows
    assert all(s["ordered_at"].endswith("+05:00") for s in outcome.samples)
    assert fingerprint(warehouse) == before


def test_a_warn_expectation_warns_and_the_build_publishes(published_demo, tmp_path):
    """clicks > impressions is a warning in the expectations; dbt's duplicate of that
    check must not fail the run."""
    warehouse, (defect,) = with_defects(published_demo, tmp_path, "clicks_over_impressions")
    report = build(project_for(warehouse), as_of=AS_OF, do_seed=False, data_docs=False,
                   reports_dir=tmp_path / "reports")
    assert report.status == "published", report.error
    outcome = report.gate.outcome("ad_spend.in_order.clicks.impressions")
    assert (outcome.policy, outcome.action) == ("warn", "warned")
    assert outcome.unexpected_count == defect.rows
    assert report.gate.table("ad_spend").quarantined_rows == 0
    saved = json.loads(report.report_path.read_text())
    assert saved["status"] == "published"
    assert {t["table"]: t["status"] for t in saved["gate"]["tables"]}["ad_spend"] == "warned"
    assert "WARNED ad_spend.in_order.clicks.impressions" in _terminal(report)
    con = publish.connect(warehouse)
    try:  # the rows went on as they are
        assert con.execute(
            "SELECT count(*) FROM analytics.marketing_spend WHERE clicks > impressions"
        ).fetchone()[0] >= 1
    finally:
        con.close()


def test_a_build_of_unchanged_inputs_says_so(published_demo, tmp_path, monkeypatch):
    """The demo's raw tables, built again: a warning, and the build publishes; with
    KPI_UNCHANGED_INPUTS=block it stops before building."""
    warehouse = copy_warehouse(published_demo, tmp_path / "wh.duckdb")
    con = publish.connect(warehouse)
    demo_run = publish.published_run(con)
    con.close()
    report = build(project_for(warehouse), as_of=AS_OF, do_seed=False, data_docs=False,
                   reports_dir=tmp_path / "reports")
    assert report.status == "published", report.error
    inputs = report.gate.inputs
    assert inputs.unchanged and inputs.published_run == demo_run and inputs.action == "warned"
    saved = json.loads(report.report_path.read_text())["gate"]["inputs"]
    assert saved["unchanged"] and saved["published_run"] == demo_run
    orders = next(t for t in saved["tables"] if t["table"] == "orders")
    con = publish.connect(warehouse)
    try:
        raw = con.execute("SELECT count(*), max(ordered_at) FROM raw.orders").fetchone()
        stored = json.loads(publish.run_inputs(con, report.run_id))
    finally:
        con.close()
    assert (orders["rows"], orders["newest"]) == (raw[0], raw[1].isoformat())
    assert stored == saved["tables"]
    assert f"WARNED the raw inputs are unchanged since the published run {demo_run}" in (
        " ".join(_terminal(report).split()))
    monkeypatch.setenv("KPI_UNCHANGED_INPUTS", "block")
    blocked = build(project_for(warehouse), as_of=AS_OF, do_seed=False, data_docs=False,
                    reports_dir=tmp_path / "reports")
    assert blocked.status == "blocked" and "unchanged since the published run" in blocked.error
    assert "dbt" not in blocked.timings
