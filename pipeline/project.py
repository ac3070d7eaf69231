"""The dbt project on disk: its paths, its warehouse, and running dbt against it.

Only this module, `cli.py` and `publish.py` touch the file system or the warehouse;
the compiler stages take and return plain data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError, UserError
from pipeline.profile import duckdb_output, read_yaml, rendered, run_profiles

# what a dbt project needs besides the folders dbt_project.yml names
PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml")
DBT_PATHS = {  # dbt_project.yml keys → dbt's defaults
    "model-paths": ["models"],
    "seed-paths": ["seeds"],
    "macro-paths": ["macros"],
    "test-paths": ["tests"],
    "analysis-paths": ["analyses"],
    "snapshot-paths": ["snapshots"],
}


DEFAULT_PARQUET_LAYOUT = "{source}/{table}.parquet"


class DbtError(PipelineError):
    """dbt ran and reported a failure (a failing test, a SQL error). `failed` names the
    nodes that failed; it is empty when dbt stopped before running them (a parse or
    compilation error of the project)."""

    def __init__(self, message: str, failed: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failed = tuple(failed)


@dataclass(frozen=True)
class Project:
    """A dbt project root (the folder holding dbt_project.yml and profiles.yml)."""

    root: Path
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def find(cls, start: Path | None = None, env: Mapping[str, str] | None = None) -> Project:
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / "dbt_project.yml").is_file():
                return cls(folder, dict(env or {}))
        raise UserError(f"no dbt_project.yml in {here} or any parent folder")

    @property
    def metrics_dir(self) -> Path:
        return self.root / "metrics"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def seeds_dir(self) -> Path:
        return self.root / "seeds"

    @property
    def name(self) -> str:
        """The dbt project's name (dbt_project.yml)."""
        data = read_yaml(self.root / "dbt_project.yml", {})
        return str(data.get("name") or self.root.name) if isinstance(data, dict) else self.root.name

    @property
    def warehouse(self) -> Path:
        """The DuckDB file: KPI_WAREHOUSE, else the `path` of the profile's DuckDB output,
        else `warehouse/<project name>.duckdb`; relative paths from the project root."""
        value = self.env.get("KPI_WAREHOUSE") or os.environ.get("KPI_WAREHOUSE")
        if not value:
            output = duckdb_output(self.root, self.env)
            if output is not None and output.get("path"):
                value = rendered(output["path"], self.env)
        path = Path(value) if value else Path("warehouse") / f"{self.name}.duckdb"
        return path if path.is_absolute() else self.root / path

    @property
    def raw_parquet(self) -> Path | None:
        """KPI_RAW_PARQUET: a folder of Parquet files holding the raw data (`raw_parquet_layout`),
        loaded instead of the seeds by `kpi build`."""
        value = self.env.get("KPI_RAW_PARQUET", os.environ.get("KPI_RAW_PARQUET", ""))
        if not value:
            return None
        path = Path(value)
        return path if path.is_absolute() else self.root / path

    @property
    def raw_parquet_layout(self) -> str:
        """KPI_RAW_PARQUET_LAYOUT: where a source table's files are under the folder, with
        {source}, {table}, {identifier} and globs (default `{source}/{table}.parquet`)."""
        value = self.env.get("KPI_RAW_PARQUET_LAYOUT", os.environ.get("KPI_RAW_PARQUET_LAYOUT", ""))
        return value or DEFAULT_PARQUET_LAYOUT

    def snapshot(self, dest: Path) -> Project:
        """What a build reads (metric files, dbt's files and folders) copied to `dest`, and the
        project rooted there: same warehouse and raw Parquet, dbt's artifacts and logs still
        in this project's target/ and logs/. Edits made meanwhile do not reach the build."""
        shutil.rmtree(dest, ignore_errors=True)
        snapshot_worktree(self.root, dest)

        def here(variable: str, default: str) -> str:
            value = Path(self.env.get(variable) or os.environ.get(variable) or default)
            return str(value if value.is_absolute() else self.root / value)

        return Project(dest, {
            **self.env,
            "KPI_WAREHOUSE": str(self.warehouse),
            "KPI_RAW_PARQUET": str(self.raw_parquet or ""),
            "KPI_RAW_PARQUET_LAYOUT": self.raw_parquet_layout,
            "DBT_TARGET_PATH": here("DBT_TARGET_PATH", "target"),
            "DBT_LOG_PATH": here("DBT_LOG_PATH", "logs"),
        })

    def dbt_env(self) -> dict[str, str]:
        """Environment for a dbt run: ours, then the caller's overrides, warehouse made absolute."""
        env = {**os.environ, **self.env}
        env["KPI_WAREHOUSE"] = str(self.warehouse)
        env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        return env

    def dbt(
        self,
        args: Sequence[str],
        *,
        quiet: bool = True,
        progress: Callable[[NodeEvent], None] | None = None,
    ) -> None:
        """Run one dbt command in-process; raise DbtError when dbt reports a failure.

        `progress`, when given, is called as each node (model, seed, test) starts and
        finishes, from dbt's event stream (it works with `quiet` too)."""
        from dbt.cli.main import dbtRunner

        self.warehouse.parent.mkdir(parents=True, exist_ok=True)
        callbacks: list[Callable[[Any], None]] = (
            [_NodeEvents(args[0] if args else "", progress)] if progress else []
        )
        with tempfile.TemporaryDirectory(prefix="kpi-profiles-") as folder:
            profiles = run_profiles(self.root, self.env, self.warehouse, Path(folder))
            argv = [*args, "--project-dir", str(self.root), "--profiles-dir", str(profiles)]
            if quiet:
                argv = ["--quiet", "--no-use-colors", *argv]
            with _environment(self.dbt_env()), _cwd(self.root):
                try:
                    result = dbtRunner(callbacks=callbacks).invoke(argv)
                finally:
                    release_duckdb()
        if not result.success:
            failed = () if result.exception else _failed(result.result)
            detail = result.exception or _failures(result.result)
            raise DbtError(f"dbt {' '.join(args)} failed: {detail}", failed)


