"""The state database: feeds' fetch state, stories, matches and a bounded fetch log.

The config folder says *what* is watched; this database only remembers what
happened. Feeds are keyed by an integer id, so a renamed feed keeps its
stories and a removed one can come back with its state.

The tables' methods are written beside their tables (feeds.py, entries.py),
the schema in schema.py, the outbox's, search's and readers' queries in
outbox.py, search.py, matches.py and reads.py.

A `Store` holds one connection: to a SQLite file (the embedded default), or to
a PostgreSQL database when it is opened with a `postgresql://` URL
(monitor/store/postgres.py; the same SQL runs on both, and `dialect` names the
engine for the few statements that differ). A SQLite connection belongs to the
thread that opened it (sqlite3 enforces this). The daemon gives all database work to one
`StoreThread`; the CLI opens its own read-only `Store` in another process,
which WAL mode lets it do while the daemon writes.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from monitor.config.paths import DatabaseURL
from monitor.errors import MonitorError
from monitor.masking import mask_url
from monitor.store.entries import EntryRows
from monitor.store.feeds import FeedRows
from monitor.store.postgres import PostgresDatabase, is_postgres_url, url_of
from monitor.store.postgres import connect as connect_postgres
from monitor.store.schema import migrations
from monitor.store.values import T, reads_database

BUSY_TIMEOUT_MS = 5000


# --------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------


def _create_private(path: Path) -> None:
    """Stories and feed URLs (which may carry tokens) are nobody else's business."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def _open_readonly(path: Path) -> sqlite3.Connection:
    """A reading connection; on a read-only folder or filesystem, an immutable one.

    A WAL database needs its -shm file even to be read, and SQLite cannot make
    one where it may not write. An immutable open reads the main file alone:
    right for a copy, a backup or a read-only mount, which nothing writes;
    changes still in a -wal file (a daemon killed without its checkpoint) are
    not seen.
    """
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if "readonly" not in str(exc) and "unable to open" not in str(exc):
            raise
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)


def _connect(path: Path, readonly: bool) -> Database:
    if readonly:
        conn = _open_readonly(path)
    else:
        _create_private(path)
        conn = sqlite3.connect(path)
    db = Database(conn)
    try:
        _prepare(db, path, readonly)
    except BaseException:
        db.close()
        raise
    return db


def _prepare(db: Database, path: Path, readonly: bool) -> None:
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")
        migrations.apply(db)
    elif migrations.pending(db):
        raise MonitorError(f"the database at {path} needs an upgrade; run `monitor run` once")


def _connect_postgres(url: str, readonly: bool) -> PostgresDatabase:
    from monitor.store import postgres_schema

    db = connect_postgres(url)
    try:
        if not readonly:
            postgres_schema.apply(db)
        elif postgres_schema.pending(db):
            raise MonitorError(f"the database at {mask_url(url)} needs an upgrade; run `monitor run` once")
        else:
            db.execute("SET default_transaction_read_only = on")
    except BaseException:
        db.close()
        raise
    return db


class Store(FeedRows, EntryRows):
    """Synchronous access to the state database; use it from one thread only."""

    def __init__(self, db: Database | PostgresDatabase, path: Path | str, readonly: bool) -> None:
        self.db = db
        self.path = path  # the SQLite file, or the PostgreSQL URL without its password: for messages
        self.readonly = readonly
        self.dialect = getattr(db, "dialect", "sqlite")
        self._depth = 0  # transactions open on this connection: the outer one commits

    @classmethod
    def open(cls, path: Path | str | DatabaseURL, *, readonly: bool = False) -> Store:
        """Writer: creates the folder and file (or schema) and migrates. Reader: never writes."""
        if is_postgres_url(path):
            import psycopg

            try:
                return cls(_connect_postgres(url_of(path), readonly), mask_url(url_of(path)), readonly)
            except psycopg.Error as exc:
                raise MonitorError(f"cannot open the database at {mask_url(url_of(path))}: {exc}") from exc
        path = Path(path)
        if readonly and not path.exists():
            raise MonitorError(f"no database at {path} yet; run `monitor run` first")
        try:
            return cls(_connect(path, readonly), path, readonly)
        except (OSError, sqlite3.Error) as exc:
            raise MonitorError(f"cannot open the database at {path}: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, all or nothing.

        BEGIN IMMEDIATE takes the write lock up front, so a second writer
        waits for busy_timeout instead of failing when a read upgrades.
        Inside another transaction (the pipeline stores a poll and plans its
        alerts in one) it is a savepoint: its failure undoes its own writes,
        and only the outer transaction commits.
        """
        if self.readonly:
            raise MonitorError(f"the database at {self.path} was opened read-only")
        if self._depth:
            yield from self._savepoint()
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self.db.rollback()
            raise
        else:
            self.db.commit()
        finally:
            self._depth = 0

    def _savepoint(self) -> Iterator[None]:
        name = f"nested_{self._depth}"
        self.db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self.db.execute(f"ROLLBACK TO {name}")
            self.db.execute(f"RELEASE {name}")
            raise
        else:
            self.db.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    @property
    def in_transaction(self) -> bool:
        """Whether a write transaction of this Store is open (some writes must be part of one)."""
        return self._depth > 0

    @reads_database
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value])


class StoreThread:
    """Owns a Store on one dedicated thread; async callers submit work to it.

    SQLite connections belong to the thread that made them, so every call,
    the open included, runs on the executor's single worker. The open is
    awaited in the constructor so that a bad path fails right there with
    its own MonitorError rather than as a broken pool later.
    """

    def __init__(self, path: Path | str | DatabaseURL) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-store")
        self._closed = False
        try:
            self._store = self._executor.submit(Store.open, path).result()
        except BaseException:
            self._executor.shutdown()
            raise

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn(store, *args, **kwargs) on the owner thread and await its result."""
        future = self._executor.submit(fn, self._store, *args, **kwargs)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self._store.close).result()
        self._executor.shutdown()
