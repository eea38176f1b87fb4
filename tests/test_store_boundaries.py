"""The store's boundaries: a poll and its alerts are one transaction opened by the
pipeline's side, and the store never imports alerting."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

import monitor
from monitor.alert.outbox import Planner
from monitor.ingest.storing import store_poll
from monitor.models import AlertSettings, Destination, Entry, FeedConfig, Hit, Match
from monitor.store.database import Store

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
PACKAGE = Path(monitor.__file__).parent


def story(guid: str) -> Entry:
    return Entry(feed="news", guid=guid, url=f"https://news.example/{guid}", title=f"China story {guid}",
                 published=NOW, content_hash=guid)


def found() -> Match:
    return Match("china", 3.0, "warning", (), (Hit("title", 0, 5, "China"),), "[[China]] story")


class FailingPlanner(Planner):
    """The real planner, which fails on the poll's second story."""

    def __init__(self) -> None:
        super().__init__([Destination(name="chat", url="json://127.0.0.1:9/", safe_url="chat")],
                         AlertSettings(), "UTC")
        self.calls = 0

    def plan(self, store: Store, **kwargs) -> int:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("the planner broke on the second story")
        return super().plan(store, **kwargs)


def count(store: Store, table: str) -> int:
    return store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_a_planner_failing_on_the_second_story_stores_nothing_of_the_poll(store_location: Path | str) -> None:
    store = Store.open(store_location)
    try:
        store.sync_feeds([FeedConfig("news", "https://news.example/rss", 600.0)], NOW)
        before = store.feed_state("news")
        planner = FailingPlanner()
        items = [(story(guid), "new", True, [found()]) for guid in ("a", "b", "c")]
        with pytest.raises(RuntimeError, match="second story"):
            store_poll(store, "news", items, NOW, {"status": "ok", "last_success": NOW, "etag": '"v2"'},
                       {"outcome": "ok", "status": 200}, keep=10, planner=planner)

        assert planner.calls == 2  # the first story's alert was written, then undone
        assert [count(store, table) for table in ("entries", "matches", "alerts", "alert_rules",
                                                  "alert_keys", "fetch_log")] == [0] * 6
        assert store.feed_state("news") == before

        # the connection is usable after, and a working planner stores all three
        saved = store_poll(store, "news", items, NOW, {"status": "ok"}, {"outcome": "ok"}, keep=10,
                           planner=Planner([], AlertSettings(), "UTC"))
        assert (saved.new, saved.matched) == (3, 3)
        assert count(store, "alerts") == 3
    finally:
        store.close()


def test_a_failed_inner_transaction_undoes_only_its_own_writes(store_location: Path | str) -> None:
    store = Store.open(store_location)
    try:
        with store.transaction():
            store.set_meta("outer", "kept")
            with pytest.raises(RuntimeError), store.transaction():
                store.set_meta("inner", "dropped")
                raise RuntimeError("inner fails")
        assert (store.get_meta("outer"), store.get_meta("inner")) == ("kept", None)
    finally:
        store.close()


def test_the_store_imports_nothing_from_alerting() -> None:
    offending = []
    for path in sorted((PACKAGE / "store").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                if node.module == "monitor":
                    names += [f"monitor.{alias.name}" for alias in node.names]
            else:
                continue
            offending += [f"{path.relative_to(PACKAGE)}:{node.lineno} {name}" for name in names
                          if name == "monitor.alert" or name.startswith("monitor.alert.")]
    assert offending == []


SQL = re.compile(r"\b(SELECT\s[\s\S]*?\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
                 r"|CREATE\s+(VIRTUAL\s+)?(TABLE|INDEX|TRIGGER)|ALTER\s+TABLE|DROP\s+(TABLE|INDEX)|PRAGMA\s+\w+"
                 r"|BEGIN\s+IMMEDIATE|SAVEPOINT\s+\w+)\b")
DATABASE_CALLS = frozenset({"execute", "executemany", "executescript", "query"})


def sql_outside_the_store() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "store"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(PACKAGE)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in DATABASE_CALLS):
                found.append(f"{where}:{node.lineno} .{node.func.attr}(")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                found.append(f"{where}:{node.lineno} {SQL.search(node.value).group(0)!r}")
    return found


def test_every_line_of_sql_is_in_the_store() -> None:
    assert sql_outside_the_store() == []


def test_the_sql_scan_finds_sql() -> None:
    """The scan above would see a query written outside monitor/store/."""
    assert SQL.search("SELECT id, rule FROM matches WHERE entry_id = ?")
    assert SQL.search("UPDATE alerts SET payload = ? WHERE id = ?")
    assert SQL.search("INSERT INTO alert_rules (alert_id) VALUES (?)")
    assert not SQL.search("Select the feeds to update from the list")
