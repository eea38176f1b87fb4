"""The alerts outbox's tables and queries: alerts, alert_rules, alert_keys.

What to alert, when and to whom is decided in monitor.alert (planning,
routing, dispatch); this module only reads and writes rows, taking and
returning plain data. Payloads are the JSON text the alert side writes.
Every function takes the `Store` first and runs on its owner thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.store.database import Store
from monitor.store.values import from_text, to_text

RETRYABLE = ("pending", "failed")


# --------------------------------------------------------------------------
# what the planner reads and writes
# --------------------------------------------------------------------------


def recent_immediate_stories(store: Store, destination: str, since: datetime) -> int:
    """Stories alerted at once to DESTINATION since SINCE (its flood guard's count)."""
    return store.db.execute(
        "SELECT COUNT(DISTINCT entry_id) FROM alerts WHERE destination = ? AND created >= ? "
        "AND delivery = 'immediate' AND status != 'duplicate' AND kind IN ('match', 'update')",
        [destination, to_text(since)]).fetchone()[0]


def held_alert(store: Store, entry_id: int, destination: str,
               now: datetime) -> tuple[int, str, str, str] | None:
    """(id, kind, payload, due_at) of the story's alert to DESTINATION that is still held
    (not tried, due later), the newest; None if there is none."""
    row = store.db.execute(
        "SELECT id, kind, payload, due_at FROM alerts WHERE entry_id = ? AND destination = ? "
        "AND status = 'pending' AND attempts = 0 AND due_at > ? AND kind IN ('match', 'update') "
        "ORDER BY id DESC LIMIT 1", [entry_id, destination, to_text(now)]).fetchone()
    return None if row is None else tuple(row)


def insert_alert(store: Store, *, kind: str, entry_id: int, match_id: int, rule: str, destination: str,
                 status: str, delivery: str, reason: str | None, due_at: datetime, created: datetime,
                 copy_of: int | None, payload: str) -> int | None:
    """A story's alert row; None when (story, rule, destination) already has one."""
    row = store.db.execute(
        "INSERT INTO alerts (kind, entry_id, match_id, rule, destination, status, delivery, "
        "reason, due_at, created, copy_of, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (entry_id, rule, destination) DO NOTHING RETURNING id",
        [kind, entry_id, match_id, rule, destination, status, delivery, reason, to_text(due_at),
         to_text(created), copy_of, payload]).fetchone()
    return None if row is None else row[0]


def add_alert_rules(store: Store, alert_id: int, rules: Sequence[tuple[int, str]]) -> None:
    """Record that the alert names these (match id, rule)s."""
    store.db.conn.executemany("INSERT INTO alert_rules (alert_id, match_id, rule) VALUES (?, ?, ?)",
                              [(alert_id, match_id, rule) for match_id, rule in rules])


def add_alert_keys(store: Store, alert_id: int, destination: str, keys: Sequence[str],
                   now: datetime) -> None:
    """The story keys by which later copies of the story find this alert."""
    store.db.conn.executemany("INSERT INTO alert_keys (key, destination, alert_id, created) "
                              "VALUES (?, ?, ?, ?)",
                              [(key, destination, alert_id, to_text(now)) for key in keys])


def story_matches(store: Store, entry_id: int) -> list[dict[str, Any]]:
    """The story's matches not muted as false positives, oldest first, JSON decoded."""
    return [{**row, "tags": json.loads(row["tags"]), "hits": json.loads(row["hits"])}
            for row in store.db.query(
                "SELECT id, rule, score, severity, tags, hits, snippet FROM matches "
                "WHERE entry_id = ? AND muted_at IS NULL ORDER BY id", [entry_id])]


def alerted_rules(store: Store, entry_id: int, destination: str) -> set[str]:
    """The rules of this story already named to this destination (sent or not)."""
    return {row[0] for row in store.db.execute(
        "SELECT r.rule FROM alert_rules r JOIN alerts a ON a.id = r.alert_id "
        "WHERE a.entry_id = ? AND a.destination = ?", [entry_id, destination])}


def original_alert(store: Store, keys: Sequence[str], destination: str, entry_id: int,
                   since: datetime) -> int | None:
    """The alert this destination already has, since SINCE, for a story holding one of KEYS
    from another entry."""
    if not keys:
        return None
    marks = ", ".join("?" * len(keys))
    row = store.db.execute(
        f"SELECT k.alert_id FROM alert_keys k JOIN alerts a ON a.id = k.alert_id "
        f"WHERE k.key IN ({marks}) AND k.destination = ? AND k.created >= ? AND a.entry_id != ? "
        f"ORDER BY k.alert_id LIMIT 1",
        [*keys, destination, to_text(since), entry_id]).fetchone()
    return None if row is None else row[0]


def alert_payload(store: Store, alert_id: int) -> str:
    return store.db.execute("SELECT payload FROM alerts WHERE id = ?", [alert_id]).fetchone()[0]


def set_payload(store: Store, alert_id: int, payload: str) -> None:
    store.db.execute("UPDATE alerts SET payload = ? WHERE id = ?", [payload, alert_id])


def reschedule(store: Store, alert_id: int, due_at: datetime, delivery: str, reason: str | None) -> None:
    store.db.execute("UPDATE alerts SET due_at = ?, delivery = ?, reason = ? WHERE id = ?",
                     [to_text(due_at), delivery, reason, alert_id])


# --------------------------------------------------------------------------
# health alerts
# --------------------------------------------------------------------------


def insert_health(store: Store, destinations: Sequence[str], event: str, payload: str,
                  now: datetime) -> None:
    """One due feed-health alert per destination, in one transaction."""
    with store.transaction():
        for destination in destinations:
            store.db.execute(
                "INSERT INTO alerts (kind, rule, destination, status, delivery, reason, due_at, "
                "created, payload) VALUES ('health', NULL, ?, 'pending', 'immediate', ?, ?, ?, ?)",
                [destination, event, to_text(now), to_text(now), payload])


# --------------------------------------------------------------------------
# what the dispatcher reads and writes
# --------------------------------------------------------------------------


def due_alerts(store: Store, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Alerts whose time has come, oldest first."""
    return list(store.db.query(
        "SELECT id, kind, rule, destination, delivery, attempts, first_attempt_at, payload, "
        "created, possible_duplicate FROM alerts WHERE status IN ('pending', 'failed') AND due_at <= ? "
        "ORDER BY due_at, id LIMIT ?", [to_text(now), limit]))


def next_pending(store: Store) -> datetime | None:
    """When the next not-yet-tried alert falls due (retries of failed ones are not counted)."""
    row = store.db.execute("SELECT MIN(due_at) FROM alerts WHERE status = 'pending'").fetchone()
    return from_text(row[0]) if row and row[0] else None


def start_sending(store: Store, ids: Sequence[int], now: datetime) -> None:
    """Note that a send of IDS begins; a send begun before and never recorded (its sender
    died mid-send) makes this one a possible duplicate."""
    with store.transaction():
        store.db.conn.executemany(
            "UPDATE alerts SET possible_duplicate = CASE WHEN sending_since IS NULL THEN possible_duplicate "
            "ELSE 1 END, sending_since = ? WHERE id = ?", [(to_text(now), i) for i in ids])


def mark_sent(store: Store, ids: Sequence[int], now: datetime, *, possible_duplicate: bool = False) -> None:
    with store.transaction():
        store.db.conn.executemany(
            "UPDATE alerts SET status = 'sent', sent_at = ?, last_attempt_at = ?, sending_since = NULL, "
            "attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?), "
            "last_error = NULL, possible_duplicate = CASE WHEN ? = 1 THEN 1 ELSE possible_duplicate END WHERE id = ? "
            "AND status != 'muted'",
            [(to_text(now), to_text(now), to_text(now), int(possible_duplicate), i) for i in ids])


def attempts(store: Store, alert_id: int) -> tuple[int, datetime | None]:
    """How often the alert was tried, and when first."""
    tried, first = store.db.execute(
        "SELECT attempts, first_attempt_at FROM alerts WHERE id = ?", [alert_id]).fetchone()
    return tried, from_text(first)


def record_failure(store: Store, alert_id: int, *, due: datetime | None, first_attempt: datetime,
                   now: datetime, error: str, possible_duplicate: bool) -> None:
    """A failed try: retried at DUE, or dead when DUE is None (a muted alert stays muted)."""
    store.db.execute(
        "UPDATE alerts SET status = ?, due_at = COALESCE(?, due_at), attempts = attempts + 1, "
        "first_attempt_at = ?, last_attempt_at = ?, last_error = ?, sending_since = NULL, "
        "possible_duplicate = CASE WHEN ? = 1 THEN 1 ELSE possible_duplicate END WHERE id = ? AND status != 'muted'",
        ["dead" if due is None else "failed", to_text(due), to_text(first_attempt), to_text(now),
         error[:500], int(possible_duplicate), alert_id])


def cancel(store: Store, ids: Sequence[int], reason: str, now: datetime) -> int:
    """Alerts that can never go out (their destination was removed) stop being retried."""
    with store.transaction():
        store.db.conn.executemany(
            "UPDATE alerts SET status = 'cancelled', last_attempt_at = ?, last_error = ? "
            "WHERE id = ? AND status IN ('pending', 'failed')",
            [(to_text(now), reason[:500], alert_id) for alert_id in ids])
    return len(ids)


def retry(store: Store, ids: Sequence[int] | None, now: datetime) -> int:
    """Failed and dead alerts (all, or these ids) become due now with a fresh age."""
    where = "status IN ('failed', 'dead')"
    args: list[Any] = [to_text(now)]
    if ids is not None:
        where += f" AND id IN ({', '.join('?' * len(ids))})"
        args.extend(ids)
    with store.transaction():
        return store.db.execute(
            f"UPDATE alerts SET status = 'pending', due_at = ?, first_attempt_at = NULL, "
            f"attempts = 0 WHERE {where}", args).rowcount


# --------------------------------------------------------------------------
# listing, counting, muting
# --------------------------------------------------------------------------


def alert_rows(store: Store, statuses: Sequence[str] | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Alert rows newest first, with their payload as stored."""
    where, args = "", []
    if statuses:
        where = f"WHERE status IN ({', '.join('?' * len(statuses))})"
        args = list(statuses)
    return list(store.db.query(
        f"SELECT id, kind, entry_id, rule, destination, status, delivery, reason, due_at, created, "
        f"attempts, last_error, sent_at, possible_duplicate, copy_of, payload FROM alerts {where} "
        f"ORDER BY id DESC LIMIT ?", [*args, limit]))


def counts(store: Store) -> dict[str, int]:
    """Alerts by status."""
    return dict(store.db.execute("SELECT status, COUNT(*) FROM alerts GROUP BY status").fetchall())


def open_alerts_naming(store: Store, match_id: int) -> list[tuple[int, str, str]]:
    """(alert id, payload, rule) of the pending and failed alerts that name the match."""
    return [tuple(row) for row in store.db.execute(
        "SELECT a.id, a.payload, r.rule FROM alerts a JOIN alert_rules r ON r.alert_id = a.id "
        "WHERE r.match_id = ? AND a.status IN (?, ?)", [match_id, *RETRYABLE]).fetchall()]


def mute_alert(store: Store, alert_id: int, reason: str) -> int:
    return store.db.execute("UPDATE alerts SET status = 'muted', reason = ? WHERE id = ?",
                            [reason, alert_id]).rowcount
