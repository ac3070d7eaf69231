"""What users can meet: issues located at file:line:col, the errors that carry them, and
the exit codes of the `kpi` command."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

# exit codes of `kpi` (README, "Exit codes")
EXIT_FAILED = 1  # the run could not be done: a build blocked or failed, dbt, the warehouse
EXIT_USER_ERROR = 2  # a mistake the user can fix: a metric or expectations file, an option
EXIT_INTERNAL = 70  # a bug: an exception no rule expects (`kpi --debug …` shows where)
EXIT_INTERRUPTED = 130  # Ctrl-C


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Location:
    """A place in a source file; line and col count from 1 (0: not known)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.col}" if self.col else f"{self.file}:{self.line}"


NOWHERE = Location("")  # a message about no file (an option, the warehouse)


@dataclass(frozen=True)
class Issue:
    level: Level
    message: str
    location: Location

    def __str__(self) -> str:
        place = f"{self.location}: " if self.location.file else ""
        return f"{place}{self.level.value}: {self.message}"


def error(message: str, location: Location) -> Issue:
    return Issue(Level.ERROR, message, location)


def warning(message: str, location: Location) -> Issue:
    return Issue(Level.WARNING, message, location)


def has_errors(issues: Iterable[Issue]) -> bool:
    return any(issue.level is Level.ERROR for issue in issues)


def sort_issues(issues: Iterable[Issue], first: Collection[str] = ()) -> list[Issue]:
    """By place; the issues of the files in `first` come first."""
    return sorted(
        issues, key=lambda i: (i.location.file not in first, i.location, i.level.value, i.message)
    )


class PipelineError(Exception):
    """The base of every error the tool reports to its user: one message or issues, each
    printed as `file:line:col: error: message` (`error: message` when it has no place),
    never as a traceback; `exit_code` says what kind of error it is."""

    exit_code: ClassVar[int] = EXIT_FAILED

    def __init__(self, problem: str | Iterable[Issue], location: Location = NOWHERE):
        self.issues = [error(problem, location)] if isinstance(problem, str) else list(problem)
        if isinstance(problem, str) and not location.file:
            super().__init__(problem)  # as any exception: its message (a build report quotes it)
        else:
            super().__init__("\n".join(str(i) for i in self.issues))


class UserError(PipelineError):
    """A mistake the user can fix (a metric or expectations file, an option)."""

    exit_code = EXIT_USER_ERROR


class NoWarehouse(UserError):
    """A command reads the published marts, and no build has written the warehouse yet."""

    def __init__(self, warehouse: Path):
        super().__init__(f"no warehouse at {warehouse}: run `kpi build` first")


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
