"""The state database: feeds' fetch state, stories, matches and a bounded fetch log.

The config folder says *what* is watched; this database only remembers what
happened. Feeds are keyed by an integer id, so a renamed feed keeps its
stories and a removed one can come back with its state.

A `Store` holds one SQLite connection, which belongs to the thread that
opened it (sqlite3 enforces this). The daemon gives all database work to one
`StoreThread`; the CLI opens its own read-only `Store` in another process,
which WAL mode lets it do while the daemon writes.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence, TypeVar

from sqlite_utils import Database, Migrations

from monitor.errors import MonitorError
from monitor.models import Entry, FeedConfig, FeedState, Match, RuleHit, StoreResult
from monitor.urls import strip_userinfo

T = TypeVar("T")


class AlertPlanner(Protocol):
    """Writes the outbox rows of new matches (monitor.alert.outbox.Planner)."""

    def plan(self, store: "Store", *, entry_id: int, entry: Entry,
             matches: Sequence[tuple[int, Match]], is_update: bool, now: datetime) -> int: ...

BUSY_TIMEOUT_MS = 5000
CHUNK = 500  # guids per IN (...) query, well under SQLite's variable limit
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

migrations = Migrations("monitor")


@migrations(name="0001_initial")
def _create_schema(db: Database) -> None:
    """All tables of the first release.

    `config_url` is the URL the config last gave; `url` is where the feed is
    fetched, which a permanent redirect may have moved on. Comparing the
    config with `config_url` tells a user's edit from a redirect.
    """
    db.executescript("""
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            config_url TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'new',
            status_before_removal TEXT,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            last_success TEXT,
            last_attempt TEXT,
            last_error TEXT,
            last_error_kind TEXT,
            consecutive_errors INTEGER NOT NULL DEFAULT 0,
            next_poll TEXT,
            retry_after TEXT,
            baselined INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            removed_at TEXT,
            title TEXT
        );
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            guid TEXT NOT NULL,
            url TEXT,
            title TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            content TEXT NOT NULL DEFAULT '',
            published TEXT,
            updated TEXT,
            authors TEXT NOT NULL DEFAULT '[]',
            tags TEXT NOT NULL DEFAULT '[]',
            language TEXT,
            content_hash TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            updated_at TEXT,
            version INTEGER NOT NULL DEFAULT 1,
            alertable INTEGER NOT NULL DEFAULT 0,
            UNIQUE (feed_id, guid)
        );
        CREATE INDEX entries_first_seen ON entries(first_seen);
        CREATE INDEX entries_url ON entries(url);
        CREATE INDEX entries_last_seen ON entries(last_seen);
        CREATE TABLE tombstones (
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            guid TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            pruned_at TEXT NOT NULL,
            UNIQUE (feed_id, guid)
        );
        CREATE TABLE matches (
            id INTEGER PRIMARY KEY,
            entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            rule TEXT NOT NULL,
            score REAL NOT NULL,
            severity TEXT NOT NULL,
            tags TEXT NOT NULL,
            hits TEXT NOT NULL,
            snippet TEXT NOT NULL,
            entry_version INTEGER NOT NULL,
            created TEXT NOT NULL,
            UNIQUE (entry_id, rule)
        );
        CREATE TABLE fetch_log (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            at TEXT NOT NULL,
            outcome TEXT,
            status INTEGER,
            bytes INTEGER,
            duration REAL,
            error_kind TEXT,
            error TEXT,
            entries_new INTEGER,
            entries_updated INTEGER
        );
        CREATE INDEX fetch_log_feed ON fetch_log(feed_id, id);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
    """)


# --------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------


@migrations(name="0002_alerts")
def _alerts(db: Database) -> None:
    """The durable outbox: one row per (story, rule, destination), written with the match.

    `payload` is a JSON snapshot of what the message shows, so an alert can be
    sent (or listed) without the config that made it; `copy_of` points a
    story carried by several outlets at the alert that went out for it.
    """
    db.executescript("""
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            entry_id INTEGER REFERENCES entries(id) ON DELETE CASCADE,
            match_id INTEGER REFERENCES matches(id) ON DELETE CASCADE,
            rule TEXT,
            destination TEXT NOT NULL,
            status TEXT NOT NULL,
            delivery TEXT NOT NULL,
            reason TEXT,
            due_at TEXT NOT NULL,
            created TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_attempt_at TEXT,
            last_attempt_at TEXT,
            last_error TEXT,
            sent_at TEXT,
            possible_duplicate INTEGER NOT NULL DEFAULT 0,
            copy_of INTEGER REFERENCES alerts(id) ON DELETE SET NULL,
            payload TEXT NOT NULL,
            UNIQUE (entry_id, rule, destination)
        );
        CREATE INDEX alerts_due ON alerts(status, due_at);
        CREATE INDEX alerts_rate ON alerts(destination, rule, created);
        CREATE TABLE alert_keys (
            key TEXT NOT NULL,
            destination TEXT NOT NULL,
            alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
            created TEXT NOT NULL
        );
        CREATE INDEX alert_keys_lookup ON alert_keys(key, destination, created);
    """)


@migrations(name="0003_search_mute")
def _search_mute(db: Database) -> None:
    """The full-text search index, filled lazily (monitor.search), and muted matches.

    `search_index` holds, per story (rowid = entry id), its words' normal
    forms and dictionary forms, which FTS5's own tokenizer cannot derive;
    `search_indexed` says which version of the story is indexed, so an update
    is re-indexed. A pruned story leaves the index by trigger. A match with
    `muted_at` set was marked a false positive by a person.
    """
    db.executescript("""
        CREATE VIRTUAL TABLE search_index USING fts5(
            words, tokenize = 'unicode61 remove_diacritics 0');
        CREATE TABLE search_indexed (
            entry_id INTEGER PRIMARY KEY,
            version INTEGER NOT NULL
        );
        CREATE TRIGGER entries_leave_search_index AFTER DELETE ON entries BEGIN
            DELETE FROM search_index WHERE rowid = old.id;
            DELETE FROM search_indexed WHERE entry_id = old.id;
        END;
        ALTER TABLE matches ADD COLUMN muted_at TEXT;
        ALTER TABLE matches ADD COLUMN mute_reason TEXT;
        CREATE INDEX matches_created ON matches(created);
    """)


@migrations(name="0004_feed_urls_without_credentials")
def _strip_credentials(db: Database) -> None:
    """Feed URLs were stored with their user:password@; the database keeps none now."""
    for feed_id, url, config_url in db.execute("SELECT id, url, config_url FROM feeds").fetchall():
        db.execute("UPDATE feeds SET url = ?, config_url = ? WHERE id = ?",
                   [strip_userinfo(url), strip_userinfo(config_url), feed_id])


@migrations(name="0005_hardening")
def _hardening(db: Database) -> None:
    """What a hostile feed leaves to see.

    `entries.match_skipped` says why a story was stored without being matched
    (it went over its matching budget); `feeds.match_warning` reports that in the
    feed's health until a poll matches every story again. `matches.hits_omitted`
    counts the hits beyond the stored ones. `feeds.moved_to` is a permanent
    redirect to another origin that was not followed for good, because the feed
    sends credentials: the user confirms it by editing feeds.toml.
    """
    db.executescript("""
        ALTER TABLE entries ADD COLUMN match_skipped TEXT;
        ALTER TABLE matches ADD COLUMN hits_omitted INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE feeds ADD COLUMN match_warning TEXT;
        ALTER TABLE feeds ADD COLUMN moved_to TEXT;
    """)


@migrations(name="0006_alerts_per_story")
def _alerts_per_story(db: Database) -> None:
    """One alert per (story, destination), naming every rule routed there.

    `alert_rules` is the ledger of which rules each alert named, so an updated
    story alerts a destination again only for a rule it has not had there. The
    alerts' `rule` column now holds the rule an alert is filed under (the top
    rule, or for an update the top new rule): never one already alerted there,
    so the old unique key (entry_id, rule, destination) still holds. Rows not
    yet delivered (pending, failed, dead) of one story and destination fold
    into one; sent, duplicate and muted rows stay as history, and their rules
    count as already alerted.
    """
    for statement in (
        "CREATE TABLE alert_rules ("
        " alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,"
        " match_id INTEGER REFERENCES matches(id) ON DELETE CASCADE,"
        " rule TEXT NOT NULL, PRIMARY KEY (alert_id, rule))",
        "CREATE INDEX alert_rules_match ON alert_rules(match_id)",
        "CREATE INDEX alerts_story ON alerts(entry_id, destination)",
        "INSERT INTO alert_rules (alert_id, match_id, rule) "
        "SELECT id, match_id, rule FROM alerts WHERE rule IS NOT NULL AND entry_id IS NOT NULL",
    ):  # one statement at a time: executescript would commit the migration's transaction
        db.execute(statement)
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in db.query(
            "SELECT id, kind, entry_id, rule, destination, status, delivery, reason, due_at, attempts, "
            "first_attempt_at, last_attempt_at, last_error, possible_duplicate, payload FROM alerts "
            "WHERE kind IN ('match', 'update') AND entry_id IS NOT NULL "
            "AND status IN ('pending', 'failed', 'dead') ORDER BY id"):
        groups.setdefault((row["entry_id"], row["destination"]), []).append(row)
    for rows in groups.values():
        if len(rows) > 1:
            _fold_alerts(db, rows)


_OPEN_ORDER = ("pending", "failed", "dead")  # a folded row takes the liveliest state of its parts


def _fold_alerts(db: Database, rows: list[dict[str, Any]]) -> None:
    """Merge the open per-rule alerts of one story and destination into one row."""
    status = next(state for state in _OPEN_ORDER if any(r["status"] == state for r in rows))
    live = [row for row in rows if row["status"] == status]
    kind = "match" if any(row["kind"] == "match" for row in rows) else "update"
    payloads = [json.loads(row["payload"]) for row in rows]
    named = sorted(((row, {**rule, "is_new": bool(rule.get("is_new")) and kind == "update"})
                    for row, payload in zip(rows, payloads)
                    for rule in _payload_rules(payload, row["rule"])),
                   key=lambda pair: (pair[0]["status"] != status, RuleHit(**pair[1]).order()))
    keep = named[0][0]  # the live row holding the top rule
    rules = sorted((rule for _, rule in named), key=lambda rule: RuleHit(**rule).order())
    top = rules[0]
    merged = dict(json.loads(keep["payload"]))
    merged.update(rule=top["rule"], severity=top["severity"], score=top["score"],
                  snippet=top["snippet"], terms=top["terms"], description=top["description"],
                  is_update=kind == "update", rules=rules,
                  also_reported_by=list(dict.fromkeys(
                      feed for payload in payloads for feed in payload.get("also_reported_by", []))))
    db.execute(
        "UPDATE alerts SET kind = ?, status = ?, delivery = ?, due_at = ?, attempts = ?, "
        "first_attempt_at = ?, last_error = ?, possible_duplicate = ?, payload = ? WHERE id = ?",
        [kind, status,
         "immediate" if any(row["delivery"] == "immediate" for row in live) else "digest",
         min(row["due_at"] for row in live), max(row["attempts"] for row in live),
         min((row["first_attempt_at"] for row in live if row["first_attempt_at"]), default=None),
         next((row["last_error"] for row in reversed(live) if row["last_error"]), None),
         max(row["possible_duplicate"] for row in rows), json.dumps(merged, ensure_ascii=False),
         keep["id"]])
    for row in rows:
        if row["id"] != keep["id"]:
            # Its duplicate keys are the kept row's too (same story and destination): they go
            # with it by cascade; its rules and the copies pointing at it move to the kept row.
            for table, column in (("alert_rules", "alert_id"), ("alerts", "copy_of")):
                db.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", [keep["id"], row["id"]])
            db.execute("DELETE FROM alerts WHERE id = ?", [row["id"]])


def _payload_rules(payload: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    """The rules an alert payload names (a per-rule payload names its own, RULE)."""
    if payload.get("rules"):
        return payload["rules"]
    return [{"rule": payload.get("rule") or rule, "severity": payload.get("severity", "info"),
             "score": payload.get("score", 0.0),
             "snippet": payload.get("snippet", ""), "terms": list(payload.get("terms", [])),
             "description": payload.get("description", ""),
             "is_new": bool(payload.get("is_update"))}]


@migrations(name="0007_web_reviewed")
def _reviewed(db: Database) -> None:
    """A match with `reviewed_at` set was confirmed relevant by a person (the web's
    "mark relevant"); with `muted_at` it is the two outcomes of triage."""
    db.execute("ALTER TABLE matches ADD COLUMN reviewed_at TEXT")


def to_text(moment: datetime | None) -> str | None:
    """UTC, whole seconds, fixed width: "2026-11-29T04:06:52Z" sorts as text."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the store takes aware UTC times")
    utc = moment.astimezone(timezone.utc).replace(microsecond=0, tzinfo=None)
    return utc.isoformat() + "Z"


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _sql_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_text(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    return value


def _checked(values: dict[str, Any], allowed: frozenset[str], what: str) -> dict[str, Any]:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"unknown {what} column(s): {', '.join(unknown)}")
    return {key: _sql_value(value) for key, value in values.items()}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _entry_columns(entry: Entry) -> dict[str, Any]:
    return {
        "url": entry.url, "title": entry.title, "summary": entry.summary,
        "content": entry.content, "published": to_text(entry.published),
        "updated": to_text(entry.updated), "authors": _json(list(entry.authors)),
        "tags": _json(list(entry.tags)), "language": entry.language,
        "content_hash": entry.content_hash,
    }


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


