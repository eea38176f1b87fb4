"""The outbox and dispatcher with an injected clock: digests, quiet hours, rate limits,
copies from several outlets, retries and dead alerts. Real SQLite, real apprise, a real
webhook receiver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.alert.dispatch import Dispatcher
from monitor.alert.outbox import Planner, list_alerts
from monitor.ingest.storing import store_poll
from monitor.models import AlertSettings, Destination, Entry, FeedConfig, Hit, Match
from monitor.store.database import Store, StoreThread
from monitor.store.outbox import retry, start_sending

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)  # 12:00 in Kyiv


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

    def __init__(self, db: Path | str, destinations: list[Destination], settings: AlertSettings,
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
            store_poll(store, feed, [(e, "new", True, [m]) for e, m in items], self.clock(),
                       {"status": "ok"}, {"outcome": "ok"}, keep=10, planner=self.planner)
        finally:
            store.close()

    def poll_story(self, feed: str, story: Entry, matches: list[Match], kind: str = "new") -> None:
        """One entry with several matches, as new or as an update of a stored one."""
        store = Store.open(self.db)
        try:
            store_poll(store, feed, [(story, kind, True, matches)], self.clock(),
                       {"status": "ok"}, {"outcome": "ok"}, keep=10, planner=self.planner)
        finally:
            store.close()

    def dispatch(self, destinations: list[Destination] | None = None):
        async def go():
            store = StoreThread(self.db)
            try:
                dispatcher = Dispatcher(store, self.destinations if destinations is None
                                        else destinations, self.settings, "Europe/Kyiv",
                                        clock=self.clock)
                return await dispatcher.dispatch_due()
            finally:
                store.close()

        return asyncio.run(go())

    def statuses(self) -> list[tuple[str, str, str]]:
        store = Store.open(self.db, readonly=True)
        try:
            return [tuple(row) for row in store.db.execute(
                "select destination, status, delivery from alerts order by id").fetchall()]
        finally:
            store.close()


def dest(webhook, name: str = "chat", **kw) -> Destination:
    return Destination(name=name, url=webhook.url(), safe_url=webhook.url(), **kw)


def test_immediate_alert_goes_once_and_routing_follows_tags(store_location, webhook):
    routed = [dest(webhook, "drones-desk", tags=("drones",)), dest(webhook, "sanctions-desk", tags=("sanctions",)),
              dest(webhook, "everything")]
    h = Harness(store_location, routed, AlertSettings())
    h.poll("one", (entry("one", "1", "China drones"), match()))
    report = h.dispatch()
    assert report.sent == 2 and report.failed == 0
    assert sorted(d for d, _, _ in h.statuses()) == ["drones-desk", "everything"]
    assert h.dispatch().sent == 0  # nothing twice
    assert len(webhook.posts) == 2


def test_a_send_whose_sender_died_is_sent_again_marked_a_possible_duplicate(store_location, webhook):
    h = Harness(store_location, [dest(webhook)], AlertSettings())
    h.poll("one", (entry("one", "1", "China drones"), match()))
    store = Store.open(h.db)
    try:  # a sender took the alert and died before it could record the outcome
        (alert_id,) = [row["id"] for row in list_alerts(store)]
        start_sending(store, [alert_id], h.clock())
    finally:
        store.close()
    assert h.dispatch().sent == 1 and len(webhook.posts) == 1
    assert [(a["status"], bool(a["possible_duplicate"])) for a in story_alerts(h.db)] == [("sent", True)]
    h.poll("one", (entry("one", "2", "Beijing drones"), match()))
    assert h.dispatch().sent == 1  # an alert sent in one go is no duplicate
    newest_first = [(a["status"], bool(a["possible_duplicate"])) for a in story_alerts(h.db)]
    assert newest_first == [("sent", False), ("sent", True)]


def test_digest_destination_holds_until_its_time_and_sends_one_message(store_location, webhook):
    h = Harness(store_location, [dest(webhook, mode="digest", digest_at="18:00")], AlertSettings())
    h.poll("one", (entry("one", "1", "China drones one"), match()),
           (entry("one", "2", "China drones two, another story entirely"), match()))
    assert h.dispatch().sent == 0
    h.clock.now = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # 18:00 Kyiv
    assert h.dispatch().sent == 2
    assert len(webhook.posts) == 1
    assert webhook.posts[0]["title"].startswith("[monitor] 2 stories")


def test_critical_breaks_through_a_digest(store_location, webhook):
    h = Harness(store_location, [dest(webhook, mode="digest", digest_every=6 * 3600)], AlertSettings())
    h.poll("one", (entry("one", "1", "China drones"), match(severity="critical")))
    assert h.dispatch().sent == 1
    assert webhook.posts[0]["title"].startswith("[china_drones]")


def test_quiet_hours_hold_alerts_then_send_one_digest(store_location, webhook):
    h = Harness(store_location, [dest(webhook, quiet_hours=("22:00", "07:00"))], AlertSettings())
    h.clock.now = datetime(2026, 11, 29, 21, 0, tzinfo=UTC)  # 23:00 Kyiv
    h.poll("one", (entry("one", "1", "China drones at night"), match()),
           (entry("one", "2", "Beijing drone parts shipped overnight to Russia"), match()))
    assert h.dispatch().sent == 0
    h.clock.now = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # 07:00 Kyiv
    assert h.dispatch().sent == 2
    assert len(webhook.posts) == 1 and "2 stories" in webhook.posts[0]["title"]


def test_rate_limit_folds_the_burst_into_a_digest_instead_of_dropping(store_location, webhook):
    h = Harness(store_location, [dest(webhook, rate_limit=2)], AlertSettings())
    burst = [(entry("one", str(i), f"China drones story number {i} with its own words {i * 7}"), match())
             for i in range(5)]
    h.poll("one", *burst)
    assert h.dispatch().sent == 2
    assert [s for _, s, _ in h.statuses()] == ["sent", "sent", "pending", "pending", "pending"]
    h.clock.now += timedelta(hours=1)
    assert h.dispatch().sent == 3
    assert len(webhook.posts) == 3  # two alone, then one digest of three


def test_a_story_from_a_second_outlet_is_recorded_not_sent_again(store_location, webhook):
    h = Harness(store_location, [dest(webhook)], AlertSettings())
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


def test_status_shows_todays_stories_also_reported_by_other_outlets(store_location, webhook):
    from monitor.cli.status import summary_lines
    from monitor.read.status import gather_status

    two_destinations = [dest(webhook), dest(webhook, "second")]
    h = Harness(store_location, two_destinations, AlertSettings(), feeds=("one", "two", "three"))
    h.poll("one", (entry("one", "a", "Russian edition", "https://112.ua/politika/china-drones-123.html"), match()))
    h.dispatch()
    h.poll("two", (entry("two", "b", "Ukrainian edition", "https://ua.112.ua/politika/china-drones-123.html"), match()))
    h.poll("three", (entry("three", "c", "A story of its own about China's drones"), match()))
    status = gather_status(h.db, None, T0)
    assert status["also_reported_today"] == [
        {"title": "Russian edition", "feed": "one", "also_reported_by": ["two"]}]  # once, not per destination
    assert "copies:  Russian edition (one), also reported by two" in summary_lines(status)
    assert gather_status(h.db, None, T0 + timedelta(days=1))["also_reported_today"] == []  # today only


def test_grouping_delay_merges_copies_arriving_together(store_location, webhook):
    h = Harness(store_location, [dest(webhook)], AlertSettings(grouping_delay=60))
    h.poll("one", (entry("one", "a", "China sends drone parts to Russia, customs data show"), match()))
    h.poll("two", (entry("two", "b", "China sends drone parts to Russia, customs data show"), match()))
    assert h.dispatch().sent == 0
    h.clock.now += timedelta(seconds=61)
    assert h.dispatch().sent == 1
    assert "two" in webhook.posts[0]["message"]  # also reported by


def test_failures_retry_with_backoff_then_die_and_retry_revives(store_location, webhook):
    webhook.status = 500
    h = Harness(store_location, [dest(webhook)], AlertSettings(retry_base=60, max_age=3600))
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


def test_one_failing_destination_does_not_delay_the_other(store_location, webhook):
    dead = Destination(name="dead", url="mailto://127.0.0.1:9?from=a@example.org&to=b@example.org",
                       safe_url="mailto://127.0.0.1:9")
    h = Harness(store_location, [dead, dest(webhook)], AlertSettings())
    h.poll("one", (entry("one", "1", "China drones"), match()))
    report = h.dispatch()
    assert (report.sent, report.failed) == (1, 1)
    assert dict((d, s) for d, s, _ in h.statuses()) == {"dead": "failed", "chat": "sent"}


def test_a_burst_after_downtime_becomes_a_digest_by_default(store_location, webhook):
    h = Harness(store_location, [dest(webhook)], AlertSettings())  # default flood guard: 10 stories/hour
    burst = [(entry("one", str(i), f"China drones story {i} from the gap, {i * 31} words on"), match())
             for i in range(14)]
    h.poll("one", *burst)
    assert h.dispatch().sent == 10
    h.clock.now += timedelta(hours=1)
    assert h.dispatch().sent == 4
    assert len(webhook.posts) == 11 and "4 stories" in webhook.posts[-1]["title"]


# --------------------------------------------------------------------------
# one alert per story and destination
# --------------------------------------------------------------------------


def rule(name: str, severity: str = "warning", tags=("drones",), term: str = "China") -> Match:
    return Match(name, 4.5, severity, tags, (Hit("title", 0, 5, term),), f"[[{term}]] drones")


def story_alerts(db: Path) -> list[dict]:
    store = Store.open(db, readonly=True)
    try:
        return list_alerts(store)
    finally:
        store.close()


def test_a_story_of_three_rules_is_one_message_per_destination_naming_the_routed_rules(store_location, webhook):
    h = Harness(store_location, [dest(webhook, "everything"),
                                    dest(webhook, "sanctions-desk", tags=("sanctions",))], AlertSettings())
    h.poll_story("one", entry("one", "1", "China drones and sanctions"),
                 [rule("drones_a", "warning"), rule("supplies", "critical", term="Chinese"),
                  rule("sanctions", "info", tags=("sanctions",))])
    assert h.dispatch().sent == 2
    assert len(webhook.posts) == 2
    by_title = {post["title"]: post["message"] for post in webhook.posts}
    everything = by_title["[supplies +2] China drones and sanctions — one"]  # the most severe rule first
    assert everything.index("- supplies (critical") < everything.index("- drones_a (warning") \
        < everything.index("- sanctions (info")
    assert by_title["[sanctions] China drones and sanctions — one"].count("\n- ") == 1
    listed = {a["destination"]: a["rules"] for a in story_alerts(h.db)}
    assert listed == {"everything": ["supplies", "drones_a", "sanctions"], "sanctions-desk": ["sanctions"]}


def test_an_update_alerts_again_only_for_a_rule_not_alerted_there_before(store_location, webhook):
    h = Harness(store_location, [dest(webhook)], AlertSettings())
    story = entry("one", "1", "China drones and sanctions")
    h.poll_story("one", story, [rule("drones_a"), rule("sanctions", "info")])
    assert h.dispatch().sent == 1
    changed = Entry(**{**story.__dict__, "content_hash": "v2"})
    h.poll_story("one", changed, [rule("drones_a"), rule("sanctions", "info")], kind="updated")
    assert h.dispatch().sent == 0, "an update matching no new rule sends nothing"
    newer = Entry(**{**story.__dict__, "content_hash": "v3"})
    h.poll_story("one", newer, [rule("drones_a"), rule("sanctions", "info"), rule("peace", "warning")],
                 kind="updated")
    assert h.dispatch().sent == 1
    assert len(webhook.posts) == 2
    update = webhook.posts[1]
    assert update["title"].startswith("Update: [drones_a +2] China drones and sanctions")
    assert "- peace (warning, score 4.5, new)" in update["message"]
    assert "New in this update: peace" in update["message"]
    assert [(a["kind"], a["rules"], a["new_rules"]) for a in story_alerts(h.db)] == [
        ("update", ["drones_a", "peace", "sanctions"], ["peace"]),
        ("match", ["drones_a", "sanctions"], [])]


def test_rate_limit_counts_stories_not_the_rules_they_match(store_location, webhook):
    h = Harness(store_location, [dest(webhook, rate_limit=2)], AlertSettings())
    for i in range(3):
        h.poll_story("one", entry("one", str(i), f"China drones story number {i}, words {i * 7}"),
                     [rule("a"), rule("b"), rule("c")])
    assert [s for _, s, _ in h.statuses()] == ["pending"] * 3
    assert [d for _, _, d in h.statuses()] == ["immediate", "immediate", "digest"]
    assert h.dispatch().sent == 2


def test_critical_breaks_through_when_any_rule_of_the_story_is_critical(store_location, webhook):
    h = Harness(store_location, [dest(webhook, mode="digest", digest_every=6 * 3600)], AlertSettings())
    h.poll_story("one", entry("one", "1", "China drones"), [rule("minor", "info"), rule("grave", "critical")])
    assert h.dispatch().sent == 1
    assert webhook.posts[0]["title"].startswith("[grave +1]")


def test_alerts_of_a_removed_destination_are_cancelled_not_retried(store_location, webhook):
    kept, removed = dest(webhook, "chat"), dest(webhook, "old-desk")
    h = Harness(store_location, [kept, removed], AlertSettings())
    h.poll_story("one", entry("one", "1", "China drones"), [rule("a")])
    report = h.dispatch([kept])
    assert (report.sent, report.failed, report.cancelled) == (1, 0, 1)
    assert dict((d, s) for d, s, _ in h.statuses()) == {"chat": "sent", "old-desk": "cancelled"}
    cancelled = [a for a in story_alerts(h.db) if a["status"] == "cancelled"][0]
    assert "'old-desk' was removed from alerts.toml" in cancelled["last_error"]
    h.clock.now += timedelta(days=2)
    store = Store.open(h.db)
    assert retry(store, None, h.clock()) == 0, "a cancelled alert is not retried"
    store.close()
    assert h.dispatch([kept]).cancelled == 0


def test_a_failed_send_says_the_cause_apprise_logged_without_the_password(store_location, smtp):
    # The sink offers no AUTH; a URL with credentials makes apprise try to log in.
    url = f"mailto://desk:Pa55w0rdSecret@127.0.0.1:{smtp.port}?from=m@example.org&to=d@example.org"
    mail = Destination(name="mail", url=url, safe_url=f"mailto://desk:****@127.0.0.1:{smtp.port}")
    h = Harness(store_location, [mail], AlertSettings())
    h.poll_story("one", entry("one", "1", "China drones"), [rule("a")])
    report = h.dispatch()
    assert report.failed == 1
    error = story_alerts(h.db)[0]["last_error"]
    assert "SMTP AUTH extension not supported by server" in error, error
    assert error == report.errors["mail"]
    assert "Pa55w0rdSecret" not in error


def test_muting_one_rule_of_a_story_keeps_its_alert_for_the_others(store_location, webhook):
    from monitor.read.search import mute

    h = Harness(store_location, [dest(webhook)], AlertSettings(grouping_delay=600))
    h.poll_story("one", entry("one", "1", "China drones"), [rule("a", "critical"), rule("b")])
    story = story_alerts(h.db)[0]["entry_id"]
    store = Store.open(h.db)
    assert mute(store, story, rule="a", reason="wrong", now=h.clock())["alerts_muted"] == 0
    store.close()
    assert story_alerts(h.db)[0]["rules"] == ["b"]
    h.clock.now += timedelta(minutes=11)
    assert h.dispatch().sent == 1
    assert webhook.posts[0]["title"].startswith("[b] ")


def test_a_rule_new_before_the_alert_went_out_joins_it_and_a_critical_one_breaks_through(store_location, webhook):
    h = Harness(store_location, [dest(webhook, mode="digest", digest_at="18:00")], AlertSettings())
    story = entry("one", "1", "China drones and sanctions")
    h.poll_story("one", story, [rule("minor", "info")])
    h.poll_story("one", Entry(**{**story.__dict__, "content_hash": "v2"}),
                 [rule("minor", "info"), rule("other", "warning")], kind="updated")
    assert [(a["status"], a["delivery"], a["rules"]) for a in story_alerts(h.db)] == [
        ("pending", "digest", ["other", "minor"])], "still one alert for the story"
    assert h.dispatch().sent == 0
    h.poll_story("one", Entry(**{**story.__dict__, "content_hash": "v3"}),
                 [rule("minor", "info"), rule("other", "warning"), rule("grave", "critical")],
                 kind="updated")
    assert h.dispatch().sent == 1, "a critical rule brings the waiting alert forward"
    (post,) = webhook.posts
    assert post["title"].startswith("[grave +2] China drones and sanctions")
    h.clock.now = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # 18:00 Kyiv: the digest time
    assert h.dispatch().sent == 0 and len(webhook.posts) == 1
