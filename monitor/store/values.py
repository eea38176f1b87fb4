"""Values as the database holds them, and the small helpers every table's module shares."""

from __future__ import annotations

import enum
import functools
import json
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from monitor.errors import MonitorError

T = TypeVar("T")
CHUNK = 500  # values per IN (...) query, well under SQLite's variable limit


def to_text(moment: datetime | None) -> str | None:
    """UTC, whole seconds, fixed width: "2026-11-29T04:06:52Z" sorts as text."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the store takes aware UTC times")
    utc = moment.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    return utc.isoformat() + "Z"


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def sql_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_text(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    return value


def checked(values: dict[str, Any], allowed: frozenset[str], what: str) -> dict[str, Any]:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"unknown {what} column(s): {', '.join(unknown)}")
    return {key: sql_value(value) for key, value in values.items()}


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def marks(count: int) -> str:
    return ", ".join("?" * count)


def database_error(path: Path | str, exc: BaseException) -> MonitorError:
    """A SQLite or OS error as one clear message that names the database file."""
    reason = str(exc) or type(exc).__name__
    hint = ""
    if "malformed" in reason or "not a database" in reason or "constructor failed" in reason:
        hint = (f"; the file is damaged: restore a backup, or rebuild it with "
                f"`sqlite3 {path} .recover | sqlite3 NEW.db`")
    return MonitorError(f"cannot read the database at {path}: {reason}{hint}")


def database_errors() -> tuple[type[BaseException], ...]:
    """The error classes of the engines in use: psycopg's only once it is imported (PostgreSQL)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, psycopg.Error) if psycopg is not None else (sqlite3.Error,)


def reads_database(function: Callable[..., T]) -> Callable[..., T]:
    """Turn SQLite errors of a reading call on a Store (its first argument) into a
    MonitorError naming the file, instead of a traceback (a corrupt page, a lost file)."""
    @functools.wraps(function)
    def reading(store: Any, *args: Any, **kwargs: Any) -> T:
        try:
            return function(store, *args, **kwargs)
        except database_errors() as exc:
            raise database_error(store.path, exc) from exc
    return reading
