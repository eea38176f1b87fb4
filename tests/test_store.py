"""The state database: schema, feed sync, dedup, atomicity, readers.

The tests that take `store` are the store's contract: each runs twice, on a
real SQLite file and on a new database of the machine's PostgreSQL. The tests
that take `db_path` are about the SQLite file itself (WAL, permissions, readers
beside a writer).
"""

from __future__ import annotations

import asyncio
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from monitor.errors import MonitorError
from monitor.models import Entry, FeedConfig, Hit, Match, StoreResult
from monitor.store.database import Store, StoreThread
from monitor.store.schema import migrations
from monitor.store.values import database_errors

NOW = datetime(2026, 11, 29, 4, 6, 52, tzinfo=UTC)
KEEP = 50


def feed(name: str = "kyiv", url: str = "https://example.test/kyiv.rss") -> FeedConfig:
    return FeedConfig(name=name, url=url, interval=600.0)


def entry(guid: str, text: str = "body", feed_name: str = "kyiv") -> Entry:
    return Entry(feed=feed_name, guid=guid, url=f"https://example.test/{guid}", title=f"Title {guid}",
                 summary=text, published=NOW - timedelta(hours=1), authors=("A. Writer",),
                 tags=("war",), language="en", content_hash=f"hash-{text}")


def match(rule: str = "china-war", term: object = "China") -> Match:
    return Match(rule=rule, score=2.5, severity="warning", tags=("china",),
                 hits=(Hit(field="title", start=0, end=5, term=term),), snippet="[[China]] ...")


def poll(store: Store, entries: list[Entry], now: datetime = NOW, name: str = "kyiv",
         matches: dict[str, list[Match]] | None = None, alertable: bool = True) -> StoreResult:
    """classify + save_poll, the way the orchestrator does it."""
    items = [(e, kind, alertable, (matches or {}).get(e.guid, []))
             for e, kind in store.classify(name, entries)]
    return store.save_poll(name, items, now, {"status": "ok", "last_success": now},
                           {"outcome": "ok", "status": 200}, keep=KEEP)


def guids(store: Store) -> list[str]:
    return sorted(row["guid"] for row in store.list_stories())


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "monitor.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, db_path: Path) -> Path | str:
    """Where the store lives: a SQLite file, or (the same tests again) a PostgreSQL URL."""
    return db_path if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture
def store(location: Path | str):
    store = Store.open(location)
    store.sync_feeds([feed()], NOW)
    yield store
    store.close()


# ------------------------------------------------------------------ opening


def test_migrations_apply_once_and_reopen_is_idempotent(db_path: Path) -> None:
    Store.open(db_path).close()
    store = Store.open(db_path)
    applied = [m.name for m in migrations.applied(store.db)]
    assert applied == [m.name for m in migrations.pending(Database(memory=True))]
    assert applied[0] == "0001_initial"
    assert migrations.pending(store.db) == []
    assert {"feeds", "entries", "tombstones", "matches", "fetch_log", "meta"} <= set(store.db.table_names())
    store.close()


@pytest.fixture
def sqlite_store(db_path: Path):
    """The store on its SQLite file, for what is SQLite's own (WAL, file modes)."""
    store = Store.open(db_path)
    store.sync_feeds([feed()], NOW)
    yield store
    store.close()


def test_connection_settings(sqlite_store: Store) -> None:
    store = sqlite_store
    assert store.db.journal_mode == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_database_file_and_folder_are_private(sqlite_store: Store, db_path: Path) -> None:
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(MonitorError, match="cannot open the database"):
        Store.open(blocker / "monitor.db")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(MonitorError, match="cannot open the database"):
        Store.open(junk)
    with pytest.raises(MonitorError, match="cannot open the database"):
        Store.open(junk, readonly=True)


