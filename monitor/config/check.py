"""Value checks and positioned errors shared by the config files (monitor.toml, feeds.toml, alerts.toml).

A check takes a TOML value and returns the plain value to use, or raises
Invalid saying what was expected. A Source turns the key path of a failed
check into a ConfigError at its file, line and column, with the source line
and a caret under the value. Text from a file is shown with any password in a
URL redacted, because config files hold them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

from monitor.config.durations import GRAMMAR, parse_duration
from monitor.config.tomlpos import key_line, value_column
from monitor.errors import ConfigError

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# user:password@ after a "/" (also of a mistyped "https:/"), or opening a value or quoted
# string (a URL missing its scheme); a password may hold any sub-delimiter, a quote or a raw
# "@" included: the user-info runs to the last "@" before the path, query or fragment.
_URL_PASSWORD = re.compile(r"((?:^|(?<=[/\s\"']))[^/@\s\"':]*:)[^/?#\s\"]*@")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')
_DURATION = "a duration such as '10m' or '1h30m' (or a number of seconds)"


class Invalid(Exception):
    """A value failed its check; the message says what was expected."""


# --------------------------------------------------------------------------
# locating problems in the source
# --------------------------------------------------------------------------


def key_name(path: Sequence[str | int]) -> str:
    """The key path as a user reads it: ("feed", 2, "url") -> feed[2].url."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        shown = part if _BARE_KEY.fullmatch(part) else f'"{part}"'
        text += f".{shown}" if text else shown
    return text


def redact(text: str) -> str:
    """TEXT with any password in a URL's user-info replaced by ***."""
    return _URL_PASSWORD.sub(r"\1***@", text)


@dataclass(frozen=True)
class Source:
    """One TOML file's path and text, to turn a key path into a positioned ConfigError."""

    path: Path
    text: str

    def error(self, path: Sequence[str | int], message: str, *, at_value: bool = True,
              show_line: bool = True) -> ConfigError:
        line = self._line(path)
        column = None
        if line is not None:
            source_line = self.text.split("\n")[line - 1]
            column = value_column(self.text, line) if at_value else None
            if column is None:
                column = len(source_line) - len(source_line.lstrip()) + 1
        context = self.context_at(line, column) if show_line and line is not None else None
        return ConfigError(self.shown(message), path=self.path, line=line, column=column,
                           key=redact(key_name(path)) or None, context=context)

    def shown(self, message: str) -> str:
        """MESSAGE as the error states it: a value quoted in it may be a URL with a password."""
        return redact(message)

    def _line(self, path: Sequence[str | int]) -> int | None:
        """The key's line, else the nearest enclosing key or table that has one."""
        for length in range(len(path), 0, -1):
            line = key_line(self.text, path[:length])
            if line is not None:
                return line
        return None

    def context_at(self, line: int, column: int | None) -> str | None:
        """The source line (passwords and header values redacted) with a caret under COLUMN."""
        lines = self.text.split("\n")
        source_line = redact(lines[line - 1].rstrip("\r"))
        if _holds_header_values(lines, line):
            key, sep, value = source_line.partition("=")
            source_line = key + sep + _QUOTED.sub('"***"', value)
        caret = " " * ((column or 1) - 1) + "^"
        return f"    {source_line}\n    {caret}"


