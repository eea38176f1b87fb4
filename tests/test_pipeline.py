"""The orchestrated poll: fetch -> parse -> classify -> match -> store, with an injected clock."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config.load import Config
from monitor.ingest.fetch import Fetcher
from monitor.ingest.once import run_once
from monitor.ingest.pipeline import Pipeline
from monitor.models import FeedConfig, FetchSettings, Hit, Match, PollSettings
from monitor.store.database import Store, StoreThread
from support.feeds import Item, rss
from support.feedserver import send, static

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def make_config(tmp_path: Path, feeds: list[FeedConfig], **poll: float) -> Config:
    return Config(dir=tmp_path, fetch=FetchSettings(deadline=5.0), poll=PollSettings(**poll),
                  feeds=tuple(feeds), timezone="UTC", log_level="info")


def rows(db: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


async def poll_sequence(config: Config, db: Path, clock: Clock, feed: FeedConfig, polls: int,
                        between=None, match=None):
    """Poll one feed `polls` times on one pipeline, calling between(i) after each poll."""
    store = StoreThread(db)
    reports = []
    try:
        await store.call(Store.sync_feeds, config.feeds, clock())
        async with Fetcher(config.fetch) as fetcher:
            pipeline = Pipeline(config, store, fetcher, match, clock=clock, rng=random.Random(1))
            try:
                for i in range(polls):
                    reports.append(await pipeline.poll(feed))
                    if between is not None:
                        between(i)
            finally:
                pipeline.close()
    finally:
        store.close()
    return reports


def test_baseline_alerts_only_recent_backlog_and_repoll_stores_nothing_twice(feed_server, tmp_path):
    items = [
        Item("old-1", "Old story one", published=T0 - timedelta(days=3)),
        Item("old-2", "Old story two", published=T0 - timedelta(days=2)),
        Item("recent", "Recent story", published=T0 - timedelta(hours=2)),
        Item("undated", "Story without a date"),
    ]
    feed_server.routes["/feed"] = static(rss(items))
    feed = FeedConfig("test", feed_server.url("/feed"), 600.0)
    config = make_config(tmp_path, [feed])
    db = tmp_path / "monitor.db"
    clock = Clock(T0)

    def more(i: int) -> None:
        clock.advance(minutes=10)
        if i == 1:  # after the second poll (a 304), a new story appears
            feed_server.routes["/feed"] = static(rss(items + [Item("fresh", "Fresh story", published=T0)]))

    reports = asyncio.run(poll_sequence(config, db, clock, feed, 3, between=more))

    assert [r.outcome for r in reports] == ["ok", "not_modified", "ok"]
    assert [r.new for r in reports] == [4, 0, 1]
    stored = dict(rows(db, "select guid, alertable from entries"))
    assert stored == {"old-1": 0, "old-2": 0, "recent": 1, "undated": 0, "fresh": 1}
    assert rows(db, "select count(*) from entries")[0][0] == 5
    # the conditional GET really was conditional on the second poll
    second = feed_server.requests_to("/feed")[1]
    assert second.headers.get("If-None-Match")


def test_backlog_window_zero_alerts_nothing_from_the_backlog(feed_server, tmp_path):
    feed_server.routes["/feed"] = static(rss([Item("a", "A story", published=T0)]))
    feed = FeedConfig("test", feed_server.url("/feed"), 600.0)
    config = make_config(tmp_path, [feed], backlog_window=0)
    db = tmp_path / "monitor.db"
    asyncio.run(poll_sequence(config, db, Clock(T0), feed, 1))
    assert rows(db, "select guid, alertable from entries") == [("a", 0)]


def test_matches_are_stored_with_their_entry(feed_server, tmp_path):
    feed_server.routes["/feed"] = static(rss([
        Item("a", "Chinese drone parts reach Russia", published=T0),
        Item("b", "Weather in Kyiv", published=T0),
    ]))
    feed = FeedConfig("test", feed_server.url("/feed"), 600.0)
    config = make_config(tmp_path, [feed])
    db = tmp_path / "monitor.db"

    def match(entry, feed_tags):
        if "drone" not in entry.title:
            return []
        start = entry.title.index("drone")
        return [Match("china_drones", 3.0, "warning", ("drones",),
                      (Hit("title", start, start + 5, "drone*"),), "Chinese [[drone]] parts")]

    asyncio.run(poll_sequence(config, db, Clock(T0), feed, 1, match=match))
    assert rows(db, "select e.guid, m.rule, m.score from matches m join entries e on e.id = m.entry_id") == [
        ("a", "china_drones", 3.0)]


def test_errors_back_off_and_gone_stops_polling(feed_server, tmp_path):
    status = {"code": 500}

    def route(handler):
        send(handler, status["code"], b"boom", {"Content-Type": "text/plain"})

    feed_server.routes["/feed"] = route
    feed = FeedConfig("test", feed_server.url("/feed"), 600.0)
    config = make_config(tmp_path, [feed])
    db = tmp_path / "monitor.db"
    clock = Clock(T0)

    def step(i: int) -> None:
        if i == 1:
            status["code"] = 410

    reports = asyncio.run(poll_sequence(config, db, clock, feed, 4, between=step))
    assert [r.outcome for r in reports] == ["error", "error", "gone", "skipped"]
    assert len(feed_server.requests_to("/feed")) == 3
    store = Store.open(db, readonly=True)
    state = store.feed_state("test")
    store.close()
    assert state.status == "gone"
    assert state.consecutive_errors == 2
    assert "410" in state.last_error


def test_html_page_is_a_feed_error_not_a_crash(feed_server, tmp_path):
    feed_server.routes["/feed"] = static(b"<!doctype html><html><body>Hi</body></html>",
                                         content_type="text/html")
    feed_server.routes["/ok"] = static(rss([Item("a", "Story", published=T0)]))
    feeds = [FeedConfig("html", feed_server.url("/feed"), 600.0),
             FeedConfig("good", feed_server.url("/ok"), 600.0)]
    config = make_config(tmp_path, feeds)
    db = tmp_path / "monitor.db"
    summary = asyncio.run(run_once(config, db, clock=Clock(T0)))
    outcomes = {r.feed: r.outcome for r in summary.reports}
    assert outcomes == {"html": "error", "good": "ok"}
    store = Store.open(db, readonly=True)
    state = store.feed_state("html")
    store.close()
    assert state.last_error_kind == "not_a_feed"
    assert state.consecutive_errors == 1


def test_run_once_honours_backoff_and_retry_after(feed_server, tmp_path):
    def limited(handler):
        send(handler, 429, b"slow down", {"Retry-After": "3600", "Content-Type": "text/plain"})

    feed_server.routes["/limited"] = limited
    feed = FeedConfig("limited", feed_server.url("/limited"), 600.0)
    config = make_config(tmp_path, [feed])
    db = tmp_path / "monitor.db"
    clock = Clock(T0)
    first = asyncio.run(run_once(config, db, clock=clock))
    clock.advance(minutes=30)
    second = asyncio.run(run_once(config, db, clock=clock))
    clock.advance(minutes=31)
    third = asyncio.run(run_once(config, db, clock=clock))
    assert [r.outcome for r in first.reports] == ["error"]
    assert [r.outcome for r in second.reports] == ["skipped"]
    assert [r.outcome for r in third.reports] == ["error"]
    assert len(feed_server.requests_to("/limited")) == 2


def test_permanent_redirect_updates_stored_url(feed_server, tmp_path):
    from support.feedserver import redirect

    feed_server.routes["/old"] = redirect("/new", 301)
    feed_server.routes["/new"] = static(rss([Item("a", "Story", published=T0)]))
    feed = FeedConfig("moved", feed_server.url("/old"), 600.0)
    config = make_config(tmp_path, [feed])
    db = tmp_path / "monitor.db"
    clock = Clock(T0)
    asyncio.run(run_once(config, db, clock=clock))
    store = Store.open(db, readonly=True)
    assert store.feed_state("moved").url == feed_server.url("/new")
    store.close()
    asyncio.run(run_once(config, db, clock=clock))
    assert len(feed_server.requests_to("/old")) == 1
    assert rows(db, "select count(*) from entries")[0][0] == 1


def test_feed_health_alerts_once_when_failing_and_once_when_recovered(feed_server, tmp_path, webhook):
    from monitor.alert.outbox import Planner
    from monitor.alert.render import Templates
    from monitor.ingest.prepare import Alerting
    from monitor.models import AlertSettings, Destination

    status = {"code": 500}

    def route(handler):
        if status["code"] == 200:
            static(rss([Item("a", "Back", published=T0)]))(handler)
        else:
            send(handler, status["code"], b"down", {"Content-Type": "text/plain"})

    feed_server.routes["/feed"] = route
    admin = Destination(name="ops", url=webhook.url(), safe_url=webhook.url(), tags=("admin",))
    settings = AlertSettings(health_failures=3)
    alerting = Alerting(destinations=(admin,), admins=(admin,), settings=settings, tz="UTC",
                        templates=Templates(), planner=Planner((admin,), settings, "UTC"))
    feed = FeedConfig("flaky", feed_server.url("/feed"), 600.0)
    config = make_config(tmp_path, [feed])
    db = tmp_path / "monitor.db"
    clock = Clock(T0)

    async def polls(n: int):
        store = StoreThread(db)
        try:
            await store.call(Store.sync_feeds, config.feeds, clock())
            async with Fetcher(config.fetch) as fetcher:
                pipeline = Pipeline(config, store, fetcher, clock=clock, alerting=alerting)
                try:
                    for i in range(n):
                        if i == 5:
                            status["code"] = 200
                        await pipeline.poll(feed)
                        clock.advance(hours=1)
                finally:
                    pipeline.close()
            await alerting.dispatcher(store, clock).dispatch_due()
        finally:
            store.close()

    asyncio.run(polls(7))
    titles = sorted(post["title"] for post in webhook.posts)  # sent concurrently: any order
    assert len(titles) == 2, titles
    assert "flaky is failing" in titles[0] and "HTTP 500" in titles[0]
    assert "flaky recovered" in titles[1]


def test_feed_credentials_go_as_a_header_and_never_into_the_database(feed_server, tmp_path):
    feed_server.routes["/private"] = static(rss([Item("a", "Members only", published=T0)]))
    url = feed_server.url("/private").replace("http://", "http://reader:s3cr%40t@")
    config = make_config(tmp_path, [FeedConfig("private", url, 600.0)])
    db = tmp_path / "monitor.db"
    summary = asyncio.run(run_once(config, db, clock=Clock(T0)))
    assert [r.outcome for r in summary.reports] == ["ok"]
    import base64
    sent = feed_server.requests_to("/private")[0].headers["Authorization"]
    assert base64.b64decode(sent.split()[1]) == b"reader:s3cr@t"
    assert b"s3cr" not in db.read_bytes() and b"reader" not in db.read_bytes()


@pytest.mark.parametrize("reloaded_limit", [None, 3])
def test_fetching_waits_while_matching_falls_behind(feed_server, tmp_path, reloaded_limit):
    """At most global_limit polls are under way from fetch to store: with matching stuck,
    no further feed is fetched (its body would only pile up in memory). A reloaded
    global_limit applies to the polls that start after the reload."""
    limit = reloaded_limit or 2
    beyond_limit = threading.Event()
    served: list[str] = []

    def counted(body: bytes):
        inner = static(body)

        def route(handler):
            served.append(handler.path)
            if len(served) > limit:
                beyond_limit.set()
            inner(handler)
        return route

    feeds = []
    for i in range(5):
        feed_server.routes[f"/f{i}"] = counted(rss([Item(f"g{i}", f"Story {i}")]))
        feeds.append(FeedConfig(f"f{i}", feed_server.url(f"/f{i}"), 600.0))
    config = Config(dir=tmp_path, fetch=FetchSettings(deadline=5.0, global_limit=2), poll=PollSettings(),
                    feeds=tuple(feeds), timezone="UTC", log_level="info")
    served_when_first_match_ended: list[int] = []

    def match(entry, feed_tags):
        if not served_when_first_match_ended:
            beyond_limit.wait(timeout=2.0)  # set at once if fetching does not wait
            served_when_first_match_ended.append(len(served))
        return []

    async def run() -> list:
        store = StoreThread(tmp_path / "monitor.db")
        try:
            await store.call(Store.sync_feeds, config.feeds, T0)
            async with Fetcher(config.fetch) as fetcher:
                pipeline = Pipeline(config, store, fetcher, match, clock=lambda: T0, parse_workers=0)
                if reloaded_limit is not None:
                    reloaded = dataclasses.replace(
                        config, fetch=dataclasses.replace(config.fetch, global_limit=reloaded_limit))
                    pipeline.reconfigure(reloaded, match, None)
                try:
                    return await asyncio.gather(*(pipeline.poll(feed) for feed in feeds))
                finally:
                    pipeline.close()
        finally:
            store.close()

    reports = asyncio.run(run())
    assert [r.outcome for r in reports] == ["ok"] * 5  # all polled in the end
    assert served_when_first_match_ended == [limit]


def test_each_poll_report_carries_the_next_poll_it_stored(feed_server, tmp_path):
    """The daemon re-times a feed's job from the report, without reading the store back."""
    feed_server.routes["/feed"] = static(rss([Item("a", "A story", published=T0)]))
    feed_server.routes["/gone"] = static(b"", status=410)
    feeds = [FeedConfig("test", feed_server.url("/feed"), 600.0),
             FeedConfig("gone", feed_server.url("/gone"), 600.0)]
    config = make_config(tmp_path, feeds)
    db = tmp_path / "monitor.db"
    clock = Clock(T0)

    def later(i: int) -> None:
        clock.advance(minutes=10)

    reports = asyncio.run(poll_sequence(config, db, clock, feeds[0], 2, between=later))
    (gone,) = asyncio.run(poll_sequence(config, db, clock, feeds[1], 1))

    assert [r.outcome for r in reports] == ["ok", "not_modified"]
    stored = datetime.fromisoformat(rows(db, "select next_poll from feeds where name = 'test'")[0][0])
    assert reports[1].next_poll.replace(microsecond=0) == stored
    assert reports[0].next_poll < reports[1].next_poll
    assert (gone.outcome, gone.next_poll) == ("gone", None)