def test_readonly_open_of_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match=r"no database at .*missing\.db yet; run `monitor run` first"):
        Store.open(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


# -------------------------------------------------------------------- feeds


def test_sync_adds_new_feeds(store: Store) -> None:
    store.sync_feeds([feed(), feed("scmp", "https://example.test/scmp")], NOW)
    states = {s.name: s for s in store.feed_states()}
    assert set(states) == {"kyiv", "scmp"}
    assert states["scmp"].status == "new" and states["scmp"].baselined is False
    assert states["scmp"].url == "https://example.test/scmp"


def test_rename_by_url_keeps_state_and_entries(store: Store) -> None:
    poll(store, [entry("a"), entry("b")])
    store.record_poll("kyiv", {"etag": '"v1"', "baselined": True}, {"at": NOW}, keep=KEEP)
    old_id = store.feed_state("kyiv").id

    store.sync_feeds([feed(name="kyiv-independent")], NOW)

    assert store.feed_state("kyiv") is None
    renamed = store.feed_state("kyiv-independent")
    assert (renamed.id, renamed.etag, renamed.baselined, renamed.status) == (old_id, '"v1"', True, "ok")
    assert {s["feed"] for s in store.list_stories()} == {"kyiv-independent"}
    assert poll(store, [entry("a"), entry("b")], name="kyiv-independent").new == 0


def test_removed_feed_is_marked_and_keeps_entries(store: Store) -> None:
    poll(store, [entry("a")])
    store.sync_feeds([feed("scmp", "https://example.test/scmp")], NOW)

    assert [s.name for s in store.feed_states()] == ["scmp"]
    removed = {s.name: s for s in store.feed_states(include_removed=True)}["kyiv"]
    assert removed.status == "removed"
    assert store.entry_counts() == {"kyiv": 1, "scmp": 0}
    assert store.db.execute("SELECT removed_at FROM feeds WHERE name = 'kyiv'").fetchone()[0] == "2026-11-29T04:06:52Z"


def test_removed_feed_that_comes_back_is_restored(store: Store) -> None:
    poll(store, [entry("a")])
    store.set_feed_status("kyiv", "paused")
    store.sync_feeds([], NOW)
    store.sync_feeds([feed()], NOW + timedelta(days=1))

    back = store.feed_state("kyiv")
    assert back.status == "paused"
    assert back.last_success == NOW
    assert store.entry_counts() == {"kyiv": 1}
    assert store.db.execute("SELECT removed_at FROM feeds WHERE name = 'kyiv'").fetchone()[0] is None


def test_config_url_change_resets_validators(store: Store) -> None:
    store.record_poll("kyiv", {"etag": '"v1"', "last_modified": "Sun, 29 Nov 2026 04:00:00 GMT",
                               "body_hash": "abc", "consecutive_errors": 3, "status": "error",
                               "baselined": True}, {"at": NOW}, keep=KEEP)
    store.sync_feeds([feed(url="https://example.test/new.rss")], NOW)

    moved = store.feed_state("kyiv")
    assert moved.url == "https://example.test/new.rss"
    assert (moved.etag, moved.last_modified, moved.body_hash) == (None, None, None)
    assert (moved.consecutive_errors, moved.status, moved.baselined) == (0, "new", False)


def test_permanent_redirect_url_survives_a_sync_with_unchanged_config(store: Store) -> None:
    store.record_poll("kyiv", {"url": "https://example.test/moved.rss", "etag": '"v2"'}, {"at": NOW}, keep=KEEP)
    store.sync_feeds([feed()], NOW)
    state = store.feed_state("kyiv")
    assert (state.url, state.etag) == ("https://example.test/moved.rss", '"v2"')


def test_set_feed_status_rejects_unknown_status_and_feed(store: Store) -> None:
    with pytest.raises(ValueError):
        store.set_feed_status("kyiv", "removed")
    with pytest.raises(MonitorError, match="no feed named 'nope'"):
        store.set_feed_status("nope", "paused")


def test_poll_result_does_not_undo_a_pause(store: Store) -> None:
    store.set_feed_status("kyiv", "paused")
    store.record_poll("kyiv", {"status": "ok", "etag": '"x"'}, {"at": NOW}, keep=KEEP)
    state = store.feed_state("kyiv")
    assert (state.status, state.etag) == ("paused", '"x"')


# ------------------------------------------------------------------ entries


def test_classify_tombstoned_and_in_batch_duplicates(store: Store) -> None:
    poll(store, [entry("old")])
    store.prune(NOW + timedelta(days=10), retention_seconds=86400)

    labelled = store.classify("kyiv", [entry("old", "edited"), entry("fresh"), entry("fresh", "second copy")])

    assert [(e.guid, kind) for e, kind in labelled] == [("old", "tombstoned"), ("fresh", "new")]
    assert labelled[-1][0].summary == "body"  # the first of a duplicate guid wins


def test_classify_new_updated_same(store: Store) -> None:
    poll(store, [entry("same"), entry("changed")])
    labelled = store.classify("kyiv", [entry("same"), entry("changed", "edited"), entry("fresh")])
    assert [kind for _, kind in labelled] == ["same", "updated", "new"]


def test_classify_works_across_query_chunks(store: Store) -> None:
    poll(store, [entry(f"g{i}") for i in range(0, 1200, 2)])
    labelled = store.classify("kyiv", [entry(f"g{i}") for i in range(1200)])
    assert [kind for _, kind in labelled] == ["same", "new"] * 600


def test_repeated_polls_store_each_story_once(store: Store) -> None:
    batch = [entry("a"), entry("b"), entry("c")]
    first = poll(store, batch, matches={"a": [match()]})
    second = poll(store, batch, now=NOW + timedelta(minutes=10), matches={"a": [match()]})

    assert first == StoreResult(new=3, updated=0, unchanged=0, new_for_alerting=3, matched=1)
    assert second == StoreResult(new=0, updated=0, unchanged=3, new_for_alerting=0, matched=0)
    assert guids(store) == ["a", "b", "c"]
    assert store.db.execute("SELECT COUNT(*) FROM matches").fetchone()[0] == 1
    assert {s["first_seen"] for s in store.list_stories()} == {"2026-11-29T04:06:52Z"}
    last_seen = store.db.execute("SELECT DISTINCT last_seen FROM entries").fetchall()
    assert last_seen == [("2026-11-29T04:16:52Z",)]


def test_baseline_backlog_is_stored_but_not_alertable(store: Store) -> None:
    result = poll(store, [entry("old")], alertable=False)
    assert (result.new, result.new_for_alerting) == (1, 0)
    assert store.list_stories()[0]["alertable"] is False


def test_updated_entry_bumps_version_and_keeps_one_match_per_rule(store: Store) -> None:
    poll(store, [entry("a")], matches={"a": [match("china-war")]})
    later = NOW + timedelta(hours=1)
    result = poll(store, [entry("a", "edited")], now=later,
                  matches={"a": [match("china-war"), match("sanctions")]})

    assert (result.updated, result.matched) == (1, 1)
    row = store.db.execute("SELECT version, summary, updated_at, first_seen FROM entries").fetchone()
    assert row == (2, "edited", "2026-11-29T05:06:52Z", "2026-11-29T04:06:52Z")
    rows = store.db.execute("SELECT rule, entry_version FROM matches ORDER BY rule").fetchall()
    assert rows == [("china-war", 1), ("sanctions", 2)]


def test_match_explanation_is_stored(store: Store) -> None:
    poll(store, [entry("a")], matches={"a": [match()]})
    row = next(store.db.query("SELECT * FROM matches"))
    assert row["hits"] == '[{"field": "title", "start": 0, "end": 5, "term": "China"}]'
    assert (row["rule"], row["score"], row["severity"], row["tags"]) == ("china-war", 2.5, "warning", '["china"]')


def test_save_poll_is_all_or_nothing(store: Store) -> None:
    before = store.feed_state("kyiv")
    broken = [match(term=object())]  # hits that JSON cannot encode
    with pytest.raises(TypeError):
        poll(store, [entry("a"), entry("b")], matches={"b": broken})
    with pytest.raises(ValueError, match="no_such_column"):
        store.save_poll("kyiv", [(entry("c"), "new", True, [])], NOW,
                        {"no_such_column": 1}, {"outcome": "ok"}, keep=KEEP)

    assert guids(store) == []
    assert store.fetch_log("kyiv") == []
    assert store.feed_state("kyiv") == before
    assert poll(store, [entry("a"), entry("b")]).new == 2  # the connection is usable after


def test_record_poll_is_all_or_nothing(store: Store) -> None:
    with pytest.raises(ValueError, match="bogus"):
        store.record_poll("kyiv", {"etag": '"v1"'}, {"at": NOW, "bogus": 1}, keep=KEEP)
    assert store.feed_state("kyiv").etag is None


def test_record_poll_trims_the_fetch_log(store: Store) -> None:
    for minute in range(7):
        store.record_poll("kyiv", {"last_attempt": NOW}, {"at": NOW + timedelta(minutes=minute),
                                                          "outcome": "not_modified", "status": 304},
                          keep=3)
    log = store.fetch_log("kyiv")
    assert [row["at"] for row in log] == ["2026-11-29T04:12:52Z", "2026-11-29T04:11:52Z", "2026-11-29T04:10:52Z"]
    assert log[0]["status"] == 304


def test_save_poll_logs_its_counts(store: Store) -> None:
    poll(store, [entry("a"), entry("b")])
    assert store.fetch_log("kyiv")[0] | {"id": 0} == {
        "id": 0, "at": "2026-11-29T04:06:52Z", "outcome": "ok", "status": 200, "bytes": None,
        "duration": None, "error_kind": None, "error": None, "entries_new": 2, "entries_updated": 0}


def test_prune_leaves_tombstones_and_pruned_stories_never_return(store: Store) -> None:
    poll(store, [entry("old")], matches={"old": [match()]})
    poll(store, [entry("recent")], now=NOW + timedelta(days=5))
    assert store.prune(NOW + timedelta(days=5), retention_seconds=0) == 0

    assert store.prune(NOW + timedelta(days=5), retention_seconds=2 * 86400) == 1

    assert guids(store) == ["recent"]
    assert store.db.execute("SELECT COUNT(*) FROM matches").fetchone()[0] == 0
    assert store.db.execute("SELECT feed_id, guid, content_hash FROM tombstones").fetchall() == [
        (store.feed_state("kyiv").id, "old", "hash-body")]
    assert poll(store, [entry("old", "edited")], now=NOW + timedelta(days=6)).new == 0
    assert guids(store) == ["recent"]


def test_list_stories_filters_and_orders(store: Store) -> None:
    store.sync_feeds([feed(), feed("scmp", "https://example.test/scmp")], NOW)
    poll(store, [entry("a")])
    poll(store, [entry("b", feed_name="scmp")], now=NOW + timedelta(hours=2), name="scmp")
    poll(store, [entry("c")], now=NOW + timedelta(hours=3))

    assert [s["guid"] for s in store.list_stories()] == ["c", "b", "a"]
    assert [s["guid"] for s in store.list_stories(since=NOW + timedelta(hours=1))] == ["c", "b"]
    assert [s["guid"] for s in store.list_stories(feed="kyiv")] == ["c", "a"]
    assert [s["guid"] for s in store.list_stories(limit=1)] == ["c"]
    story = store.list_stories(feed="scmp")[0]
    assert isinstance(story["id"], int)
    assert {k: story[k] for k in ("feed", "guid", "url", "title", "published", "first_seen", "summary",
                                  "language", "authors", "tags")} == {
        "feed": "scmp", "guid": "b", "url": "https://example.test/b", "title": "Title b",
        "published": "2026-11-29T03:06:52Z", "first_seen": "2026-11-29T06:06:52Z", "summary": "body",
        "language": "en", "authors": ["A. Writer"], "tags": ["war"]}


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.sync_feeds([feed("x", "https://example.test/x")], datetime(2026, 1, 1))


def test_meta_round_trip(store: Store) -> None:
    assert store.get_meta("daemon_started") is None
    store.set_meta("daemon_started", "2026-11-29T04:06:52Z")
    store.set_meta("daemon_started", "2026-11-30T00:00:00Z")
    assert store.get_meta("daemon_started") == "2026-11-30T00:00:00Z"


# ----------------------------------------------------- processes and threads


def test_restart_keeps_all_state(db_path: Path) -> None:
    store = Store.open(db_path)
    store.sync_feeds([feed()], NOW)
    poll(store, [entry("a")], matches={"a": [match()]})
    store.record_poll("kyiv", {"etag": '"v1"', "next_poll": NOW + timedelta(minutes=10),
                               "retry_after": NOW + timedelta(hours=1), "baselined": True,
                               "consecutive_errors": 2, "last_error": "boom"},
                      {"at": NOW}, keep=KEEP)
    store.set_meta("last_cycle", "x")
    before = store.feed_state("kyiv")
    store.close()

    again = Store.open(db_path)
    after = again.feed_state("kyiv")
    assert after == before
    assert after.next_poll == NOW + timedelta(minutes=10) and after.next_poll.tzinfo is not None
    assert guids(again) == ["a"]
    assert again.get_meta("last_cycle") == "x"
    assert poll(again, [entry("a")]).new == 0
    again.close()


def test_reader_reads_while_writer_holds_a_transaction(sqlite_store: Store, db_path: Path) -> None:
    store = sqlite_store
    poll(store, [entry("committed")])
    reader = Store.open(db_path, readonly=True)
    try:
        store.db.execute("BEGIN EXCLUSIVE")  # without WAL this would lock readers out
        store.db.execute("UPDATE entries SET title = 'uncommitted'")
        stories = reader.list_stories()
        assert [(s["guid"], s["title"]) for s in stories] == [("committed", "Title committed")]
        assert reader.entry_counts() == {"kyiv": 1}
        store.db.rollback()
    finally:
        reader.close()


def test_readonly_store_refuses_writes(store: Store, location: Path | str) -> None:
    reader = Store.open(location, readonly=True)
    try:
        with pytest.raises(MonitorError, match="read-only"):
            reader.set_meta("k", "v")
        with pytest.raises(database_errors(), match="readonly|read-only"):
            reader.db.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        assert reader.get_meta("k") is None
    finally:
        reader.close()


def test_reader_opens_a_closed_database(db_path: Path) -> None:
    writer = Store.open(db_path)
    writer.sync_feeds([feed()], NOW)
    writer.close()
    reader = Store.open(db_path, readonly=True)
    assert [s.name for s in reader.feed_states()] == ["kyiv"]
    reader.close()


def test_store_thread_runs_every_call_on_one_owner_thread(db_path: Path) -> None:
    def where(store: Store) -> int:
        return threading.get_ident()

    async def scenario(owner: StoreThread) -> tuple[set[int], int]:
        await owner.call(Store.sync_feeds, [feed()], NOW)
        idents = set(await asyncio.gather(*(owner.call(where) for _ in range(10))))
        new = (await owner.call(poll, [entry("a")])).new
        return idents, new

    owner = StoreThread(db_path)
    try:
        idents, new = asyncio.run(scenario(owner))
    finally:
        owner.close()
    assert len(idents) == 1 and idents != {threading.get_ident()}
    assert new == 1
    owner.close()  # closing twice is harmless


def test_store_thread_reports_an_unopenable_database(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(MonitorError, match="cannot open the database"):
        StoreThread(blocker / "monitor.db")