def _holds_header_values(lines: list[str], line: int) -> bool:
    """Whether source LINE (1-based) may show request header values, which can be secrets:
    an inline `headers = {...}`, a dotted `headers.NAME = ...`, or a line inside a `[feed.headers]` table."""
    if re.match(r"""\s*["']?headers["']?\s*[=.]""", lines[line - 1]):
        return True
    for previous in reversed(lines[:line - 1]):
        header = previous.strip()
        if header.startswith("["):
            return header.rstrip("]").endswith(".headers")
    return False


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """' (did you mean X?)' for the candidate WORD is closest to, ignoring case; else ''."""
    lowered = {candidate.lower(): candidate for candidate in candidates}
    if word.lower() in lowered:
        return f" (did you mean {lowered[word.lower()]!r}?)"
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def unknown_key(source: Source, path: tuple[str | int, ...], key: str, known: Sequence[str],
                elsewhere: Mapping[str, tuple[str, str]] | None = None) -> ConfigError:
    """'unknown key', suggesting a close spelling, or where that key belongs.

    ELSEWHERE maps a key of another table to its dotted path and the table's
    description: {"interval": ("poll.interval", "that section")}.
    """
    hint = did_you_mean(key, known)
    if not hint and elsewhere and key in elsewhere:
        dotted, table = elsewhere[key]
        hint = f" (did you mean {dotted!r}? it belongs in {table})"
    # redacted here too: a key can be a pasted URL, and alerts.toml's Source shows messages as written
    return source.error(path + (key,), redact(f"unknown key {key!r}{hint}"), at_value=False)


def entry_key_problems(source: Source, where: tuple[str | int, ...], entry: Mapping[str, object],
                       known: Sequence[str],
                       elsewhere: Mapping[str, tuple[str, str]] | None = None) -> list[ConfigError]:
    """The unknown keys of one named table (a [[feed]], a [[destination]]), then its missing name or url."""
    problems = [unknown_key(source, where, key, known, elsewhere) for key in entry if key not in known]
    problems += [source.error(where, f"missing required key {required!r}", at_value=False)
                 for required in ("name", "url") if required not in entry]
    return problems


# --------------------------------------------------------------------------
# value checks
# --------------------------------------------------------------------------


def type_name(value: object) -> str:
    """A TOML value's type as the TOML spec names it, with its article."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (datetime, date, time)):
        return "a date/time"
    if isinstance(value, list):
        return "an array"
    return "a table"


def describe(value: object) -> str:
    """A TOML value with its type, for 'expected X, got Y' messages."""
    if isinstance(value, bool):
        return f"{str(value).lower()} ({type_name(value)})"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"{redact(shown)!r} ({type_name(value)})"
    if isinstance(value, (int, float)):
        return f"{number_text(value)} ({type_name(value)})"
    if isinstance(value, (datetime, date, time)):
        return f"{value.isoformat()} ({type_name(value)})"
    return type_name(value)


def number_text(value: int | float) -> str:
    """VALUE for a message; TOML integers can have more digits than Python will print."""
    if isinstance(value, int) and abs(value) >= 10**40:
        return "a huge number"
    return str(value)


def duration(*, allow_zero: bool, expected: str = _DURATION) -> Callable[[object], float]:
    """A check for a duration in seconds; EXPECTED describes one to a user who wrote another type."""
    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Invalid(f"expected {expected}, got {describe(value)}")
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            raise Invalid(str(error)) from None
        if seconds == 0 and not allow_zero:
            raise Invalid(f"must be longer than 0 seconds, got {value!r}; expected {GRAMMAR}")
        return seconds
    return check


def integer(minimum: int, maximum: int | None = None) -> Callable[[object], int]:
    """A check for a whole number from MINIMUM to MAXIMUM (None: no upper bound)."""
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected a whole number, got {describe(value)}")
        if maximum is None and value < minimum:
            raise Invalid(f"must be at least {minimum}, got {number_text(value)}")
        if maximum is not None and not minimum <= value <= maximum:
            raise Invalid(f"must be from {minimum} to {maximum}, got {number_text(value)}")
        return value
    return check


def string(expected: str, problem_of: Callable[[str], str | None]) -> Callable[[object], str]:
    """A check for a string, built on a check of plain text (PROBLEM_OF says why it is unusable, or None).

    EXPECTED describes the value to a user who wrote another type: "a URL string such as ...".
    """
    def check(value: object) -> str:
        if not isinstance(value, str):
            raise Invalid(f"expected {expected}, got {describe(value)}")
        problem = problem_of(value)
        if problem:
            raise Invalid(problem)
        return value
    return check
