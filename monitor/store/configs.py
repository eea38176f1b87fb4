"""The cluster's config folder as versions in the database (`monitor config push`).

Each push that changes something is a new version (1, 2, ...) holding the folder's
files by name; the newest is what every worker runs. On PostgreSQL a push also
NOTIFYs the `monitor_config` channel when it commits, which every worker LISTENs
to. Every function takes the `Store` first and deals in plain data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from monitor.config.paths import DatabaseURL
from monitor.store.database import Store
from monitor.store.values import reads_database, to_text

CHANNEL = "monitor_config"


def push(store: Store, files: dict[str, str], digest: str, *, now: datetime, source: str) -> tuple[int, bool]:
    """Store FILES as the newest version unless it holds them already: (version, whether new)."""
    with store.transaction():
        row = store.db.execute(
            "SELECT version, digest FROM config_versions ORDER BY version DESC LIMIT 1").fetchone()
        if row is not None and row[1] == digest:
            return row[0], False
        version = 1 if row is None else row[0] + 1
        store.db.execute(
            "INSERT INTO config_versions (version, digest, files, pushed_at, pushed_from) VALUES (?, ?, ?, ?, ?)",
            [version, digest, json.dumps(files, ensure_ascii=False), to_text(now), source])
        if store.dialect == "postgresql":
            store.db.execute("SELECT pg_notify(?, ?)", [CHANNEL, str(version)])
    return version, True


@reads_database
def latest(store: Store) -> dict[str, Any] | None:
    """The newest version: version, digest, files (name -> text), pushed_at, pushed_from; or None."""
    row = next(iter(store.db.query(
        "SELECT version, digest, files, pushed_at, pushed_from FROM config_versions "
        "ORDER BY version DESC LIMIT 1")), None)
    return None if row is None else {**row, "files": json.loads(row["files"])}


async def pushes(location: DatabaseURL) -> AsyncIterator[None]:
    """Yield once at once, then at every pushed version (LISTEN on CHANNEL); psycopg.Error when
    the connection is lost, and the caller listens again."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(location.url, autocommit=True) as conn:
        await conn.execute(f"LISTEN {CHANNEL}")
        yield  # listening: whatever was pushed before is read now, nothing after is missed
        async for _ in conn.notifies():
            yield
