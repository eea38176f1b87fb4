"""Stories, their matches and tombstones: what a poll stores and what the readers list.

Methods of `Store` (monitor.store.database), written here as a mixin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from monitor.models import Entry, Match, StoredEntry, StoreResult
from monitor.store.values import chunks, from_text, marks, reads_database, to_json, to_text


class EntryRows:
    """The entries, matches and tombstones tables' part of Store (which opens `db` and
    the transactions)."""

    db: Database

    def classify(self, name: str, entries: Sequence[Entry]) -> list[tuple[Entry, str]]:
        """Label each entry new / updated / same / tombstoned; first of a duplicate guid wins."""
        feed_id = self._feed_id(name)
        unique = list({entry.guid: entry for entry in reversed(entries)}.values())[::-1]
        guids = [entry.guid for entry in unique]
        known = self._hashes(feed_id, guids, "entries")
        pruned = set(self._hashes(feed_id, [g for g in guids if g not in known], "tombstones"))

        def kind(entry: Entry) -> str:
            if entry.guid in known:
                return "same" if known[entry.guid] == entry.content_hash else "updated"
            return "tombstoned" if entry.guid in pruned else "new"

        return [(entry, kind(entry)) for entry in unique]

    def _hashes(self, feed_id: int, guids: Sequence[str], table: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in chunks(guids):
            found.update(self.db.execute(
                f"SELECT guid, content_hash FROM {table} WHERE feed_id = ? AND guid IN ({marks(len(chunk))})",
                [feed_id, *chunk]).fetchall())
        return found

    def save_poll(self, name: str, items: Sequence[tuple[Entry, str, bool, Sequence[Match]]],
                  now: datetime, state: dict, log: dict, *, keep: int,
                  unmatched: dict[str, str] | None = None) -> StoreResult:
        """Store one successful poll (stories, their matches, state, log) in ONE transaction.

        `items` are classify()'s labels plus alertable and the matches; the log's
        `at` defaults to `now` and its entry counts are filled in here. `unmatched`
        maps the guids of stories that were not matched (over their budget) to why:
        stored in the story. The result's `stored` lists what was written, for the
        alert planner, which the caller runs in the same transaction (the store knows
        nothing of alerting: monitor.ingest.storing).
        """
        counts = dict.fromkeys(("new", "updated", "unchanged", "new_for_alerting", "matched"), 0)
        seen: list[str] = []
        written: list[StoredEntry] = []
        with self.transaction():
            feed_id = self._feed_id(name)
            for entry, kind, alertable, matches in items:
                if kind == "new":
                    stored = self._insert_entry(feed_id, entry, alertable, now)
                    counts["new_for_alerting"] += bool(stored and alertable)
                elif kind == "updated":
                    stored = self._update_entry(feed_id, entry, now)
                else:
                    seen.append(entry.guid)
                    counts["unchanged"] += 1
                    continue
                if stored:
                    counts[kind] += 1
                    self.db.execute("UPDATE entries SET match_skipped = ? WHERE id = ?",
                                    [(unmatched or {}).get(entry.guid), stored[0]])
                    inserted = self._insert_matches(*stored, matches, now)
                    counts["matched"] += len(inserted)
                    written.append(StoredEntry(stored[0], entry, tuple(inserted),
                                               is_update=kind == "updated", alertable=alertable))
            self._touch(feed_id, seen, now)
            self._save_state(feed_id, state)
            self._append_log(feed_id, {"at": now, **log, "entries_new": counts["new"],
                                       "entries_updated": counts["updated"]}, keep)
        return StoreResult(**counts, stored=tuple(written))

    def _insert_entry(self, feed_id: int, entry: Entry, alertable: bool,
                      now: datetime) -> tuple[int, int] | None:
        """(entry id, version), or None when the guid is already stored."""
        row = {**_entry_columns(entry), "feed_id": feed_id, "guid": entry.guid,
               "first_seen": to_text(now), "last_seen": to_text(now), "alertable": int(alertable)}
        names = ", ".join(row)
        found = self.db.execute(
            f"INSERT INTO entries ({names}) VALUES ({', '.join(':' + n for n in row)}) "
            "ON CONFLICT (feed_id, guid) DO NOTHING RETURNING id, version", row).fetchone()
        return tuple(found) if found else None

    def _update_entry(self, feed_id: int, entry: Entry, now: datetime) -> tuple[int, int] | None:
        columns = _entry_columns(entry)
        sets = ", ".join(f"{column} = :{column}" for column in columns)
        found = self.db.execute(
            f"UPDATE entries SET {sets}, version = version + 1, updated_at = :now, last_seen = :now "
            "WHERE feed_id = :feed_id AND guid = :guid RETURNING id, version",
            {**columns, "now": to_text(now), "feed_id": feed_id, "guid": entry.guid}).fetchone()
        return tuple(found) if found else None

    def _insert_matches(self, entry_id: int, version: int, matches: Sequence[Match],
                        now: datetime) -> list[tuple[int, Match]]:
        """A rule matches an entry once: the first explanation is kept across updates.

        Returns the (match id, match) pairs inserted now, the ones that may alert.
        """
        inserted = []
        for match in matches:
            row = self.db.execute(
                "INSERT INTO matches (entry_id, rule, score, severity, tags, hits, snippet, "
                "entry_version, created, hits_omitted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (entry_id, rule) DO NOTHING RETURNING id",
                [entry_id, match.rule, match.score, match.severity, to_json(list(match.tags)),
                 to_json([asdict(hit) for hit in match.hits]), match.snippet, version,
                 to_text(now), match.hits_omitted]).fetchone()
            if row is not None:
                inserted.append((row[0], match))
        return inserted

    def _touch(self, feed_id: int, guids: Sequence[str], now: datetime) -> None:
        for chunk in chunks(guids):
            self.db.execute(
                f"UPDATE entries SET last_seen = ? WHERE feed_id = ? AND guid IN ({marks(len(chunk))})",
                [to_text(now), feed_id, *chunk])

    def prune(self, now: datetime, retention_seconds: float) -> int:
        """Drop stories unseen for `retention_seconds`, leaving tombstones; 0 keeps all."""
        if retention_seconds <= 0:
            return 0
        try:
            cutoff = to_text(now - timedelta(seconds=retention_seconds))
        except OverflowError:  # a retention longer than the calendar keeps everything
            return 0
        with self.transaction():
            self.db.execute(
                "INSERT INTO tombstones (feed_id, guid, content_hash, pruned_at) "
                "SELECT feed_id, guid, content_hash, ? FROM entries WHERE last_seen < ? "
                "ON CONFLICT (feed_id, guid) DO UPDATE SET content_hash = excluded.content_hash, "
                "pruned_at = excluded.pruned_at",
                [to_text(now), cutoff])
            return self.db.execute("DELETE FROM entries WHERE last_seen < ?", [cutoff]).rowcount

    @reads_database
    def list_stories(self, *, since: datetime | None = None, feed: str | None = None,
                     limit: int | None = None) -> list[dict]:
        """Stories newest first by first_seen; times are ISO 8601 UTC strings."""
        rows = self.db.query(
            "SELECT e.id, f.name AS feed, e.guid, e.url, e.title, e.summary, e.language, "
            "e.published, e.updated, e.first_seen, e.last_seen, e.updated_at, e.version, "
            "e.alertable, e.authors, e.tags "
            "FROM entries e JOIN feeds f ON f.id = e.feed_id "
            "WHERE (:since IS NULL OR e.first_seen >= :since) AND (:feed IS NULL OR f.name = :feed) "
            "ORDER BY e.first_seen DESC, e.id DESC" + ("" if limit is None else " LIMIT :limit"),
            {"since": to_text(since), "feed": feed, "limit": limit})
        return [_story(row) for row in rows]

    @reads_database
    def entry_counts(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT f.name, COUNT(e.id) FROM feeds f LEFT JOIN entries e ON e.feed_id = f.id "
            "GROUP BY f.id ORDER BY f.name")
        return dict(rows.fetchall())

    @reads_database
    def last_story_times(self) -> dict[str, datetime]:
        """feed name -> when its newest story was first seen (feeds with stories only)."""
        rows = self.db.execute("SELECT f.name, MAX(e.first_seen) FROM feeds f "
                               "JOIN entries e ON e.feed_id = f.id GROUP BY f.id")
        return {name: from_text(seen) for name, seen in rows.fetchall()}

    def iter_entries(self, *, since: datetime | None = None) -> Iterator[dict]:
        """Stored stories with their text, oldest first: the input of a backtest."""
        return self.db.query(
            "SELECT e.id, f.name AS feed, e.title, e.summary, e.content, e.language, e.first_seen "
            "FROM entries e JOIN feeds f ON f.id = e.feed_id "
            "WHERE (:since IS NULL OR e.first_seen >= :since) ORDER BY e.first_seen, e.id",
            {"since": to_text(since)})

    @reads_database
    def matched_rules(self, *, since: datetime | None = None) -> dict[int, set[str]]:
        """entry id -> the rules recorded as matching it, for entries first seen since."""
        rows = self.db.execute(
            "SELECT m.entry_id, m.rule FROM matches m JOIN entries e ON e.id = m.entry_id "
            "WHERE (? IS NULL OR e.first_seen >= ?)", [to_text(since), to_text(since)])
        found: dict[int, set[str]] = {}
        for entry_id, rule in rows:
            found.setdefault(entry_id, set()).add(rule)
        return found


def _entry_columns(entry: Entry) -> dict[str, Any]:
    return {
        "url": entry.url, "title": entry.title, "summary": entry.summary,
        "content": entry.content, "published": to_text(entry.published),
        "updated": to_text(entry.updated), "authors": to_json(list(entry.authors)),
        "tags": to_json(list(entry.tags)), "language": entry.language,
        "content_hash": entry.content_hash,
    }


def _story(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "authors": json.loads(row["authors"]), "tags": json.loads(row["tags"]),
            "alertable": bool(row["alertable"])}