def snapshot_worktree(root: Path, dest: Path) -> Path:
    """Copy what dbt and the compiler read from the working tree (committed or not) to `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        if (root / name).is_file():
            shutil.copy2(root / name, dest / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".*cache", "target", "logs")
    for name in sorted({"metrics", *_project_paths(root)}):
        source = root / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=skip, dirs_exist_ok=True)
    return dest


def _project_paths(root: Path) -> set[str]:
    """The folders dbt reads: those dbt_project.yml names (model-paths, seed-paths…), dbt's
    defaults for those it does not."""
    from ruamel.yaml import YAML

    try:
        config = YAML(typ="safe").load((root / "dbt_project.yml").read_text(encoding="utf-8"))
    except Exception:  # a broken dbt_project.yml fails in dbt, with dbt's message
        config = {}
    found: set[str] = set()
    for key, default in DBT_PATHS.items():
        value = (config or {}).get(key, default)
        for item in value if isinstance(value, list) else []:
            path = Path(str(item))
            if str(item) and not path.is_absolute() and ".." not in path.parts:
                found.add(path.as_posix())
    return found


@dataclass(frozen=True)
class NodeEvent:
    """A node of a dbt command starting or finishing (what `Project.dbt(progress=)` gets)."""

    stage: str  # the dbt command: "seed", "run", "build", "test"…
    event: str  # "start" or "finish"
    node: str  # the model, seed, snapshot or test name
    resource_type: str  # "model", "seed", "test"…
    index: int  # 1-based position among the command's nodes; 0 when dbt does not say
    total: int  # how many nodes the command runs; 0 when dbt does not say
    status: str  # "" on start; on finish dbt's status: "success", "error", "pass", "fail"…
    node_seconds: float  # on finish, the node's own run time; 0.0 on start
    elapsed: float  # seconds since the command started


class _NodeEvents:
    """A dbtRunner callback turning dbt's events into `NodeEvent` calls."""

    def __init__(self, stage: str, sink: Callable[[NodeEvent], None]) -> None:
        self.stage, self.sink = stage, sink
        self.started = time.monotonic()
        self.positions: dict[str, tuple[int, int]] = {}

    def __call__(self, event: object) -> None:
        name = getattr(getattr(event, "info", None), "name", "")
        if name not in ("LogStartLine", "NodeFinished"):
            return
        data = getattr(event, "data", None)
        node = getattr(data, "node_info", None)
        unique_id = str(getattr(node, "unique_id", ""))
        if not unique_id:
            return
        if name == "LogStartLine":
            position = (int(getattr(data, "index", 0)), int(getattr(data, "total", 0)))
            self.positions[unique_id] = position
            status, seconds = "", 0.0
        else:
            position = self.positions.get(unique_id, (0, 0))
            result = getattr(data, "run_result", None)
            status = str(getattr(result, "status", "") or getattr(node, "node_status", ""))
            seconds = float(getattr(result, "execution_time", 0.0) or 0.0)
        self.sink(
            NodeEvent(
                stage=self.stage,
                event="start" if name == "LogStartLine" else "finish",
                node=str(getattr(node, "node_name", unique_id)),
                resource_type=str(getattr(node, "resource_type", "")),
                index=position[0],
                total=position[1],
                status=status,
                node_seconds=seconds,
                elapsed=time.monotonic() - self.started,
            )
        )


def release_duckdb() -> None:
    """Close the database dbt-duckdb keeps open in this process after a run: otherwise our
    own connections to the same file fail ("different configuration")."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing kept open
        return
    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
        DuckDBConnectionManager.close_all_connections()


def _failed_results(result: object) -> list[Any]:
    rows = getattr(result, "results", None) or []
    return [r for r in rows if str(getattr(r, "status", "")).lower() in {"error", "fail"}]


def _failed(result: object) -> tuple[str, ...]:
    return tuple(str(r.node.name) for r in _failed_results(result))


def _failures(result: object) -> str:
    bad = _failed_results(result)
    return "; ".join(f"{r.node.name}: {r.message}" for r in bad) or "see dbt's log"


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    saved = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(saved)
