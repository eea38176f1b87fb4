"""Alerts end to end: `monitor run --once` against a local feed, a real SMTP server and a webhook."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from support.feeds import Item, rss
from support.feedserver import static
from support.watch import CHINA_DRONES_WATCH
from test_cli import monitor

WATCH = CHINA_DRONES_WATCH

NOW = datetime.now(UTC)
HOSTILE = 'Chinese drone parts <script>alert("x")</script> **bold**'


def write_alerts(cfg: Path, *destinations: dict, settings: str = "") -> None:
    lines = ["[settings]", settings] if settings else []
    for dest in destinations:
        lines.append("[[destination]]")
        for key, value in dest.items():
            lines.append(f"{key} = {json.dumps(value)}")
    (cfg / "alerts.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def cfg(env, feed_server):
    """A config folder watching one local feed with one matching and one neutral story."""
    path = Path(env["MONITOR_CONFIG"])
    monitor("init", str(path), "--no-feeds", env=env, check=True)
    (path / "watch.toml").write_text(WATCH, encoding="utf-8")
    feed_server.routes["/feed"] = static(rss([
        Item("a", HOSTILE, summary="Shipments of Chinese drone engines reached Russia.",
             published=NOW - timedelta(hours=1), link="https://news.example.org/a?utm_source=x"),
        Item("b", "Weather in Kyiv", published=NOW - timedelta(hours=1)),
    ], title="Example Outlet"))
    monitor("feeds", "add", feed_server.url("/feed"), "--name", "Example Outlet", env=env, check=True)
    return env


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def test_email_alert_is_multipart_escaped_and_sent_once(cfg, smtp):
    write_alerts(Path(cfg["MONITOR_CONFIG"]), {"name": "desk", "url": smtp.url()})
    first = monitor("run", "--once", env=cfg, check=True)
    assert "alerts_sent=1" in first.stdout, first.stdout + first.stderr
    assert smtp.wait_for(1)
    message = smtp.messages[0]
    assert message["subject"].startswith("[china_drones] Chinese drone parts")
    assert message["subject"].endswith("— Example Outlet")
    parts = {part.get_content_type(): part.get_content() for part in message.walk()
             if not part.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    html = _Tags()
    html.feed(parts["text/html"])
    assert "script" not in html.tags
    assert "https://news.example.org/a" in html.hrefs  # canonical link, tracking dropped
    assert "&lt;script&gt;" in parts["text/html"]
    assert "https://news.example.org/a" in parts["text/plain"]

    second = monitor("run", "--once", env=cfg, check=True)
    assert "alerts_sent=0" in second.stdout
    assert len(smtp.messages) == 1


def test_webhook_gets_the_alert_and_secrets_never_show(cfg, webhook):
    secret = "S3cretPassw0rd"
    write_alerts(Path(cfg["MONITOR_CONFIG"]), {"name": "chat", "url": webhook.url(f"bot:{secret}")})
    outputs = [monitor("run", "--once", env=cfg, check=True),
               monitor("config", "check", env=cfg, check=True),
               monitor("feeds", "list", env=cfg, check=True)]
    assert webhook.wait_for(1)
    assert webhook.posts[0]["title"].startswith("[china_drones]")
    assert webhook.auth[0] is not None  # the secret was used for the request...
    for result in outputs:  # ...and appears in no output
        assert secret not in result.stdout + result.stderr
    db = Path(cfg["MONITOR_DB"])
    assert secret.encode() not in db.read_bytes()


def test_dead_mail_server_then_retry_delivers_exactly_once(cfg, smtp, webhook):
    write_alerts(Path(cfg["MONITOR_CONFIG"]), {"name": "desk", "url": smtp.url()},
                 {"name": "chat", "url": webhook.url()})
    smtp.stop()
    first = monitor("run", "--once", env=cfg)
    assert first.returncode == 1, "a failed send makes `run --once` exit 1"
    assert "alerts_sent=1 alerts_failed=1" in first.stdout, first.stdout
    assert "alerts to desk failed: FAILURE: Connection error while submitting email" in first.stderr
    assert "Connection refused" in first.stderr, "the cause apprise logged, not only its warning"
    assert webhook.wait_for(1), "one failing destination does not block the other"
    with sqlite3.connect(cfg["MONITOR_DB"]) as conn:
        rows = dict(conn.execute("select destination, status from alerts").fetchall())
    assert rows == {"desk": "failed", "chat": "sent"}

    smtp.start()
    retried = monitor("alerts", "retry", "--all", env=cfg, check=True)
    assert "1" in retried.stdout
    assert smtp.wait_for(1)
    monitor("run", "--once", env=cfg, check=True)
    assert len(smtp.messages) == 1 and len(webhook.posts) == 1


def test_no_destination_prints_alerts_to_the_console(cfg):
    result = monitor("run", "--once", env=cfg, check=True)
    assert "[china_drones] Chinese drone parts" in result.stdout
    listed = [json.loads(line) for line in monitor("alerts", "list", "--json", env=cfg, check=True).stdout.splitlines()]
    assert [(a["destination"], a["status"], a["rule"]) for a in listed] == [("console", "sent", "china_drones")]
