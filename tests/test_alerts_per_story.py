"""One message per story and destination, end to end with the shipped watch: a story
that matches three shipped rules reaches a real SMTP server (aiosmtpd) as one email and
a real webhook receiver as one post, each naming the three rules; an update that adds a
fourth rule sends exactly one more to each."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.match import Matcher, load_watch
from support.feeds import Item, rss
from support.feedserver import static
from test_alerts_e2e import write_alerts
from test_cli import monitor

NOW = datetime.now(UTC)
TITLE = "China sanctions: firms sent drone engines to Russia"
SUMMARY = "Chinese companies shipped drone engines to Russia, the Treasury said."
PEACE = " Beijing called for peace talks."


def shipped_rules(watch: Path, summary: str) -> list[str]:
    """The shipped watch's rules for the story, most severe first (as the message lists them)."""
    found = Matcher.compile(load_watch(watch)).match(title=TITLE, summary=summary, language="en")
    order = {"critical": 0, "warning": 1, "info": 2}
    return [m.rule for m in sorted(found, key=lambda m: (order[m.severity], -m.score, m.rule))]


def serve(feed_server, summary: str) -> None:
    feed_server.routes["/feed"] = static(rss([
        Item("a", TITLE, summary=summary, published=NOW - timedelta(hours=1),
             link="https://news.example.org/china-sanctions"),
    ], title="Example Outlet"))


def text_part(message) -> str:
    return next(part.get_content() for part in message.walk() if part.get_content_type() == "text/plain")


def rules_listed(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if line.lstrip().startswith(("- ", "• "))]


def test_three_shipped_rules_make_one_email_and_one_post_and_a_fourth_one_more(env, feed_server, smtp,
                                                                               webhook):
    cfg = Path(env["MONITOR_CONFIG"])
    monitor("init", str(cfg), "--no-feeds", env=env, check=True)  # the shipped watch
    three = shipped_rules(cfg / "watch.toml", SUMMARY)
    four = shipped_rules(cfg / "watch.toml", SUMMARY + PEACE)
    assert len(three) == 3, f"the test story must match three shipped rules, not {three}"
    assert len(four) == 4 and set(three) < set(four), f"the update must add one rule: {four}"
    (fourth,) = set(four) - set(three)
    serve(feed_server, SUMMARY)
    monitor("feeds", "add", feed_server.url("/feed"), "--name", "Example Outlet", env=env, check=True)
    write_alerts(cfg, {"name": "desk", "url": smtp.url()}, {"name": "chat", "url": webhook.url()})

    first = monitor("run", "--once", env=env, check=True)
    assert "alerts_sent=2 alerts_failed=0" in first.stdout, first.stdout + first.stderr
    assert smtp.wait_for(1) and webhook.wait_for(1)
    assert len(smtp.messages) == 1 and len(webhook.posts) == 1
    email, post = smtp.messages[0], webhook.posts[0]
    assert email["subject"] == post["title"] == f"[{three[0]} +2] {TITLE} — Example Outlet"
    assert rules_listed(text_part(email)) == three
    assert rules_listed(post["message"]) == three
    for rule in three:
        assert rule in next(p.get_content() for p in email.walk() if p.get_content_type() == "text/html")

    serve(feed_server, SUMMARY + PEACE)
    second = monitor("run", "--once", env=env, check=True)
    assert "updated=1" in second.stdout and "alerts_sent=2" in second.stdout, second.stdout
    assert smtp.wait_for(2) and webhook.wait_for(2)
    assert len(smtp.messages) == 2 and len(webhook.posts) == 2
    email, post = smtp.messages[1], webhook.posts[1]
    assert email["subject"] == post["title"] == f"Update: [{four[0]} +3] {TITLE} — Example Outlet"
    listed = rules_listed(post["message"])
    assert rules_listed(text_part(email)) == listed
    # The rules matched before keep their first scores, so only the set and the top are fixed.
    assert sorted(listed) == sorted(four) and listed[0] == four[0]
    assert f"New in this update: {fourth}" in post["message"]
    assert f"New in this update: {fourth}" in text_part(email)

    third = monitor("run", "--once", env=env, check=True)
    assert "alerts_sent=0" in third.stdout
    assert len(smtp.messages) == 2 and len(webhook.posts) == 2

    listed = [json.loads(line) for line in
              monitor("alerts", "list", "--json", env=env, check=True).stdout.splitlines()]
    assert sorted((a["destination"], a["kind"], len(a["rules"]), a["new_rules"]) for a in listed) == [
        ("chat", "match", 3, []), ("chat", "update", 4, [fourth]),
        ("desk", "match", 3, []), ("desk", "update", 4, [fourth])]
    table = monitor("alerts", "list", env=env, check=True).stdout
    assert f"{fourth} (new)" in table
    with sqlite3.connect(env["MONITOR_DB"]) as conn:
        assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 4
        (story_id,) = conn.execute("SELECT id FROM entries WHERE guid = 'a'").fetchone()
    shown = monitor("show", str(story_id), env=env, check=True).stdout
    assert shown.count(", ".join(sorted(three))) == 2, "each destination's first alert brought three rules"
    assert shown.count(f"  {fourth}  (") == 2, "and each update one, the new rule"
    status = json.loads(monitor("status", "--json", env=env).stdout)
    assert status["alerts"]["stories_sent_today"] == 1 and status["alerts"]["sent_today"] == 4
    assert status["matched_stories_today"] == 1 and status["matches_today"] == 4


def test_the_atom_feed_has_one_entry_per_story_with_every_rule(tmp_path):
    import xml.etree.ElementTree as ET

    from monitor.models import Entry, FeedConfig, Hit, Match
    from monitor.store.database import Store
    from monitor.store.matches import latest_matches
    from monitor.web.atom import build_atom

    atom = "{http://www.w3.org/2005/Atom}"
    store = Store.open(tmp_path / "m.db")
    try:
        store.sync_feeds([FeedConfig("outlet", "http://127.0.0.1/feed", 600.0)], NOW)
        story = Entry(feed="outlet", guid="a", url="https://news.example.org/a", title=TITLE,
                      summary=SUMMARY, published=NOW, content_hash="a")
        matches = [Match(rule, 4.5, severity, (), (Hit("title", 0, 5, "China"),), "[[China]] sanctions")
                   for rule, severity in (("sanctions", "warning"), ("supplies", "critical"))]
        store.save_poll("outlet", [(story, "new", True, matches)], NOW, {"status": "ok"},
                        {"outcome": "ok"}, keep=10)
        feed = ET.fromstring(build_atom(latest_matches(store, 10), title="Matches", now=NOW))
    finally:
        store.close()
    (entry,) = feed.findall(f"{atom}entry")
    assert entry.findtext(f"{atom}title") == f"[supplies +1] {TITLE}"
    assert [c.get("term") for c in entry.findall(f"{atom}category")] == ["supplies", "sanctions"]
    content = entry.findtext(f"{atom}content")
    assert content.index("supplies (critical") < content.index("sanctions (warning")
