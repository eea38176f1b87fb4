"""The web interface against what the other branches added beside it: the hardening's
masking and per-feed fields, and the outbox's one alert per story and destination."""

from __future__ import annotations

import asyncio
from pathlib import Path

from monitor.ingest.storing import store_poll
from monitor.store.database import Store
from monitor.store.lock import DaemonLock
from web_support import NOW, Site, client_for, make_context

FEEDS_TOML = """[[feed]]
name = "kyiv-news"
url = "http://127.0.0.1:9/k.xml?apikey=FEEDKEY123&lang=en"

[[feed]]
name = "other-news"
url = "http://u:secretpw@127.0.0.1:9/o.xml?token=TOKEN456"
"""


def run(test, tmp_path: Path) -> None:
    context = make_context(tmp_path)

    async def main() -> None:
        async with client_for(context) as client:
            await test(Site(context, client))

    try:
        asyncio.run(main())
    finally:
        context.store.close()


def _feeds_site(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir(exist_ok=True)
    (tmp_path / "cfg" / "feeds.toml").write_text(FEEDS_TOML)


# --------------------------------------------------------------------------
# Feeds: secrets masked, the hardening's per-feed fields shown
# --------------------------------------------------------------------------


def test_feeds_page_masks_query_secrets_in_urls_and_errors(tmp_path) -> None:
    _feeds_site(tmp_path)
    with (tmp_path / "cfg" / "feeds.toml").open("a") as feeds:  # not polled yet: its URL as configured
        feeds.write('\n[[feed]]\nname = "new-news"\nurl = "http://127.0.0.1:9/n.xml?api_key=NEWKEY789&x=1"\n')
    make_context(tmp_path).store.close()  # the database with its stories
    store = Store.open(tmp_path / "monitor.db")
    try:
        store.save_poll("other-news", [], NOW, {
            "status": "error", "consecutive_errors": 2,
            "last_error": "HTTP 500 from http://127.0.0.1:9/o.xml?token=TOKEN456"}, {"outcome": "error"}, keep=10)
    finally:
        store.close()

    async def test(site: Site) -> None:
        page = (await site.client.get("/feeds")).text
        for secret in ("FEEDKEY123", "TOKEN456", "secretpw", "NEWKEY789"):
            assert secret not in page
        assert "n.xml?api_key=***&amp;x=1" in page  # the URL
        assert "o.xml?token=***" in page  # the last error

    run(test, tmp_path)


def test_feeds_page_shows_a_held_move_unmatched_stories_and_a_storage_failure(tmp_path) -> None:
    _feeds_site(tmp_path)
    make_context(tmp_path).store.close()
    store = Store.open(tmp_path / "monitor.db")
    try:
        store.save_poll("kyiv-news", [], NOW, {
            "status": "ok", "moved_to": "http://127.0.0.1:9/new.xml?apikey=***",
            "match_warning": "3 stories stored without matching (over the matching budget)"},
            {"outcome": "ok"}, keep=10)
    finally:
        store.close()
    daemon = DaemonLock(tmp_path / "monitor.db")  # as the running daemon holds it
    daemon.acquire()
    daemon.note_problem(None, {"other-news": "database or disk is full"})

    async def test(site: Site) -> None:
        page = (await site.client.get("/feeds")).text
        kyiv = page[page.index('id="feed-kyiv-news"'):page.index('id="feed-other-news"')]
        assert "Moved permanently to" in kyiv and "new.xml?apikey=***" in kyiv
        assert "3 stories stored without matching" in kyiv
        other = page[page.index('id="feed-other-news"'):]
        assert "Polls not stored: database or disk is full" in other[:other.index("</tr>")]

    try:
        run(test, tmp_path)
    finally:
        daemon.release()


def test_opml_export_masks_secrets_unless_asked_to_keep_them(tmp_path) -> None:
    _feeds_site(tmp_path)

    async def test(site: Site) -> None:
        masked = (await site.client.get("/feeds.opml")).content
        assert b"apikey=***&amp;lang=en" in masked and b"token=***" in masked
        for secret in (b"FEEDKEY123", b"TOKEN456", b"secretpw"):
            assert secret not in masked
        kept = (await site.client.get("/feeds.opml?with_secrets=1")).content
        assert b"apikey=FEEDKEY123" in kept and b"u:secretpw@" in kept and b"TOKEN456" in kept
        page = (await site.client.get("/feeds")).text
        assert 'href="/feeds.opml?with_secrets=1"' in page

    run(test, tmp_path)


# --------------------------------------------------------------------------
# Alerts: one alert per story and destination, every state
# --------------------------------------------------------------------------


def _story_alerts(db: Path) -> dict[str, int]:
    """A story matching two rules, alerted to 'chat' (sent) and 'gone' (cancelled: its
    destination was removed); an update adds a third rule, a new alert to 'chat'.
    Returns the alert ids by name."""
    from datetime import timedelta

    from monitor.alert.outbox import Planner, list_alerts
    from monitor.models import AlertSettings, Destination, Entry, FeedConfig, Hit, Match
    from monitor.store.outbox import cancel, mark_sent

    def rule(name: str, severity: str) -> Match:
        return Match(name, 4.0, severity, (), (Hit("title", 0, 5, "drone"),), "[[Drone]] factory")

    destinations = [Destination(name=name, url="json://127.0.0.1:9/", safe_url="json://127.0.0.1:9/")
                    for name in ("chat", "gone")]
    planner = Planner(destinations, AlertSettings(), "UTC", {})
    story = Entry(feed="alerts-news", guid="s1", url="https://news.example/s1", published=NOW,
                  title="Drone factory found", content_hash="v1")
    store = Store.open(db)
    try:
        store.sync_feeds([FeedConfig("alerts-news", "http://127.0.0.1/a.xml", 600.0)], NOW)
        store_poll(store, "alerts-news", [(story, "new", True, [rule("supplies", "critical"),
                                                           rule("statements", "warning")])],
                   NOW, {"status": "ok"}, {"outcome": "ok"}, keep=10, planner=planner)
        first = {row["destination"]: row["id"] for row in list_alerts(store)}
        mark_sent(store, [first["chat"]], NOW)
        cancel(store, [first["gone"]], "cancelled: destination 'gone' was removed from alerts.toml", NOW)
        later = NOW + timedelta(minutes=5)
        changed = Entry(**{**story.__dict__, "content_hash": "v2"})
        store_poll(store, "alerts-news", [(changed, "updated", True, [
            rule("supplies", "critical"), rule("statements", "warning"), rule("peace", "info")])],
            later, {"status": "ok"}, {"outcome": "ok"}, keep=10, planner=planner)
        update = next(row["id"] for row in list_alerts(store) if row["kind"] == "update")
        return {"sent": first["chat"], "cancelled": first["gone"], "update": update}
    finally:
        store.close()


def _row(page: str, alert_id: int) -> str:
    row = page[page.index(f'id="alert-{alert_id}"'):]
    return row[:row.index("</tr>")]


def test_alerts_page_lists_every_rule_of_a_story_s_alert_and_the_cancelled_state(tmp_path) -> None:
    make_context(tmp_path).store.close()
    ids = _story_alerts(tmp_path / "monitor.db")

    async def test(site: Site) -> None:
        page = (await site.client.get("/alerts?state=all")).text
        sent = _row(page, ids["sent"])
        assert "supplies" in sent and "statements" in sent, "every rule the alert names"
        update = _row(page, ids["update"])
        assert "peace" in update and 'class="badge">new</span>' in update
        assert "cancelled (1)" in page and 'href="/alerts?state=cancelled"' in page
        cancelled = (await site.client.get("/alerts?state=cancelled")).text
        row = _row(cancelled, ids["cancelled"])
        assert "not sent" in row and "due" not in row, "a cancelled alert is never due"
        assert "was removed from alerts.toml" in row
        assert f'id="alert-{ids["sent"]}"' not in cancelled

    run(test, tmp_path)


def test_story_page_alerts_name_their_rules_and_never_a_cancelled_one_due(tmp_path) -> None:
    make_context(tmp_path).store.close()
    ids = _story_alerts(tmp_path / "monitor.db")

    async def test(site: Site) -> None:
        page = (await site.client.get("/alerts?state=all")).text
        story_id = page[page.index('href="/story/', page.index(f'id="alert-{ids["sent"]}"')):].split('"')[1]
        story = (await site.client.get(story_id)).text
        alerts = story[story.index("<h2>Alerts</h2>"):]
        assert "statements, supplies" in alerts or "supplies, statements" in alerts
        cancelled = alerts[alerts.index(f"<tr><td>{ids['cancelled']}</td>"):]
        cancelled = cancelled[:cancelled.index("</tr>")]
        assert "cancelled" in cancelled and "not sent" in cancelled and "due" not in cancelled

    run(test, tmp_path)


def test_a_sent_alert_s_routing_reason_is_not_shown_as_its_error(tmp_path) -> None:
    make_context(tmp_path).store.close()
    ids = _story_alerts(tmp_path / "monitor.db")

    async def test(site: Site) -> None:
        page = (await site.client.get("/alerts?state=sent")).text
        cells = _row(page, ids["sent"]).split("<td")
        assert cells[-1].strip() == 'class="hide-narrow"></td>', cells[-1]

    run(test, tmp_path)


# --------------------------------------------------------------------------
# the Atom feed after triage
# --------------------------------------------------------------------------


def test_a_story_marked_a_false_positive_leaves_the_atom_feed(tmp_path) -> None:
    import xml.etree.ElementTree as ET

    atom = "{http://www.w3.org/2005/Atom}"

    async def test(site: Site) -> None:
        before = ET.fromstring((await site.client.get("/matches.atom")).content)
        assert len(before.findall(f"{atom}entry")) == 3
        token = await site.csrf("/today?period=all")
        await site.client.post("/story/2/false-positive", data={"csrf": token, "next": "/today"})
        after = ET.fromstring((await site.client.get("/matches.atom")).content)
        titles = [entry.find(f"{atom}title").text for entry in after.findall(f"{atom}entry")]
        assert len(titles) == 2 and not any("Energy grid" in title for title in titles)

    run(test, tmp_path)


# --------------------------------------------------------------------------
# Alerts: a broken alerts.toml says what is wrong, never a secret
# --------------------------------------------------------------------------


def test_a_broken_alerts_config_shows_each_problem_and_no_secret(tmp_path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "alerts.toml").write_text(
        '[[destination]]\nname = "mail"\nurl = "mailto://user:PASSWORD9@127.0.0.1:9?to=a@b.example"\n\n'
        '[[destination]]\nname = "odd"\nurl = "nosuchscheme://tok:SECRET8@127.0.0.1/p?token=SECRET7"\n')

    async def test(site: Site) -> None:
        page = (await site.client.get("/alerts")).text
        for secret in ("PASSWORD9", "SECRET8", "SECRET7"):
            assert secret not in page
        problem = page[page.index('class="flash bad"'):]
        problem = problem[:problem.index("</p>")]
        assert "2 problems in the configuration" in problem
        assert "alerts.toml:3:7" in problem and "alerts.toml:7:7" in problem
        assert "nosuchscheme" in problem

    run(test, tmp_path)


def test_a_cross_outlet_copy_s_alert_is_a_duplicate_never_due(tmp_path) -> None:
    from monitor.alert.outbox import Planner, list_alerts
    from monitor.models import AlertSettings, Destination, Entry, FeedConfig, Hit, Match

    make_context(tmp_path).store.close()
    planner = Planner([Destination(name="chat", url="json://127.0.0.1:9/", safe_url="json://127.0.0.1:9/")],
                      AlertSettings(), "UTC", {})
    found = Match("supplies", 4.0, "critical", (), (Hit("title", 0, 5, "drone"),), "[[Drone]] factory")
    store = Store.open(tmp_path / "monitor.db")
    try:
        store.sync_feeds([FeedConfig(name, f"http://127.0.0.1/{name}.xml", 600.0) for name in ("one", "two")], NOW)
        for feed in ("one", "two"):
            story = Entry(feed=feed, guid=f"{feed}-1", url="https://news.example/same", published=NOW,
                          title="Drone factory found", content_hash=feed)
            store_poll(store, feed, [(story, "new", True, [found])], NOW, {"status": "ok"},
                       {"outcome": "ok"}, keep=10, planner=planner)
        first, copy = sorted(list_alerts(store), key=lambda row: row["id"])
    finally:
        store.close()
    assert copy["status"] == "duplicate"

    async def test(site: Site) -> None:
        page = (await site.client.get("/alerts?state=duplicate")).text
        assert "duplicate (1)" in page
        row = _row(page, copy["id"])
        assert "not sent: a copy of" in row and f"#{first['id']}" in row and "due" not in row

    run(test, tmp_path)


# --------------------------------------------------------------------------
# Today: its count agrees with `monitor status` (which counts stored items)
# --------------------------------------------------------------------------


def test_today_says_how_many_copies_it_folded_so_its_count_adds_up_with_status(tmp_path) -> None:
    import sqlite3

    async def test(site: Site) -> None:
        page = (await site.client.get("/today?period=all")).text
        heading = page[page.index("<h1>"):page.index("</h1>")]
        assert "2 stories to triage" in heading
        assert "and 1 copy from other outlets, shown with its story" in heading

    run(test, tmp_path)
    with sqlite3.connect(tmp_path / "monitor.db") as conn:  # what status counts as matched
        assert conn.execute("SELECT COUNT(DISTINCT entry_id) FROM matches").fetchone()[0] == 2 + 1


def test_adding_a_feed_that_fails_never_puts_its_secret_in_the_message(tmp_path, feed_server) -> None:
    """The message travels in the redirect's link (browser history): the URL is masked."""
    from support.feedserver import static

    _feeds_site(tmp_path)
    feed_server.routes["/page"] = static(b"<html><head></head><body>no feeds</body></html>",
                                         "text/html; charset=utf-8")

    async def test(site: Site) -> None:
        token = await site.csrf("/feeds")
        for url in ("http://127.0.0.1:9/f.xml?apikey=SEKRET123", feed_server.url("/page?apikey=SEKRET123")):
            answer = await site.client.post("/feeds/add", data={"csrf": token, "url": url})
            location = answer.headers["location"]
            assert "problem=" in location and "SEKRET123" not in location, location
            assert "apikey%3D%2A%2A%2A" in location, location

    run(test, tmp_path)


# --------------------------------------------------------------------------
# `monitor status` counts stories as the Today page does
# --------------------------------------------------------------------------


def test_status_counts_a_copy_sent_to_another_destination_as_the_same_story(tmp_path) -> None:
    """A destination added after the first outlet's item was alerted is sent the second
    outlet's copy: two alerts sent, one story (as Today shows it)."""
    from monitor.alert.outbox import Planner, list_alerts
    from monitor.models import AlertSettings, Destination, Entry, FeedConfig, Hit, Match
    from monitor.read.status import gather_status
    from monitor.store.outbox import mark_sent

    db = tmp_path / "monitor.db"
    found = Match("supplies", 4.0, "critical", (), (Hit("title", 0, 5, "drone"),), "[[Drone]] factory")

    def planner(*names: str) -> Planner:
        return Planner([Destination(name=n, url="json://127.0.0.1:9/", safe_url="json://127.0.0.1:9/")
                        for n in names], AlertSettings(), "UTC", {})

    store = Store.open(db)
    try:
        store.sync_feeds([FeedConfig(name, f"http://127.0.0.1/{name}.xml", 600.0) for name in ("one", "two")], NOW)
        for feed, destinations in (("one", ("chat",)), ("two", ("chat", "desk"))):
            story = Entry(feed=feed, guid=f"{feed}-1", url="https://news.example/same", published=NOW,
                          title="Drone factory found", content_hash=feed)
            store_poll(store, feed, [(story, "new", True, [found])], NOW, {"status": "ok"},
                       {"outcome": "ok"}, keep=10, planner=planner(*destinations))
        to_send = [row["id"] for row in list_alerts(store) if row["status"] == "pending"]
        mark_sent(store, to_send, NOW)
    finally:
        store.close()
    assert len(to_send) == 2  # chat: the first outlet's item; desk: the copy (chat's copy is a duplicate)
    status = gather_status(db, None, NOW)
    assert status["alerts"]["sent_today"] == 2 and status["alerts"]["stories_sent_today"] == 1
