"""What users can meet: issues located at file:line:col, and the errors that carry them."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Location:
    """A place in a source file; line and col count from 1."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Issue:
    level: Level
    message: str
    location: Location

    def __str__(self) -> str:
        return f"{self.location}: {self.level.value}: {self.message}"


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


class UserError(Exception):
    """A mistake the user can fix: printed as messages, never as a traceback."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