def _story(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "authors": json.loads(row["authors"]), "tags": json.loads(row["tags"]),
            "alertable": bool(row["alertable"])}


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


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


def database_error(path: Path, exc: BaseException) -> MonitorError:
    """A SQLite or OS error as one clear message that names the database file."""
    reason = str(exc) or type(exc).__name__
    hint = ""
    if "malformed" in reason or "not a database" in reason or "constructor failed" in reason:
        hint = (f"; the file is damaged: restore a backup, or rebuild it with "
                f"`sqlite3 {path} .recover | sqlite3 NEW.db`")
    return MonitorError(f"cannot read the database at {path}: {reason}{hint}")


def reads_database(function: Callable[..., T]) -> Callable[..., T]:
    """Turn SQLite errors of a reading call on a Store (its first argument) into a
    MonitorError naming the file, instead of a traceback (a corrupt page, a lost file)."""
    @functools.wraps(function)
    def reading(store: "Store", *args: Any, **kwargs: Any) -> T:
        try:
            return function(store, *args, **kwargs)
        except sqlite3.Error as exc:
            raise database_error(store.path, exc) from exc
    return reading


class Store:
    """Synchronous access to the state database; use it from one thread only."""

    def __init__(self, db: Database, path: Path, readonly: bool) -> None:
        self.db = db
        self.path = path
        self.readonly = readonly

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> "Store":
        """Writer: creates the folder and file and migrates. Reader: never writes."""
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
        """
        if self.readonly:
            raise MonitorError(f"the database at {self.path} was opened read-only")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.rollback()
            raise
        self.db.commit()

    def _feed_id(self, name: str) -> int:
        row = self.db.execute("SELECT id FROM feeds WHERE name = ?", [name]).fetchone()
        if row is None:
            raise MonitorError(f"no feed named {name!r} in the database")
        return row[0]

    def _update_feed(self, feed_id: int, columns: dict[str, Any]) -> None:
        if columns:
            sets = ", ".join(f"{column} = :{column}" for column in columns)
            self.db.execute(f"UPDATE feeds SET {sets} WHERE id = :_id", {**columns, "_id": feed_id})

    # ---------------------------------------------------------------- feeds

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
                "THEN 'paused' WHEN baselined THEN 'ok' ELSE 'new' END WHERE id = ?", [feed_id])

    def record_poll(self, name: str, state: dict, log: dict, *, keep: int) -> None:
        """A poll that stored no stories (304, unchanged body, error): state and log only.

        `log` must hold `at`; datetimes in both dicts are aware UTC.
        """
        self.record_polls([(name, state, log, keep)])

    def record_polls(self, polls: Sequence[tuple[str, dict, dict, int]]) -> None:
        """record_poll for each (name, state, log, keep) of POLLS, in one transaction
        (monitor.storebatch groups the polls that finish together)."""
        with self.transaction():
            for name, state, log, keep in polls:
                feed_id = self._feed_id(name)
                self._save_state(feed_id, state)
                self._append_log(feed_id, log, keep)

    def _save_state(self, feed_id: int, state: dict) -> None:
        columns = _checked(state, POLL_STATE_COLUMNS, "feed state")
        status = columns.pop("status", None)
        self._update_feed(feed_id, columns)
        if status is not None:
            # Removal and pausing are the user's decisions: a poll that was
            # already running when they were made must not undo them.
            self.db.execute(
                "UPDATE feeds SET status = ? WHERE id = ? AND status NOT IN ('removed', 'paused')",
                [status, feed_id])

    def _append_log(self, feed_id: int, log: dict, keep: int) -> None:
        row = _checked(log, FETCH_LOG_COLUMNS, "fetch log")
        if row.get("at") is None:
            raise ValueError("a fetch log row needs 'at'")
        self.db.table("fetch_log").insert({**row, "feed_id": feed_id})
        self.db.execute(
            "DELETE FROM fetch_log WHERE feed_id = ? AND id NOT IN "
            "(SELECT id FROM fetch_log WHERE feed_id = ? ORDER BY id DESC LIMIT ?)",
            [feed_id, feed_id, keep])

    # -------------------------------------------------------------- entries

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
        for chunk in _chunks(guids):
            found.update(self.db.execute(
                f"SELECT guid, content_hash FROM {table} WHERE feed_id = ? AND guid IN ({_marks(len(chunk))})",
                [feed_id, *chunk]).fetchall())
        return found

    def save_poll(self, name: str, items: Sequence[tuple[Entry, str, bool, Sequence[Match]]],
                  now: datetime, state: dict, log: dict, *, keep: int,
                  planner: "AlertPlanner | None" = None,
                  unmatched: dict[str, str] | None = None) -> StoreResult:
        """Store one successful poll (stories, their matches, their alerts, state, log)
        in ONE transaction.

        `items` are classify()'s labels plus alertable and the matches; the log's
        `at` defaults to `now` and its entry counts are filled in here. `planner`
        writes the alert rows of each newly inserted match, inside this transaction,
        so a match is never stored without its alerts. `unmatched` maps the guids of
        stories that were not matched (over their budget) to why: stored in the story.
        """
        counts = dict.fromkeys(("new", "updated", "unchanged", "new_for_alerting", "matched"), 0)
        seen: list[str] = []
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
                    if planner is not None and inserted and (alertable or kind == "updated"):
                        planner.plan(self, entry_id=stored[0], entry=entry, matches=inserted,
                                     is_update=kind == "updated", now=now)
            self._touch(feed_id, seen, now)
            self._save_state(feed_id, state)
            self._append_log(feed_id, {"at": now, **log, "entries_new": counts["new"],
                                       "entries_updated": counts["updated"]}, keep)
        return StoreResult(**counts)

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
                [entry_id, match.rule, match.score, match.severity, _json(list(match.tags)),
                 _json([asdict(hit) for hit in match.hits]), match.snippet, version,
                 to_text(now), match.hits_omitted]).fetchone()
            if row is not None:
                inserted.append((row[0], match))
        return inserted

    def _touch(self, feed_id: int, guids: Sequence[str], now: datetime) -> None:
        for chunk in _chunks(guids):
            self.db.execute(
                f"UPDATE entries SET last_seen = ? WHERE feed_id = ? AND guid IN ({_marks(len(chunk))})",
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
                "INSERT OR REPLACE INTO tombstones (feed_id, guid, content_hash, pruned_at) "
                "SELECT feed_id, guid, content_hash, ? FROM entries WHERE last_seen < ?",
                [to_text(now), cutoff])
            return self.db.execute("DELETE FROM entries WHERE last_seen < ?", [cutoff]).rowcount

    # -------------------------------------------------------------- reading

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
            "ORDER BY e.first_seen DESC, e.id DESC LIMIT :limit",
            {"since": to_text(since), "feed": feed, "limit": -1 if limit is None else limit})
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

    @reads_database
    def fetch_log(self, name: str, limit: int = 20) -> list[dict]:
        """The feed's latest fetches, newest first."""
        return list(self.db.query(
            "SELECT id, at, outcome, status, bytes, duration, error_kind, error, entries_new, "
            "entries_updated FROM fetch_log WHERE feed_id = ? ORDER BY id DESC LIMIT ?",
            [self._feed_id(name), limit]))

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

    def __init__(self, path: Path) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-store")
        self._closed = False
        try:
            self._store = self._executor.submit(Store.open, Path(path)).result()
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
