"""The cluster's tables and queries: the nodes (`monitor worker` processes) with their
heartbeats, the duties one node at a time performs, and the depth of procrastinate's job
queue (in the same PostgreSQL database). Every function takes the `Store` first and deals
in plain data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.store.database import Store
from monitor.store.values import reads_database, to_text


def beat(store: Store, *, name: str, kind: str, host: str, pid: int, started: datetime, now: datetime,
         config_version: str | None) -> None:
    """Record that node NAME is alive NOW, running CONFIG_VERSION."""
    with store.transaction():
        store.db.execute(
            "INSERT INTO nodes (name, kind, host, pid, started, heartbeat, config_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
            "host = excluded.host, pid = excluded.pid, started = excluded.started, "
            "heartbeat = excluded.heartbeat, config_version = excluded.config_version",
            [name, kind, host, pid, to_text(started), to_text(now), config_version])


def leave(store: Store, name: str) -> None:
    """Node NAME stopped on purpose: it is no longer listed."""
    with store.transaction():
        store.db.execute("DELETE FROM nodes WHERE name = ?", [name])


# The cluster's one-at-a-time duties, as session advisory locks. The server drops a
# session's locks with its connection, so the duty of a killed worker passes to the next
# one at once; a job lock of procrastinate would hold until the worker counted as stalled.
DISPATCH_DUTY = 0x6D6F6E70  # "monp": deferring the polls of due feeds
DELIVER_DUTY = 0x6D6F6E73  # "mons": sending the outbox's due alerts


def take_duty(store: Store, duty: int) -> bool:
    """Whether this node's connection now holds DUTY (False: another node performs it)."""
    return bool(store.db.execute("SELECT pg_try_advisory_lock(?)", [duty]).fetchone()[0])


def end_duty(store: Store, duty: int) -> None:
    """Let another node take DUTY."""
    store.db.execute("SELECT pg_advisory_unlock(?)", [duty])


@reads_database
def nodes(store: Store) -> list[dict[str, Any]]:
    """Every node that has beaten, newest heartbeat first."""
    return list(store.db.query(
        "SELECT name, kind, host, pid, started, heartbeat, config_version FROM nodes ORDER BY heartbeat DESC, name"))


@reads_database
def job_queue(store: Store) -> dict[str, Any] | None:
    """Jobs waiting and running by task, and when the oldest waiting one was deferred;
    None where there is no job queue (SQLite, or no worker has started yet)."""
    if store.dialect != "postgresql" or store.db.execute(
            "SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is None:
        return None
    counts = {(task, status): count for task, status, count in store.db.execute(
        "SELECT task_name, status::text, count(*) FROM procrastinate_jobs "
        "WHERE status IN ('todo', 'doing') GROUP BY 1, 2").fetchall()}
    oldest = store.db.execute(
        "SELECT min(e.at) FROM procrastinate_jobs j JOIN procrastinate_events e "
        "ON e.job_id = j.id AND e.type = 'deferred' WHERE j.status = 'todo'").fetchone()[0]
    return {"waiting": sum(n for (_, status), n in counts.items() if status == "todo"),
            "running": sum(n for (_, status), n in counts.items() if status == "doing"),
            "polls_waiting": counts.get(("monitor.poll_feed", "todo"), 0),
            "oldest_waiting_since": oldest}
