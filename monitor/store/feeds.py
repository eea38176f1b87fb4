"""The feeds table and the fetch log: what the config watches, and what each poll did.

Methods of `Store` (monitor.store.database), written here as a mixin.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from monitor.errors import MonitorError
from monitor.models import FeedConfig, FeedState
from monitor.store.values import checked, from_text, reads_database, to_text
from monitor.urls import strip_userinfo

STATUSES = frozenset({"new", "ok", "error", "gone", "removed", "paused"})

# Feed columns a poll may write (record_poll / save_poll `state`).
POLL_STATE_COLUMNS = frozenset({
    "url", "status", "etag", "last_modified", "body_hash", "last_success",
    "last_attempt", "last_error", "last_error_kind", "consecutive_errors",
    "next_poll", "retry_after", "baselined", "title", "match_warning", "moved_to",
})
FETCH_LOG_COLUMNS = frozenset({
    "at", "outcome", "status", "bytes", "duration", "error_kind", "error",
    "entries_new", "entries_updated",
})
# Validators belong to a URL; backoff belongs to the failures of that URL.
URL_CHANGE_RESET = {
    "etag": None, "last_modified": None, "body_hash": None,
    "consecutive_errors": 0, "next_poll": None, "retry_after": None,
    "baselined": 0, "match_warning": None, "moved_to": None,
}


class FeedRows:
    """The feeds and fetch_log tables' part of Store (which opens `db` and
    the transactions)."""

    db: Database

    def _feed_id(self, name: str) -> int:
        row = self.db.execute("SELECT id FROM feeds WHERE name = ?", [name]).fetchone()
        if row is None:
            raise MonitorError(f"no feed named {name!r} in the database")
        return row[0]

    def _update_feed(self, feed_id: int, columns: dict[str, Any]) -> None:
        if columns:
            sets = ", ".join(f"{column} = :{column}" for column in columns)
            self.db.execute(f"UPDATE feeds SET {sets} WHERE id = :_id", {**columns, "_id": feed_id})

    def sync_feeds(self, feeds: Sequence[FeedConfig], now: datetime) -> None:
        """Make the feeds table follow the config: add, rename, remove, restore, re-point."""
        wanted = {feed.name for feed in feeds}
        # Credentials in a feed URL stay in the config; the fetch sends them as a header.
        urls = {feed.name: strip_userinfo(feed.url) for feed in feeds}
        with self.transaction():
            rows = {row["name"]: row for row in self.db.query("SELECT * FROM feeds")}
            orphans = [row for name, row in rows.items() if name not in wanted]
            for feed in feeds:
                url = urls[feed.name]
                row = rows.get(feed.name) or self._claim_renamed(orphans, url)
                if row is None:
                    self.db.execute(
                        "INSERT INTO feeds (name, url, config_url, created) VALUES (?, ?, ?, ?)",
                        [feed.name, url, url, to_text(now)])
                else:
                    self._update_feed(row["id"], self._reconciled(row, feed.name, url))
            for row in orphans:
                if row["status"] != "removed":
                    self._update_feed(row["id"], {
                        "status": "removed", "status_before_removal": row["status"],
                        "removed_at": to_text(now)})

    @staticmethod
    def _claim_renamed(orphans: list[dict[str, Any]], url: str) -> dict[str, Any] | None:
        """A feed row that left the config with this URL: prefer one renamed just now."""
        candidates = [row for row in orphans if row["config_url"] == url]
        if not candidates:
            return None
        row = max(candidates, key=lambda r: (r["status"] != "removed", r["removed_at"] or "", r["id"]))
        orphans.remove(row)
        return row

    @staticmethod
    def _reconciled(row: dict[str, Any], name: str, url: str) -> dict[str, Any]:
        changes: dict[str, Any] = {"name": name}
        status = row["status"]
        if status == "removed":
            status = row["status_before_removal"] or "new"
            changes.update(status=status, status_before_removal=None, removed_at=None)
        if row["config_url"] != url:
            # A new URL is a new source: fresh validators, no backoff, and its
            # backlog is a baseline rather than a burst of alerts.
            changes.update(URL_CHANGE_RESET, url=url, config_url=url)
            changes["status"] = "paused" if status == "paused" else "new"
        return changes

    @reads_database
    def feed_state(self, name: str) -> FeedState | None:
        rows = list(self.db.query("SELECT * FROM feeds WHERE name = ?", [name]))
        return _feed_state(rows[0]) if rows else None

    @reads_database
    def feed_states(self, *, include_removed: bool = False) -> list[FeedState]:
        where = "" if include_removed else "WHERE status != 'removed'"
        return [_feed_state(row) for row in self.db.query(f"SELECT * FROM feeds {where} ORDER BY name")]

    def set_feed_status(self, name: str, status: str) -> None:
        """Pause, resume or reset a feed; 'removed' belongs to sync_feeds alone."""
        if status not in STATUSES - {"removed"}:
            raise ValueError(f"cannot set feed status to {status!r}")
        with self.transaction():
            self._update_feed(self._feed_id(name), {"status": status})

    def reset_feed(self, name: str) -> None:
        """Clear errors, backoff, Retry-After and a 410 "gone" mark; the baseline stays,
        so stories already seen are not new again. A paused feed stays paused."""
        with self.transaction():
            feed_id = self._feed_id(name)
            self.db.execute(
                "UPDATE feeds SET consecutive_errors = 0, last_error = NULL, last_error_kind = NULL, "
                "retry_after = NULL, next_poll = NULL, status = CASE WHEN status = 'paused' "
                "THEN 'paused' WHEN baselined != 0 THEN 'ok' ELSE 'new' END WHERE id = ?", [feed_id])

    def record_poll(self, name: str, state: dict, log: dict, *, keep: int) -> None:
        """A poll that stored no stories (304, unchanged body, error): state and log only.

        `log` must hold `at`; datetimes in both dicts are aware UTC.
        """
        self.record_polls([(name, state, log, keep)])

    def record_polls(self, polls: Sequence[tuple[str, dict, dict, int]]) -> None:
        """record_poll for each (name, state, log, keep) of POLLS, in one transaction
        (monitor.store.batch groups the polls that finish together)."""
        with self.transaction():
            for name, state, log, keep in polls:
                feed_id = self._feed_id(name)
                self._save_state(feed_id, state)
                self._append_log(feed_id, log, keep)

    def _save_state(self, feed_id: int, state: dict) -> None:
        columns = checked(state, POLL_STATE_COLUMNS, "feed state")
        status = columns.pop("status", None)
        self._update_feed(feed_id, columns)
        if status is not None:
            # Removal and pausing are the user's decisions: a poll that was
            # already running when they were made must not undo them.
            self.db.execute(
                "UPDATE feeds SET status = ? WHERE id = ? AND status NOT IN ('removed', 'paused')",
                [status, feed_id])

    def _append_log(self, feed_id: int, log: dict, keep: int) -> None:
        row = checked(log, FETCH_LOG_COLUMNS, "fetch log")
        if row.get("at") is None:
            raise ValueError("a fetch log row needs 'at'")
        row["feed_id"] = feed_id
        values = ", ".join(":" + name for name in row)
        self.db.execute(f"INSERT INTO fetch_log ({', '.join(row)}) VALUES ({values})", row)
        self.db.execute(
            "DELETE FROM fetch_log WHERE feed_id = ? AND id NOT IN "
            "(SELECT id FROM fetch_log WHERE feed_id = ? ORDER BY id DESC LIMIT ?)",
            [feed_id, feed_id, keep])

    @reads_database
    def fetch_log(self, name: str, limit: int = 20) -> list[dict]:
        """The feed's latest fetches, newest first."""
        return list(self.db.query(
            "SELECT id, at, outcome, status, bytes, duration, error_kind, error, entries_new, "
            "entries_updated FROM fetch_log WHERE feed_id = ? ORDER BY id DESC LIMIT ?",
            [self._feed_id(name), limit]))


def _feed_state(row: dict[str, Any]) -> FeedState:
    return FeedState(
        id=row["id"], name=row["name"], url=row["url"], status=row["status"],
        etag=row["etag"], last_modified=row["last_modified"], body_hash=row["body_hash"],
        last_success=from_text(row["last_success"]),
        last_attempt=from_text(row["last_attempt"]),
        last_error=row["last_error"], last_error_kind=row["last_error_kind"],
        consecutive_errors=row["consecutive_errors"],
        next_poll=from_text(row["next_poll"]), retry_after=from_text(row["retry_after"]),
        baselined=bool(row["baselined"]),
        match_warning=row.get("match_warning"), moved_to=row.get("moved_to"),
    )
