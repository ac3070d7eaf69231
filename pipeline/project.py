"""The dbt project on disk: its paths, its warehouse, and running dbt against it.

Only this module, `cli.py` and `publish.py` touch the file system or the warehouse;
the compiler stages take and return plain data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_WAREHOUSE = Path("warehouse") / "happy_home_goods.duckdb"


class DbtError(RuntimeError):
    """dbt ran and reported a failure (a failing test, a SQL error)."""


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
        raise FileNotFoundError(f"no dbt_project.yml in {here} or any parent folder")

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
    def warehouse(self) -> Path:
        """The DuckDB file of the default target (KPI_WAREHOUSE overrides it)."""
        value = self.env.get("KPI_WAREHOUSE") or os.environ.get("KPI_WAREHOUSE")
        path = Path(value) if value else DEFAULT_WAREHOUSE
        return path if path.is_absolute() else self.root / path

    def dbt_env(self) -> dict[str, str]:
        """Environment for a dbt run: ours, then the caller's overrides, warehouse made absolute."""
        env = {**os.environ, **self.env}
        env["KPI_WAREHOUSE"] = str(self.warehouse)
        env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        return env

    def dbt(self, args: Sequence[str], *, quiet: bool = True) -> None:
        """Run one dbt command in-process; raise DbtError when dbt reports a failure."""
        from dbt.cli.main import dbtRunner

        self.warehouse.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            *args,
            "--project-dir",
            str(self.root),
            "--profiles-dir",
            str(self.root),
        ]
        if quiet:
            argv = ["--quiet", "--no-use-colors", *argv]
        with _environment(self.dbt_env()), _cwd(self.root):
            result = dbtRunner().invoke(argv)
        if not result.success:
            detail = result.exception or _failures(result.result)
            raise DbtError(f"dbt {' '.join(args)} failed: {detail}")


def _failures(result: object) -> str:
    rows = getattr(result, "results", None) or []
    bad = [r for r in rows if str(getattr(r, "status", "")).lower() in {"error", "fail"}]
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
