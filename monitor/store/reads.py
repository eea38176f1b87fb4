"""The read queries of `monitor status` and `monitor report`: counts and rows since a time.

What they mean (today's counts, one story per set of copies, the report's
tables) is worked out in monitor.read; these only fetch plain rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.store.database import Store
from monitor.store.values import to_text


def stories_since(store: Store, since: datetime) -> int:
    """Stories first seen since SINCE."""
    return store.db.execute("SELECT COUNT(*) FROM entries WHERE first_seen >= ?",
                            [to_text(since)]).fetchone()[0]


def matches_since(store: Store, since: datetime) -> tuple[int, int]:
    """(matches, matched stories) recorded since SINCE."""
    found = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT entry_id) FROM matches WHERE created >= ?",
                             [to_text(since)]).fetchone()
    return found[0], found[1]


def sent_since(store: Store, since: datetime) -> int:
    """Alerts sent since SINCE."""
    return store.db.execute("SELECT COUNT(*) FROM alerts WHERE status = 'sent' AND sent_at >= ?",
                            [to_text(since)]).fetchone()[0]


def stories_sent_since(store: Store, since: datetime) -> list[tuple[str | None, str]]:
    """(url, title) of the distinct stories an alert was sent for since SINCE."""
    return [tuple(row) for row in store.db.execute(
        "SELECT DISTINCT e.url, e.title FROM alerts a JOIN entries e ON e.id = a.entry_id "
        "WHERE a.status = 'sent' AND a.sent_at >= ?", [to_text(since)]).fetchall()]


def also_reported_since(store: Store, since: datetime) -> list[tuple[str, str, str]]:
    """(title, feed, also_reported_by JSON) of the story alerts created since SINCE that name
    copies from other outlets, newest first (one row per destination)."""
    if store.dialect == "postgresql":
        copies = "payload::json -> 'also_reported_by'"
        fields = f"payload::json ->> 'title', payload::json ->> 'feed', ({copies})::text"
        count = f"CASE WHEN json_typeof({copies}) = 'array' THEN json_array_length({copies}) ELSE 0 END"
    else:
        fields = ("json_extract(payload, '$.title'), json_extract(payload, '$.feed'), "
                  "json_extract(payload, '$.also_reported_by')")
        count = "json_array_length(payload, '$.also_reported_by')"
    return [tuple(row) for row in store.db.execute(
        f"SELECT {fields} FROM alerts WHERE kind IN ('match', 'update') AND created >= ? "
        f"AND {count} > 0 ORDER BY id DESC", [to_text(since)]).fetchall()]


def matches_between(store: Store, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """The matches recorded between SINCE and UNTIL with their story and outlet, oldest first."""
    return list(store.db.query(
        "SELECT m.entry_id, m.rule, m.score, m.created, m.muted_at, f.name AS feed, e.title, e.url, "
        "e.first_seen FROM matches m JOIN entries e ON e.id = m.entry_id "
        "JOIN feeds f ON f.id = e.feed_id WHERE m.created >= ? AND m.created <= ? ORDER BY m.id",
        [to_text(since), to_text(until)]))
