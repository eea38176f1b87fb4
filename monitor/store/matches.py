"""Reading stored matches and stories back, and the triage marks a person sets on matches.

Rows come back as stored (JSON columns as text); monitor.read.search decodes
and presents them. Every function takes the `Store` first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.store.database import Store
from monitor.store.values import reads_database, to_text

_MATCH_COLUMNS = (
    "m.entry_id AS id, m.id AS match_id, m.rule, m.score, m.severity, m.tags, m.hits, m.snippet, "
    "m.entry_version, m.created, m.muted_at, m.mute_reason, m.hits_omitted, f.name AS feed, "
    "e.title, e.url, e.published, e.first_seen, e.version")
_MATCHES = "FROM matches m JOIN entries e ON e.id = m.entry_id JOIN feeds f ON f.id = e.feed_id"


def match_rows(store: Store, *, since: datetime | None, rule: str | None, feed: str | None,
               limit: int | None, language: str | None, severity: str | None,
               triage: str) -> list[dict[str, Any]]:
    """Stored matches newest first (by when they were recorded), filtered; `id` is the story's.
    TRIAGE: "open", "relevant", "false_positive" or "all"."""
    return list(store.db.query(
        f"SELECT {_MATCH_COLUMNS} {_MATCHES} WHERE (:since IS NULL OR m.created >= :since) "
        "AND (:rule IS NULL OR m.rule = :rule) AND (:feed IS NULL OR f.name = :feed) "
        "AND (:language IS NULL OR e.language = :language OR e.language LIKE :language || '-%') "
        "AND (:severity IS NULL OR m.severity = :severity) "
        "AND (:triage = 'all' OR (:triage = 'open' AND m.muted_at IS NULL AND m.reviewed_at IS NULL) "
        "  OR (:triage = 'relevant' AND m.reviewed_at IS NOT NULL AND m.muted_at IS NULL) "
        "  OR (:triage = 'false_positive' AND m.muted_at IS NOT NULL)) "
        "ORDER BY m.created DESC, m.id DESC" + ("" if limit is None else " LIMIT :limit"),
        {"since": to_text(since), "rule": rule, "feed": feed, "language": language,
         "severity": severity, "triage": triage, "limit": limit}))


@reads_database
def match_facets(store: Store) -> dict[str, list[str]]:
    """The rules, feeds and languages that have matches: the choices of a filter form."""
    def column(sql: str) -> list[str]:
        return [row[0] for row in store.db.execute(sql).fetchall() if row[0]]

    return {
        "rules": column("SELECT DISTINCT rule FROM matches ORDER BY rule"),
        "feeds": column(f"SELECT DISTINCT f.name {_MATCHES} ORDER BY f.name"),
        "languages": column("SELECT DISTINCT e.language FROM matches m JOIN entries e "
                            "ON e.id = m.entry_id ORDER BY e.language"),
    }


def latest_matches(store: Store, limit: int) -> list[dict[str, Any]]:
    """The newest matched stories with their outlet and matches, for the matches Atom feed:
    `matches` is a JSON array of {rule, score, severity, hits, snippet}. A match marked a
    false positive is left out (as the report leaves it uncounted), and so is a story
    whose every match is."""
    return list(store.db.query(
        "SELECT m.entry_id, MAX(m.created) AS created, e.feed_id, e.guid, e.title, e.url, "
        "e.published, f.name AS feed, json_group_array(json_object('rule', m.rule, "
        "'score', m.score, 'severity', m.severity, 'hits', json(m.hits), 'snippet', m.snippet)) "
        f"AS matches {_MATCHES} WHERE m.muted_at IS NULL GROUP BY m.entry_id "
        "ORDER BY MAX(m.created) DESC, m.entry_id DESC LIMIT ?", [limit]))


def stored_rule_names(store: Store) -> list[str]:
    """Every rule that has a stored match, for telling a typo from a quiet rule."""
    return [row[0] for row in store.db.execute("SELECT DISTINCT rule FROM matches ORDER BY rule")]


def muted_match_rows(store: Store, since: datetime | None) -> list[dict[str, Any]]:
    """Matches marked false positives, of stories first seen since SINCE, most recently muted first."""
    return list(store.db.query(
        f"SELECT {_MATCH_COLUMNS} {_MATCHES} WHERE m.muted_at IS NOT NULL "
        "AND (:since IS NULL OR e.first_seen >= :since) ORDER BY m.muted_at DESC, m.id DESC",
        {"since": to_text(since)}))


def story_row(store: Store, entry_id: int) -> dict[str, Any] | None:
    """One story with its text; None when there is no such story."""
    rows = list(store.db.query(
        "SELECT e.id, f.name AS feed, e.guid, e.url, e.title, e.summary, e.content, e.language, "
        "e.published, e.updated, e.first_seen, e.last_seen, e.updated_at, e.version, e.authors, "
        "e.tags, e.match_skipped FROM entries e JOIN feeds f ON f.id = e.feed_id WHERE e.id = ?",
        [entry_id]))
    return rows[0] if rows else None


def story_match_rows(store: Store, entry_id: int) -> list[dict[str, Any]]:
    return list(store.db.query(f"SELECT {_MATCH_COLUMNS} {_MATCHES} WHERE m.entry_id = ? ORDER BY m.id",
                               [entry_id]))


def _alert_rules(store: Store) -> str:
    """The rule names an alert named, sorted and joined by ", " (each engine has its aggregate)."""
    if store.dialect == "postgresql":
        return "(SELECT string_agg(rule, ', ' ORDER BY rule) FROM alert_rules WHERE alert_id = a.id)"
    return ("(SELECT group_concat(rule, ', ') FROM "
            "(SELECT rule FROM alert_rules WHERE alert_id = a.id ORDER BY rule))")


def story_alert_rows(store: Store, entry_id: int) -> list[dict[str, Any]]:
    """The story's alerts with their delivery status; `rules`: the rules each one named."""
    return list(store.db.query(
        "SELECT a.id, a.match_id, a.rule, a.kind, a.destination, a.status, a.delivery, a.reason, "
        "a.due_at, a.created, a.attempts, a.last_attempt_at, a.sent_at, a.last_error, "
        f"a.possible_duplicate, a.copy_of, {_alert_rules(store)} AS rules FROM alerts a "
        "WHERE a.entry_id = ? ORDER BY a.id",
        [entry_id]))


