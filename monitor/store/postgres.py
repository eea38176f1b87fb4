"""PostgreSQL behind the small part of sqlite-utils' `Database` that the store uses.

The store's SQL is written once, in the common subset of SQLite and PostgreSQL
(`?` and `:name` parameters, `INSERT ... ON CONFLICT ... RETURNING`, dates as
fixed-width UTC text that sorts as text). `PostgresDatabase` runs that SQL on a
psycopg 3 connection: it rewrites the parameters into psycopg's `%s` and
`%(name)s` forms (leaving quoted text alone) and offers `execute`, `query`,
`executescript`, `commit`, `rollback` and `conn.executemany` /
`conn.in_transaction` as sqlite-utils does. The few statements that differ
between the two engines (full-text search, JSON fields, string aggregation)
ask `dialect` which engine they run on.

psycopg is imported only here, and only when a `postgresql://` database is
opened: the embedded SQLite default never pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from monitor.config.paths import POSTGRES_SCHEMES, DatabaseURL
from monitor.errors import MonitorError
from monitor.masking import mask_url

SCHEMES = POSTGRES_SCHEMES
# One advisory lock id for "the schema is being created or migrated", so
# several workers starting at once create it once.
SCHEMA_LOCK = 0x6D6F6E69  # "moni"
# One advisory lock for "a write transaction of the store is open": what SQLite's
# BEGIN IMMEDIATE gives, one writer at a time, so every rule the store keeps under
# SQLite (a story alerted once across outlets, a feed synced once) holds the same on a
# database several processes write. Reads never wait for it.
WRITE_LOCK = 0x6D6F6E77  # "monw"

# A token of SQL: quoted text and identifiers are kept as they are; `?`,
# `:name` and `%` are what the translation rewrites. `::` (a cast) is kept.
_TOKENS = re.compile(r"""
    (?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<cast>::)
  | (?P<named>:[A-Za-z_][A-Za-z0-9_]*)
  | (?P<positional>\?)
  | (?P<percent>%)
""", re.VERBOSE)


def is_postgres_url(value: object) -> bool:
    """Whether a --db / MONITOR_DB value names a PostgreSQL database rather than a SQLite file."""
    return isinstance(value, DatabaseURL) or isinstance(value, str) and value.startswith(SCHEMES)


def url_of(location: object) -> str:
    """The connection URL of a PostgreSQL location (a DatabaseURL or the URL itself)."""
    return location.url if isinstance(location, DatabaseURL) else str(location)


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite-style parameters (`?`, `:name`) as psycopg's (`%s`, `%(name)s`) outside quoted text;
    every literal `%` doubled, inside quotes too (psycopg reads placeholders everywhere)."""
    def rewrite(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind == "named":
            return f"%({match.group()[1:]})s"
        if kind == "positional":
            return "%s"
        if kind in ("percent", "quoted"):
            return match.group().replace("%", "%%")
        return match.group()
    return _TOKENS.sub(rewrite, sql)


def split_script(script: str) -> list[str]:
    """The statements of a script, split on the semicolons outside quoted text."""
    statements, start = [], 0
    for match in re.finditer(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|;", script):
        if match.group() == ";":
            statements.append(script[start:match.start()])
            start = match.end()
    statements.append(script[start:])
    return [statement.strip() for statement in statements if statement.strip()]


class _Connection:
    """What the store reaches through `db.conn`: executemany and in_transaction."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Any:
        cursor = self.raw.cursor()
        cursor.executemany(translate(sql), list(rows))
        return cursor


class PostgresDatabase:
    """One psycopg connection in autocommit mode: a transaction is what the store's
    `BEGIN` opens, as with sqlite3 in the store's hands."""

    dialect = "postgresql"

    def __init__(self, raw: Any, url: str) -> None:
        self.conn = _Connection(raw)
        self.url = url

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        if sql.strip().upper() == "BEGIN IMMEDIATE":  # the store's write transaction
            self.conn.raw.execute("BEGIN")
            return self.conn.raw.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
        return self.conn.raw.execute(translate(sql), parameters)  # even (): `%%` must be read

    def query(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> Iterator[dict[str, Any]]:
        cursor = self.execute(sql, parameters)
        names = [column.name for column in cursor.description or ()]
        for row in cursor:
            yield dict(zip(names, row, strict=True))

    def executescript(self, script: str) -> None:
        for statement in split_script(script):
            self.conn.raw.execute(statement)

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.raw.close()


def connect(location: str | DatabaseURL) -> PostgresDatabase:
    """A connection to LOCATION, or a MonitorError that names the database (password hidden)."""
    url = url_of(location)
    try:
        import psycopg
    except ImportError as exc:
        raise MonitorError("a postgresql:// database needs psycopg: pip install 'monitor[postgres]'") from exc
    try:
        # Client-side binding, as sqlite3 does it: a None compared with IS NULL needs no
        # type (`:since IS NULL OR first_seen >= :since`), which server-side binding asks for.
        raw = psycopg.connect(url, autocommit=True, connect_timeout=10, cursor_factory=psycopg.ClientCursor)
    except psycopg.Error as exc:
        raise MonitorError(f"cannot connect to the database at {mask_url(url)}: {exc}".strip()) from exc
    return PostgresDatabase(raw, url)
