"""`monitor demo`: the real command, its sample feeds and its local feed server, all offline."""

from __future__ import annotations

import queue
import re
import signal
import socketserver
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import httpx
import pytest

from monitor.config.paths import shipped_defaults_dir
from monitor.demo.samples import SampleFeed, SampleStory, load_samples
from monitor.demo.server import DemoFeedServer
from monitor.ingest.parse import parse_feed
from monitor.match import Matcher, load_watch, match_entry
from monitor.models import Entry
from test_cli import monitor

SAMPLES = load_samples()
BACKLOG_WINDOW = timedelta(days=1)  # the shipped default the demo runs with
ALERT_SUBJECT = re.compile(r"^\[(?P<rule>\w+)(?: \+\d+)?\] (?P<title>.+) — (?P<feed>.+)$")


def stories(*, on_topic: bool | None = None, midway: bool | None = None,
            recent: bool | None = None) -> list[tuple[SampleFeed, SampleStory]]:
    """Sample stories by kind; `recent` = published within the backlog window."""
    found = []
    for feed in SAMPLES:
        for story in feed.stories:
            is_recent = story.age is not None and story.age < BACKLOG_WINDOW.total_seconds()
            if ((on_topic is None or story.on_topic == on_topic)
                    and (midway is None or story.midway == midway)
                    and (recent is None or is_recent == recent)):
                found.append((feed, story))
    return found


class ConnectionTrap:
    """A TCP listener used as every proxy: a connection here means the demo left loopback."""

    def __init__(self) -> None:
        self.connections = 0
        trap = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                trap.connections += 1

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ConnectionTrap:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --------------------------------------------------------------------------
# the sample feeds
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped_matcher() -> Matcher:
    return Matcher.compile(load_watch(shipped_defaults_dir() / "watch.toml"))


@pytest.mark.parametrize("feed,story", stories(), ids=lambda item: getattr(item, "id", None))
def test_each_sample_story_is_flagged_by_the_shipped_watch_exactly_when_on_topic(
        shipped_matcher, feed, story):
    entry = Entry(feed=feed.title, guid=story.id, url=None, title=story.title,
                  summary=story.summary, language=feed.language)
    rules = [match.rule for match in match_entry(shipped_matcher, entry, ())]
    if story.on_topic:
        assert rules, f"on-topic sample story not flagged: {story.title}"
    else:
        assert not rules, f"off-topic sample story flagged by {rules}: {story.title}"


def test_the_samples_show_every_case_the_demo_narrates_and_stay_small():
    assert [feed.title for feed in SAMPLES] == ["Kyiv Demo Independent", "Демо Правда", "Демо Новости"]
    assert [feed.language for feed in SAMPLES] == ["en", "uk", "ru"]
    for feed in SAMPLES:
        assert 6 <= len(feed.backlog) <= 10, feed.title
        kinds = {(story.on_topic, story.age < BACKLOG_WINDOW.total_seconds()) for story in feed.backlog}
        assert {(True, True), (True, False), (False, True)} <= kinds, feed.title
    assert [story.on_topic for _, story in stories(midway=True)] == [True]
    assert stories(midway=True)[0][1].title.startswith("Breaking: ")
    files = [item for item in (resources.files("monitor.demo") / "feeds").iterdir()
             if item.name.endswith(".toml")]
    assert len(files) == 3 and sum(len(item.read_bytes()) for item in files) < 30_000


def test_the_feed_server_dates_the_backlog_from_now_and_publishes_the_added_story():
    now = datetime.now(UTC).replace(microsecond=0)
    feed = SAMPLES[0]
    added = feed.held_back[0]
    with DemoFeedServer(SAMPLES, now) as server, httpx.Client(trust_env=False) as client:
        url = server.feed_url(feed)
        assert url.startswith("http://127.0.0.1:")
        first = client.get(url)
        parsed = parse_feed(first.content, dict(first.headers), feed=feed.title, url=url,
                            language=feed.language)
        published = {entry.title: entry.published for entry in parsed.entries}
        assert published == {story.title: now - timedelta(seconds=story.age) for story in feed.backlog}
        again = client.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304

        server.publish(feed, added, now)
        after = client.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert after.status_code == 200 and after.headers["etag"] != first.headers["etag"]
        newest = parse_feed(after.content, dict(after.headers), feed=feed.title, url=url).entries[0]
        assert newest.title == added.title and newest.published == now
        page = client.get(newest.url)
        assert page.status_code == 200 and added.title in page.text


# --------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------


def test_demo_alerts_recent_backlog_then_the_story_added_midway_without_leaving_loopback(
        env, tmp_path):
    kept = tmp_path / "kept"
    with ConnectionTrap() as trap:
        proxied = {**env, **{name: trap.url for name in
                             ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                              "all_proxy")}}
        started = time.monotonic()
        result = monitor("demo", "--duration", "12s", "--keep", str(kept), env=proxied, timeout=60)
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 25
    assert "Traceback" not in result.stderr
    assert trap.connections == 0

    lines = result.stdout.splitlines()
    alerts = [(index, match["title"]) for index, line in enumerate(lines)
              if (match := ALERT_SUBJECT.match(line))]
    alerted = {title for _, title in alerts}
    assert alerted >= {story.title for _, story in stories(on_topic=True, midway=False, recent=True)}
    assert not alerted & {story.title for _, story in stories(on_topic=True, midway=False,
                                                              recent=False)}
    assert not alerted & {story.title for _, story in stories(on_topic=False)}
    added = stories(midway=True)[0][1].title
    first_backlog_alert = min(index for index, title in alerts if title != added)
    news = next(index for index, line in enumerate(lines) if "News breaks" in line)
    added_alert = next(index for index, title in alerts if title == added)
    assert first_backlog_alert < news < added_alert

    summary = re.search(r"Summary: (\d+) stories stored; (\d+) matched the watch .*; "
                        r"(\d+) alerts sent", result.stdout)
    assert summary, result.stdout
    with sqlite3.connect(kept / "monitor.db") as db:
        assert int(summary[1]) == db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == len(stories())
        assert int(summary[3]) == db.execute("SELECT COUNT(*) FROM alerts WHERE status = 'sent'").fetchone()[0]
        urls = [url for (url,) in db.execute("SELECT url FROM feeds")]
    assert int(summary[2]) == len(stories(on_topic=True))
    assert len(urls) == 3 and all(url.startswith("http://127.0.0.1:") for url in urls)
    assert not Path(env["MONITOR_CONFIG"]).exists()  # the user's own config is left alone


def test_ctrl_c_ends_the_demo_cleanly_and_removes_its_temporary_folder(env, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "monitor", "demo", "--duration", "60s"],
                               env={**env, "TMPDIR": str(scratch)}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while "first poll" not in lines.get(timeout=max(0.1, deadline - time.monotonic())):
            pass
        assert any(scratch.iterdir()), "the demo works in a temporary folder"
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - interrupted < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=5)
    rest = "".join(lines.queue)
    assert "Stopped early." in rest and "Summary:" in rest
    assert "Traceback" not in process.stderr.read()
    assert not any(scratch.iterdir())


def test_demo_refuses_a_folder_in_use_and_a_duration_too_short_to_show_anything(env, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    refused = monitor("demo", "--keep", str(used), env=env)
    assert refused.returncode == 2
    assert "new or empty folder" in refused.stderr and "Traceback" not in refused.stderr
    assert (used / "notes.txt").read_text() == "mine"
    short = monitor("demo", "--duration", "3s", env=env)
    assert short.returncode == 2 and "too short" in short.stderr
