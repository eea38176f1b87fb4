"""The outbox and dispatcher with an injected clock: digests, quiet hours, rate limits,
copies from several outlets, retries and dead alerts. Real SQLite, real apprise, a real
webhook receiver."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.alert.dispatch import Dispatcher
from monitor.alert.outbox import Planner, list_alerts, retry
from monitor.models import AlertSettings, Destination, Entry, FeedConfig, Hit, Match
from monitor.store import Store, StoreThread

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)  # 12:00 in Kyiv


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def entry(feed: str, guid: str, title: str, url: str | None = None) -> Entry:
    return Entry(feed=feed, guid=guid, url=url or f"https://{feed}.example/{guid}", title=title,
                 published=T0, content_hash=guid + title)


def match(rule: str = "china_drones", severity: str = "warning", tags=("drones",)) -> Match:
    return Match(rule, 4.5, severity, tags, (Hit("title", 0, 5, "China"),), "[[China]] drones")


class Harness:
    """Stores polls with a planner and dispatches with the same injected clock."""

    def __init__(self, db: Path, destinations: list[Destination], settings: AlertSettings,
                 feeds=("one", "two")) -> None:
        self.clock = Clock()
        self.db = db
        self.destinations = destinations
        self.settings = settings
        self.planner = Planner(destinations, settings, "Europe/Kyiv", {"china_drones": "Chinese drones"})
        store = Store.open(db)
        store.sync_feeds([FeedConfig(f, f"http://127.0.0.1/{f}", 600.0) for f in feeds], T0)
        store.close()

    def poll(self, feed: str, *items: tuple[Entry, Match]) -> None:
        store = Store.open(self.db)
        try:
            store.save_poll(feed, [(e, "new", True, [m]) for e, m in items], self.clock(),
                            {"status": "ok"}, {"outcome": "ok"}, keep=10, planner=self.planner)
        finally:
            store.close()

    def dispatch(self):
        async def go():
            store = StoreThread(self.db)
            try:
                dispatcher = Dispatcher(store, self.destinations, self.settings, "Europe/Kyiv",
                                        clock=self.clock)
                return await dispatcher.dispatch_due()
            finally:
                store.close()

        return asyncio.run(go())

    def statuses(self) -> list[tuple[str, str, str]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("select destination, status, delivery from alerts order by id").fetchall()


def dest(webhook, name: str = "chat", **kw) -> Destination:
    return Destination(name=name, url=webhook.url(), safe_url=webhook.url(), **kw)


def test_immediate_alert_goes_once_and_routing_follows_tags(tmp_path, webhook):
    routed = [dest(webhook, "drones-desk", tags=("drones",)), dest(webhook, "sanctions-desk", tags=("sanctions",)),
              dest(webhook, "everything")]
    h = Harness(tmp_path / "m.db", routed, AlertSettings())
    h.poll("one", (entry("one", "1", "China drones"), match()))
    report = h.dispatch()
    assert report.sent == 2 and report.failed == 0
    assert sorted(d for d, _, _ in h.statuses()) == ["drones-desk", "everything"]
    assert h.dispatch().sent == 0  # nothing twice
    assert len(webhook.posts) == 2


def test_digest_destination_holds_until_its_time_and_sends_one_message(tmp_path, webhook):
    h = Harness(tmp_path / "m.db", [dest(webhook, mode="digest", digest_at="18:00")], AlertSettings())
    h.poll("one", (entry("one", "1", "China drones one"), match()),
           (entry("one", "2", "China drones two, another story entirely"), match()))
    assert h.dispatch().sent == 0
    h.clock.now = datetime(2026, 11, 29, 16, 0, tzinfo=timezone.utc)  # 18:00 Kyiv
    assert h.dispatch().sent == 2
    assert len(webhook.posts) == 1
    assert webhook.posts[0]["title"].startswith("[monitor] 2 stories")


def test_critical_breaks_through_a_digest(tmp_path, webhook):
    h = Harness(tmp_path / "m.db", [dest(webhook, mode="digest", digest_every=6 * 3600)], AlertSettings())
    h.poll("one", (entry("one", "1", "China drones"), match(severity="critical")))
    assert h.dispatch().sent == 1
    assert webhook.posts[0]["title"].startswith("[china_drones]")


def test_quiet_hours_hold_alerts_then_send_one_digest(tmp_path, webhook):
    h = Harness(tmp_path / "m.db", [dest(webhook, quiet_hours=("22:00", "07:00"))], AlertSettings())
    h.clock.now = datetime(2026, 11, 29, 21, 0, tzinfo=timezone.utc)  # 23:00 Kyiv
    h.poll("one", (entry("one", "1", "China drones at night"), match()),
           (entry("one", "2", "Beijing drone parts shipped overnight to Russia"), match()))
    assert h.dispatch().sent == 0
    h.clock.now = datetime(2026, 11, 30, 5, 0, tzinfo=timezone.utc)  # 07:00 Kyiv
    assert h.dispatch().sent == 2
    assert len(webhook.posts) == 1 and "2 stories" in webhook.posts[0]["title"]


def test_rate_limit_folds_the_burst_into_a_digest_instead_of_dropping(tmp_path, webhook):
    h = Harness(tmp_path / "m.db", [dest(webhook, rate_limit=2)], AlertSettings())
    burst = [(entry("one", str(i), f"China drones story number {i} with its own words {i * 7}"), match())
             for i in range(5)]
    h.poll("one", *burst)
    assert h.dispatch().sent == 2
    assert [s for _, s, _ in h.statuses()] == ["sent", "sent", "pending", "pending", "pending"]
    h.clock.now += timedelta(hours=1)
    assert h.dispatch().sent == 3
    assert len(webhook.posts) == 3  # two alone, then one digest of three


def test_a_story_from_a_second_outlet_is_recorded_not_sent_again(tmp_path, webhook):
    h = Harness(tmp_path / "m.db", [dest(webhook)], AlertSettings())
    h.poll("one", (entry("one", "a", "Russian edition", "https://112.ua/politika/china-drones-123.html"), match()))
    h.dispatch()
    h.poll("two", (entry("two", "b", "Ukrainian edition", "https://ua.112.ua/politika/china-drones-123.html"), match()))
    assert h.dispatch().sent == 0
    assert [s for _, s, _ in h.statuses()] == ["sent", "duplicate"]
    store = Store.open(h.db, readonly=True)
    original = [a for a in list_alerts(store) if a["status"] == "sent"][0]
    store.close()
    assert original["also_reported_by"] == ["two"]
    assert len(webhook.posts) == 1


def test_status_shows_todays_stories_also_reported_by_other_outlets(tmp_path, webhook):
    from monitor.cli.status import summary_lines
    from monitor.status import gather_status

    two_destinations = [dest(webhook), dest(webhook, "second")]
    h = Harness(tmp_path / "m.db", two_destinations, AlertSettings(), feeds=("one", "two", "three"))
    h.poll("one", (entry("one", "a", "Russian edition", "https://112.ua/politika/china-drones-123.html"), match()))
    h.dispatch()
    h.poll("two", (entry("two", "b", "Ukrainian edition", "https://ua.112.ua/politika/china-drones-123.html"), match()))
    h.poll("three", (entry("three", "c", "A story of its own about China's drones"), match()))
    status = gather_status(h.db, None, T0)
    assert status["also_reported_today"] == [
        {"title": "Russian edition", "feed": "one", "also_reported_by": ["two"]}]  # once, not per destination
    assert "copies:  Russian edition (one), also reported by two" in summary_lines(status)
    assert gather_status(h.db, None, T0 + timedelta(days=1))["also_reported_today"] == []  # today only


def test_grouping_delay_merges_copies_arriving_together(tmp_path, webhook):
    h = Harness(tmp_path / "m.db", [dest(webhook)], AlertSettings(grouping_delay=60))
    h.poll("one", (entry("one", "a", "China sends drone parts to Russia, customs data show"), match()))
    h.poll("two", (entry("two", "b", "China sends drone parts to Russia, customs data show"), match()))
    assert h.dispatch().sent == 0
    h.clock.now += timedelta(seconds=61)
    assert h.dispatch().sent == 1
    assert "two" in webhook.posts[0]["message"]  # also reported by


def test_failures_retry_with_backoff_then_die_and_retry_revives(tmp_path, webhook):
    webhook.status = 500
    h = Harness(tmp_path / "m.db", [dest(webhook)], AlertSettings(retry_base=60, max_age=3600))
    h.poll("one", (entry("one", "1", "China drones"), match()))
    assert h.dispatch().failed == 1
    assert h.dispatch().failed == 0  # not due again yet
    h.clock.now += timedelta(seconds=61)
    assert h.dispatch().failed == 1
    h.clock.now += timedelta(hours=2)
    report = h.dispatch()
    assert report.dead == 1 and h.statuses()[0][1] == "dead"
    webhook.status = 200
    store = Store.open(h.db)
    assert retry(store, None, h.clock()) == 1
    store.close()
    assert h.dispatch().sent == 1 and len(webhook.posts) == 1


def test_one_failing_destination_does_not_delay_the_other(tmp_path, webhook):
    dead = Destination(name="dead", url="mailto://127.0.0.1:9?from=a@example.org&to=b@example.org",
                       safe_url="mailto://127.0.0.1:9")
    h = Harness(tmp_path / "m.db", [dead, dest(webhook)], AlertSettings())
    h.poll("one", (entry("one", "1", "China drones"), match()))
    report = h.dispatch()
    assert (report.sent, report.failed) == (1, 1)
    assert dict((d, s) for d, s, _ in h.statuses()) == {"dead": "failed", "chat": "sent"}


def test_a_burst_after_downtime_becomes_a_digest_by_default(tmp_path, webhook):
    h = Harness(tmp_path / "m.db", [dest(webhook)], AlertSettings())  # default flood guard: 10/rule/hour
    burst = [(entry("one", str(i), f"China drones story {i} from the gap, {i * 31} words on"), match())
             for i in range(14)]
    h.poll("one", *burst)
    assert h.dispatch().sent == 10
    h.clock.now += timedelta(hours=1)
    assert h.dispatch().sent == 4
    assert len(webhook.posts) == 11 and "4 stories" in webhook.posts[-1]["title"]
