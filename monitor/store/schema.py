"""The database's schema: every table, as the sequence of migrations that made it.

A migration runs once per database, in order, inside a transaction
(sqlite-utils' Migrations); a database made by any earlier release is
brought up to date by `Store.open` for writing.
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database, Migrations

from monitor.models import RuleHit
from monitor.urls import strip_userinfo

migrations = Migrations("monitor")
# Each migration's tables and columns in SQLite's words, in order (one entry per migration,
# "" for one that only rewrites data); monitor.store.postgres_schema writes the same ones in
# PostgreSQL's, so both engines hold the same columns.
DDL: dict[str, str] = {}


DDL["0001_initial"] = """
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
    """


@migrations(name="0001_initial")
def _create_schema(db: Database) -> None:
    """All tables of the first release.

    `config_url` is the URL the config last gave; `url` is where the feed is
    fetched, which a permanent redirect may have moved on. Comparing the
    config with `config_url` tells a user's edit from a redirect.
    """
    db.executescript(DDL["0001_initial"])


DDL["0002_alerts"] = """
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
    """


@migrations(name="0002_alerts")
def _alerts(db: Database) -> None:
    """The durable outbox: one row per (story, rule, destination), written with the match.

    `payload` is a JSON snapshot of what the message shows, so an alert can be
    sent (or listed) without the config that made it; `copy_of` points a
    story carried by several outlets at the alert that went out for it.
    """
    db.executescript(DDL["0002_alerts"])


# The search index is each engine's own (PostgreSQL's is in postgres_schema.SEARCH).
DDL["0003_search_mute"] = """
        ALTER TABLE matches ADD COLUMN muted_at TEXT;
        ALTER TABLE matches ADD COLUMN mute_reason TEXT;
        CREATE INDEX matches_created ON matches(created);
"""


@migrations(name="0003_search_mute")
def _search_mute(db: Database) -> None:
    """The full-text search index, filled lazily (monitor.read.search), and muted matches.

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
    """ + DDL["0003_search_mute"])


DDL["0004_feed_urls_without_credentials"] = ""  # data only


@migrations(name="0004_feed_urls_without_credentials")
def _strip_credentials(db: Database) -> None:
    """Feed URLs were stored with their user:password@; the database keeps none now."""
    for feed_id, url, config_url in db.execute("SELECT id, url, config_url FROM feeds").fetchall():
        db.execute("UPDATE feeds SET url = ?, config_url = ? WHERE id = ?",
                   [strip_userinfo(url), strip_userinfo(config_url), feed_id])


DDL["0005_hardening"] = """
        ALTER TABLE entries ADD COLUMN match_skipped TEXT;
        ALTER TABLE matches ADD COLUMN hits_omitted INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE feeds ADD COLUMN match_warning TEXT;
        ALTER TABLE feeds ADD COLUMN moved_to TEXT;
    """


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
    db.executescript(DDL["0005_hardening"])


DDL["0006_alerts_per_story"] = (
    "CREATE TABLE alert_rules ("
    " alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,"
    " match_id INTEGER REFERENCES matches(id) ON DELETE CASCADE,"
    " rule TEXT NOT NULL, PRIMARY KEY (alert_id, rule));"
    "CREATE INDEX alert_rules_match ON alert_rules(match_id);"
    "CREATE INDEX alerts_story ON alerts(entry_id, destination)")


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
        *DDL["0006_alerts_per_story"].split(";"),
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
                    for row, payload in zip(rows, payloads, strict=False)
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


DDL["0007_web_reviewed"] = "ALTER TABLE matches ADD COLUMN reviewed_at TEXT"


@migrations(name="0007_web_reviewed")
def _reviewed(db: Database) -> None:
    """A match with `reviewed_at` set was confirmed relevant by a person (the web's
    "mark relevant"); with `muted_at` it is the two outcomes of triage."""
    db.execute(DDL["0007_web_reviewed"])


DDL["0008_sending_since"] = "ALTER TABLE alerts ADD COLUMN sending_since TEXT"


@migrations(name="0008_sending_since")
def _sending_since(db: Database) -> None:
    """`sending_since`: when a send of the alert began, cleared when its outcome is recorded.
    Still set when the alert is due again, the sender died mid-send (a crash, a killed
    worker): the service may have it, so the next send is marked a possible duplicate."""
    db.execute(DDL["0008_sending_since"])


DDL["0009_nodes"] = """CREATE TABLE nodes (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started TEXT NOT NULL,
            heartbeat TEXT NOT NULL,
            config_version TEXT
        )"""


@migrations(name="0009_nodes")
def _nodes(db: Database) -> None:
    """The processes that poll this database (`monitor worker`s of a cluster) with their last
    heartbeat and the version of the config folder they run, for `monitor status`."""
    db.execute(DDL["0009_nodes"])


DDL["0010_config_versions"] = """CREATE TABLE config_versions (
            version INTEGER PRIMARY KEY,
            digest TEXT NOT NULL,
            files TEXT NOT NULL,
            pushed_at TEXT NOT NULL,
            pushed_from TEXT NOT NULL
        )"""


@migrations(name="0010_config_versions")
def _config_versions(db: Database) -> None:
    """The cluster's config folder, pushed into the database (`monitor config push`): every
    version kept, the newest one what every worker runs. `files` maps file names to texts."""
    db.execute(DDL["0010_config_versions"])