# --------------------------------------------------------------------------
# triage marks
# --------------------------------------------------------------------------


def story_exists(store: Store, entry_id: int) -> bool:
    return store.db.execute("SELECT 1 FROM entries WHERE id = ?", [entry_id]).fetchone() is not None


def match_marks(store: Store, entry_id: int) -> list[tuple[int, str, str | None]]:
    """(match id, rule, muted_at) of the story's matches, oldest first."""
    return [tuple(row) for row in store.db.execute(
        "SELECT id, rule, muted_at FROM matches WHERE entry_id = ? ORDER BY id", [entry_id]).fetchall()]


def mute_match(store: Store, match_id: int, now: datetime, reason: str | None) -> None:
    """Mark a false positive; an earlier mark keeps its time, and its reason unless given one."""
    store.db.execute("UPDATE matches SET muted_at = COALESCE(muted_at, ?), "
                     "mute_reason = COALESCE(?, mute_reason) WHERE id = ?",
                     [to_text(now), reason, match_id])


def unmute_match(store: Store, match_id: int) -> None:
    store.db.execute("UPDATE matches SET muted_at = NULL, mute_reason = NULL WHERE id = ?", [match_id])


def mark_matches_relevant(store: Store, entry_id: int, now: datetime) -> int:
    """Confirm the story's matches as relevant, clearing a false-positive mark; how many."""
    with store.transaction():
        return store.db.execute(
            "UPDATE matches SET reviewed_at = COALESCE(reviewed_at, ?), muted_at = NULL, "
            "mute_reason = NULL WHERE entry_id = ?", [to_text(now), entry_id]).rowcount
