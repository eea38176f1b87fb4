"""Migration 0006: a database written by the per-rule outbox (commit 79fb490) opens as a
per-story outbox: open per-rule rows fold into one per story and destination, nothing
is lost and nothing is sent twice. The database is tests/fixtures/outbox/per_rule_outbox.sql,
made by the old code (tests/fixtures/outbox/make_per_rule_db.py says how)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.alert.dispatch import Dispatcher
from monitor.alert.outbox import Planner, list_alerts
from monitor.ingest.storing import store_poll
from monitor.models import AlertSettings, Destination, Entry, Hit, Match
from monitor.store.database import Store, StoreThread

FIXTURE = Path(__file__).parent / "fixtures" / "outbox" / "per_rule_outbox.sql"
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
OPEN = ("pending", "failed", "dead")


def old_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT e.guid, a.rule, a.destination, a.status FROM alerts a "
            "LEFT JOIN entries e ON e.id = a.entry_id ORDER BY a.id").fetchall()


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(FIXTURE.read_text(encoding="utf-8"))
    return path


def migrated(path: Path) -> list[dict]:
    store = Store.open(path)  # the writer migrates, as `monitor run` does on start
    try:
        return sorted(list_alerts(store), key=lambda a: a["id"])
    finally:
        store.close()


def test_the_fixture_is_the_old_per_rule_outbox_with_rows_in_every_state(old_db):
    rows = old_rows(old_db)
    assert {status for *_, status in rows} == {"pending", "failed", "dead", "sent", "duplicate", "muted"}
    with sqlite3.connect(old_db) as conn:
        names = [n for n, in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names[-1] == "0004_feed_urls_without_credentials"


def test_open_per_rule_rows_fold_into_one_per_story_and_destination(old_db):
    before = old_rows(old_db)
    alerts = migrated(old_db)
    with sqlite3.connect(old_db) as conn:
        guid = dict(conn.execute("SELECT id, guid FROM entries"))
        ledger = {(guid[e], rule, dest) for e, rule, dest in conn.execute(
            "SELECT a.entry_id, r.rule, a.destination FROM alert_rules r JOIN alerts a ON a.id = r.alert_id")}
        keys = conn.execute("SELECT COUNT(*) FROM alert_keys k LEFT JOIN alerts a ON a.id = k.alert_id "
                            "WHERE a.id IS NULL").fetchone()[0]
        copies = conn.execute("SELECT COUNT(*) FROM alerts WHERE status = 'duplicate' AND copy_of IN "
                              "(SELECT id FROM alerts)").fetchone()[0]
    # Nothing lost: every old story alert's rule is still named at its destination.
    assert ledger == {(g, rule, dest) for g, rule, dest, _ in before if g is not None}
    assert keys == 0 and copies == 4, "duplicate keys and copies point at surviving alerts"
    story = {(guid[a["entry_id"]] if a["entry_id"] else None, a["destination"], a["status"]):
             (a["kind"], a["rules"], a["new_rules"], a["attempts"]) for a in alerts
             if a["status"] in (*OPEN, "sent")}
    assert story == {
        ("s1", "chat", "pending"): ("match", ["supplies", "sanctions", "energy"], [], 0),
        ("s1", "mail", "sent"): ("match", ["supplies"], [], 1),
        ("s1", "mail", "pending"): ("match", ["sanctions", "energy"], [], 0),
        ("s2", "chat", "dead"): ("match", ["supplies", "sanctions"], [], 2),
        ("s2", "mail", "failed"): ("match", ["supplies", "sanctions"], [], 1),
        ("s4", "chat", "pending"): ("match", ["sanctions"], [], 0),
        ("s4", "mail", "pending"): ("match", ["sanctions"], [], 0),
        ("s5", "chat", "sent"): ("match", ["supplies"], [], 1),
        ("s5", "mail", "sent"): ("match", ["supplies"], [], 1),
        ("s5", "chat", "pending"): ("update", ["sanctions"], ["sanctions"], 0),
        ("s5", "mail", "pending"): ("update", ["sanctions"], ["sanctions"], 0),
        (None, "chat", "pending"): ("health", [], [], 0),
    }
    # One open alert per story and destination.
    open_keys = [(a["entry_id"], a["destination"]) for a in alerts
                 if a["status"] in OPEN and a["kind"] != "health"]
    assert len(open_keys) == len(set(open_keys))
    assert sum(a["status"] == "duplicate" for a in alerts) == 4
    assert sum(a["status"] == "muted" for a in alerts) == 2
    failed = [a for a in alerts if a["status"] == "failed"][0]
    assert failed["last_error"] == "FAILURE: HTTP 502"


def test_a_migrated_database_sends_each_rule_once_and_updates_only_for_new_rules(old_db, webhook):
    migrated(old_db)
    destinations = [Destination(name=name, url=webhook.url(), safe_url=webhook.url())
                    for name in ("chat", "mail")]
    settings = AlertSettings(rate_limit=0)
    now = T0 + timedelta(days=1)

    async def dispatch():
        store = StoreThread(old_db)
        try:
            return await Dispatcher(store, destinations, settings, "UTC", clock=lambda: now).dispatch_due()
        finally:
            store.close()

    report = asyncio.run(dispatch())
    # s1 x2, s2 mail (failed, due again), s4 x2, s5 updates x2, the health alert; s2 chat is dead.
    assert (report.sent, report.failed) == (8, 0)
    assert webhook.wait_for(8) and len(webhook.posts) == 8
    sent_rules: dict[str, list[str]] = {}
    for post in webhook.posts:
        for line in post["message"].splitlines():
            if line.startswith("- "):
                sent_rules.setdefault(post["title"], []).append(line.split()[1])
    s1 = [rules for title, rules in sent_rules.items() if "via Kyrgyzstan" in title]
    assert sorted(s1) == [["sanctions", "energy"], ["supplies", "sanctions", "energy"]]
    assert asyncio.run(dispatch()).sent == 0, "nothing twice"

    # An update of s1 that adds a rule alerts each destination once more, naming it new;
    # the rules already alerted (sent before the migration or after) are not new.
    store = Store.open(old_db)
    try:
        entry_id = store.db.execute("SELECT id FROM entries WHERE guid = 's1'").fetchone()[0]
        story = Entry(feed="one", guid="s1", url="https://one.example/s1",
                      title="Chinese drone engines reach Russia via Kyrgyzstan", summary="Peace talks",
                      published=T0, content_hash="v2")
        matches = [Match(name, 4.5, severity, ("drones",), (Hit("title", 0, 7, "Chinese"),), "[[Chinese]]")
                   for name, severity in (("supplies", "critical"), ("sanctions", "warning"),
                                          ("energy", "info"), ("peace", "warning"))]
        store_poll(store, "one", [(story, "updated", True, matches)], now, {"status": "ok"},
                   {"outcome": "ok"}, keep=10, planner=Planner(destinations, settings, "UTC"))
        new = [a for a in list_alerts(store) if a["entry_id"] == entry_id and a["status"] == "pending"]
    finally:
        store.close()
    assert sorted((a["destination"], a["rules"], a["new_rules"]) for a in new) == [
        ("chat", ["supplies", "peace", "sanctions", "energy"], ["peace"]),
        ("mail", ["supplies", "peace", "sanctions", "energy"], ["peace"])]
    assert asyncio.run(dispatch()).sent == 2


def test_a_new_database_gets_the_per_story_schema(tmp_path):
    store = Store.open(tmp_path / "fresh.db")
    try:
        tables = {name for name, in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        store.close()
    assert {"alerts", "alert_rules", "alert_keys"} <= tables


def test_folded_alerts_keep_their_story_keys_for_later_copies(old_db):
    migrated(old_db)
    with sqlite3.connect(old_db) as conn:
        keyed = dict(conn.execute(
            "SELECT a.destination, COUNT(DISTINCT k.key) FROM alerts a JOIN entries e ON e.id = a.entry_id "
            "JOIN alert_keys k ON k.alert_id = a.id WHERE e.guid = 's1' AND a.status = 'pending' "
            "GROUP BY a.destination"))
    assert keyed == {"chat": 3, "mail": 3}, "folded alerts still answer to their url, path and title keys"
