"""What a build reports as it goes: typed events for a `Progress` sink (the `kpi` command
shows them live), and the test hooks at its stages.

Test hooks (environment): `KPI_STAGE_FILE=path` appends each stage name to `path` as it
starts; `KPI_PAUSE_AT=stage` makes the build sleep at that point (`gate`: inside the
gate's write transaction, `dbt`: just before dbt builds the run, `audit`: after dbt,
`swap`: inside the publish transaction, `export`: in `kpi build`, after publishing) so a
test can kill it there; with `KPI_RESUME_FILE=path` it goes on once `path` exists.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    """A stage starts (seed, load, gate, dbt, audit, swap), or one step of it: `item`, a table."""

    name: str
    item: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.item}" if self.item else self.name


@dataclass(frozen=True)
class Detail:
    """Passing news of a stage, shown until the next event: the model dbt builds, the rows
    of a table checked so far."""

    stage: Stage
    text: str

    def __str__(self) -> str:
        return f"{self.stage} · {self.text}"


@dataclass(frozen=True)
class Waiting:
    """The build waits for another process (a build holding the lock, a reader holding the
    file); the message says which."""

    message: str

    def __str__(self) -> str:
        return self.message


Event = Stage | Detail | Waiting
Progress = Callable[[Event], None]


def start_stage(name: str, progress: Progress | None) -> None:
    """Stage `name` starts: told to `progress`, and appended to KPI_STAGE_FILE."""
    if progress is not None:
        progress(Stage(name))
    _record(name)


def pause(point: str) -> None:
    """Sleep here when KPI_PAUSE_AT names `point`, until killed or KPI_RESUME_FILE exists."""
    if os.environ.get("KPI_PAUSE_AT") == point:
        _record(f"paused:{point}")
        resume = os.environ.get("KPI_RESUME_FILE")
        while not (resume and Path(resume).exists()):
            time.sleep(0.1)


def on_wait(progress: Progress | None) -> Callable[[str], None] | None:
    """`progress` as the `on_wait` of the build lock and of warehouse connections."""
    if progress is None:
        return None
    return lambda message: progress(Waiting(message))


def _record(line: str) -> None:
    marker = os.environ.get("KPI_STAGE_FILE")
    if marker:
        with open(marker, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
