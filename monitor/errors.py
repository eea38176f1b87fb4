"""Errors a user can cause and fix: each names the file, line and key.

The CLI turns these into one clear message and exit code 2; they must never
surface as a traceback.
"""

from __future__ import annotations

from pathlib import Path


class MonitorError(Exception):
    """Base class for errors shown to the user as a message, not a traceback."""

    exit_code = 1


class UsageError(MonitorError):
    """Bad command-line input (exit 2)."""

    exit_code = 2


class ConfigError(MonitorError):
    """An invalid configuration file: says which file, line, column and key, and why."""

    exit_code = 2

    def __init__(self, message: str, *, path: Path | str | None = None,
                 line: int | None = None, column: int | None = None,
                 key: str | None = None, context: str | None = None) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        self.key = key
        self.context = context  # e.g. the offending source line with a caret under it
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = str(self.path)
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        text = f"{where}{key}{self.message}"
        if self.context:
            text += "\n" + self.context
        return text


class DatabaseLocked(MonitorError):
    """Another daemon holds the database."""

    exit_code = 1
