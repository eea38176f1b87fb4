"""The daemon resumes each feed's stored rhythm instead of resetting every timer."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from monitor.config.load import Config
from monitor.ingest.once import run_once
from monitor.ingest.prepare import Prepared
from monitor.models import FeedConfig, FetchSettings, PollSettings
from monitor.runtime.daemon import Daemon
from monitor.store.database import Store
from support.feeds import Item, rss
from support.feedserver import drip, static


def prepared(config: Config) -> Prepared:
    from monitor.alert.outbox import Planner
    from monitor.alert.render import Templates
    from monitor.ingest.prepare import Alerting
    from monitor.models import AlertSettings

    settings = AlertSettings()
    return Prepared(config, None, Alerting((), (), settings, "UTC", Templates(),
                                           Planner((), settings, "UTC")))


def test_restart_resumes_stored_next_poll_and_new_feeds_start_now(feed_server, tmp_path):
    feed_server.routes["/a"] = static(rss([Item("1", "Story")]))
    old = FeedConfig("old", feed_server.url("/a"), 600.0)
    db = tmp_path / "monitor.db"
    config = Config(dir=tmp_path, fetch=FetchSettings(), poll=PollSettings(), feeds=(old,),
                    timezone="UTC", log_level="info")
    asyncio.run(run_once(config, db))
    store = Store.open(db, readonly=True)
    stored_next = store.feed_state("old").next_poll
    store.close()
    assert stored_next > datetime.now(UTC) + timedelta(minutes=8)

    new = FeedConfig("new", feed_server.url("/a"), 600.0)
    config = Config(dir=tmp_path, fetch=FetchSettings(), poll=PollSettings(), feeds=(old, new),
                    timezone="UTC", log_level="info")

    async def scheduled() -> dict[str, datetime]:
        daemon = Daemon(prepared(config), db)
        await daemon.start()
        try:
            return {job.id: job.next_run_time for job in daemon.scheduler.get_jobs()}
        finally:
            daemon.scheduler.pause()
            await daemon.stop()

    before = datetime.now(UTC)
    jobs = asyncio.run(scheduled())
    assert jobs["old"] == stored_next
    assert before - timedelta(seconds=1) <= jobs["new"] <= datetime.now(UTC) + timedelta(seconds=1)
    assert "housekeeping" in jobs


def test_a_silent_feed_alerts_the_admins_once_per_quiet_spell(tmp_path, webhook):
    from monitor.alert.outbox import Planner
    from monitor.alert.render import Templates
    from monitor.ingest.prepare import Alerting
    from monitor.models import AlertSettings, Destination, Entry

    t0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    feed = FeedConfig("quiet", "http://127.0.0.1:9/feed", 3600.0)
    db = tmp_path / "monitor.db"
    store = Store.open(db)
    store.sync_feeds([feed], t0)
    old = t0 - timedelta(days=2)
    story = Entry(feed="quiet", guid="1", url=None, title="Last story", content_hash="h")
    store.save_poll("quiet", [(story, "new", False, [])], old, {"status": "ok"}, {"outcome": "ok"}, keep=5)
    store.close()
    admin = Destination(name="ops", url=webhook.url(), safe_url=webhook.url(), tags=("admin",))
    settings = AlertSettings(health_silence=10)
    alerting = Alerting(destinations=(admin,), admins=(admin,), settings=settings, tz="UTC",
                        templates=Templates(), planner=Planner((admin,), settings, "UTC"))
    config = Config(dir=tmp_path, fetch=FetchSettings(), poll=PollSettings(), feeds=(feed,),
                    timezone="UTC", log_level="info")

    async def check_twice() -> None:
        daemon = Daemon(Prepared(config, None, alerting), db, clock=lambda: t0)
        await daemon.start()
        daemon.scheduler.pause()
        try:
            await daemon._check_silence()
            await daemon._check_silence()
            await daemon._dispatch()
        finally:
            await daemon.stop()

    asyncio.run(check_twice())
    assert [p["title"] for p in webhook.posts] == ["[monitor] feed quiet is silent for 2d"]


def test_housekeeping_indexes_new_stories_for_search(feed_server, tmp_path):
    from monitor.store.search import pending_count

    feed_server.routes["/a"] = static(rss([Item("1", "Китаю вигідна війна"), Item("2", "Weather")]))
    feed = FeedConfig("a", feed_server.url("/a"), 600.0, language="uk")
    db = tmp_path / "monitor.db"
    config = Config(dir=tmp_path, fetch=FetchSettings(), poll=PollSettings(), feeds=(feed,),
                    timezone="UTC", log_level="info")
    asyncio.run(run_once(config, db))
    store = Store.open(db, readonly=True)
    assert pending_count(store) == 2
    store.close()

    async def housekeeping() -> None:
        daemon = Daemon(prepared(config), db)
        await daemon.start()
        daemon.scheduler.pause()
        try:
            await daemon._housekeeping()
        finally:
            await daemon.stop()

    asyncio.run(housekeeping())
    store = Store.open(db, readonly=True)
    assert pending_count(store) == 0
    store.close()


def test_a_poll_outlasting_its_interval_is_one_debug_line_not_a_scheduler_warning(
        feed_server, tmp_path, caplog):
    feed_server.routes["/slow"] = drip(rss([Item("1", "Story")]), delay=0.5)
    slow = FeedConfig("slow", feed_server.url("/slow"), 0.2)
    config = Config(dir=tmp_path, fetch=FetchSettings(deadline=2.0), poll=PollSettings(),
                    feeds=(slow,), timezone="UTC", log_level="info")
    caplog.set_level(logging.DEBUG, logger="monitor.runtime.daemon")
    caplog.set_level(logging.DEBUG, logger="apscheduler")

    def skipped() -> bool:
        return any("poll still running at its next turn" in r.getMessage() for r in caplog.records)

    async def run() -> None:
        daemon = Daemon(prepared(config), tmp_path / "monitor.db")
        await daemon.start()
        try:
            while not skipped():
                await asyncio.sleep(0.05)  # the scheduler's own clock drives the skipped turn
        finally:
            await daemon.stop()

    asyncio.run(asyncio.wait_for(run(), 30))
    assert not [r for r in caplog.records
                if r.levelno >= logging.WARNING and "maximum number of running" in r.getMessage()]
    assert any(r.getMessage() == "poll still running at its next turn, skipped job=slow"
               for r in caplog.records)
