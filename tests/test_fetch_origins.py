"""Hostile redirects (issue 13): credentials stay at their configured origin, private networks stay out of reach.

A second loopback server (127.0.0.2) plays "another host". The public feed of
the private-network cases is reached through a recording proxy (a FeedServer
that sees the absolute URLs), so the "public" address is never contacted.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.ingest.fetch import Fetcher
from monitor.ingest.origins import credentials_allowed, special_address
from monitor.models import FeedConfig, FetchOutcome, FetchRequest, FetchResult
from support.feeds import Item, rss
from support.feedserver import FeedServer, redirect, static
from test_fetch import NOW, SETTINGS
from test_pipeline import T0, Clock, make_config, poll_sequence

FEED_BODY = rss([Item("one", "A story")])
PUBLIC = "http://93.184.215.14/feed"  # a public literal address: only ever seen by the proxy


@pytest.fixture
def other_host() -> Iterator[FeedServer]:
    with FeedServer(host="127.0.0.2") as server:
        yield server


def secrets_seen(server: FeedServer) -> list[dict[str, str]]:
    return [{k: v for k, v in r.headers.items() if k.lower() in ("authorization", "x-api-key")}
            for r in server.requests]


@pytest.mark.parametrize("configured, target, allowed", [
    ("http://a.example/feed", "http://a.example/other", True),
    ("http://a.example/feed", "https://a.example/feed", True),  # upgraded in place
    ("https://a.example/feed", "http://a.example/feed", False),  # never down to http
    ("http://a.example/feed", "http://b.example/feed", False),
    ("http://a.example/feed", "http://a.example:8080/feed", False),
    ("http://a.example:8080/feed", "https://a.example:8443/feed", False),
])
def test_credentials_belong_to_the_configured_origin(configured, target, allowed) -> None:
    assert credentials_allowed(configured, target) is allowed


def test_a_permanent_redirect_to_another_host_never_gets_the_credentials(
        feed_server: FeedServer, other_host: FeedServer, tmp_path: Path) -> None:
    other_host.routes["/feed"] = static(FEED_BODY)
    feed_server.routes["/feed"] = redirect(other_host.url("/feed"), 301)
    url = feed_server.url("/feed").replace("http://", "http://alice:PW-secret@")
    feed = FeedConfig("private", url, 600.0, headers={"X-Api-Key": "key-secret"})
    config = make_config(tmp_path, [feed])
    db = tmp_path / "monitor.db"
    reports = asyncio.run(poll_sequence(config, db, Clock(T0), feed, 3))
    assert [r.outcome for r in reports] == ["ok", "not_modified", "not_modified"]
    assert len(other_host.requests) == 3 and secrets_seen(other_host) == [{}, {}, {}]
    assert all("Authorization" in seen and "X-Api-Key" in seen for seen in secrets_seen(feed_server))
    with sqlite3.connect(db) as conn:
        stored_url, moved_to = conn.execute("SELECT url, moved_to FROM feeds").fetchone()
    assert stored_url == feed_server.url("/feed")  # not moved...
    assert moved_to == other_host.url("/feed")  # ...but flagged for the user


def test_a_feed_moved_by_an_older_version_goes_back_to_where_its_credentials_belong(
        feed_server: FeedServer, other_host: FeedServer, tmp_path: Path) -> None:
    other_host.routes["/feed"] = static(FEED_BODY)
    feed_server.routes["/feed"] = static(FEED_BODY)
    feed = FeedConfig("private", feed_server.url("/feed").replace("http://", "http://alice:PW@"),
                      600.0, headers={"X-Api-Key": "key-secret"})
    config = make_config(tmp_path, [feed])
    db = tmp_path / "monitor.db"
    asyncio.run(poll_sequence(config, db, Clock(T0), feed, 0))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE feeds SET url = ?", [other_host.url("/feed")])
    report, = asyncio.run(poll_sequence(config, db, Clock(T0), feed, 1))
    assert report.outcome == "ok" and other_host.requests == []
    assert secrets_seen(feed_server) == [{"Authorization": "Basic YWxpY2U6UFc=", "X-Api-Key": "key-secret"}]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT url FROM feeds").fetchone() == (feed_server.url("/feed"),)


def test_a_feed_without_credentials_still_moves(feed_server: FeedServer, other_host: FeedServer,
                                                tmp_path: Path) -> None:
    other_host.routes["/feed"] = static(FEED_BODY)
    feed_server.routes["/feed"] = redirect(other_host.url("/feed"), 301)
    feed = FeedConfig("open", feed_server.url("/feed"), 600.0)
    db = tmp_path / "monitor.db"
    asyncio.run(poll_sequence(make_config(tmp_path, [feed]), db, Clock(T0), feed, 1))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT url, moved_to FROM feeds").fetchone() == (other_host.url("/feed"), None)


# --- private networks -----------------------------------------------------------------------


@pytest.mark.parametrize("address, special", [
    ("169.254.169.254", True), ("10.0.0.5", True), ("127.0.0.1", True), ("::1", True),
    ("192.168.1.1", True), ("fd00::1", True), ("::ffff:10.0.0.1", True), ("fe80::1%eth0", True),
    ("93.184.215.14", False), ("2606:4700::1", False),
])
def test_special_addresses(address: str, special: bool) -> None:
    assert special_address(address) is special


def fetch_configured(url: str) -> FetchResult:
    async def run() -> FetchResult:
        async with Fetcher(SETTINGS) as fetcher:
            return await fetcher.fetch(FetchRequest(feed="test", url=url), NOW)
    return asyncio.run(run())


@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5:6379/", "http://[::1]:9108/metrics",
    "http://localhost:9108/metrics",
])
def test_a_public_feed_cannot_redirect_into_a_private_network(proxied: FeedServer, target: str) -> None:
    proxied.routes[PUBLIC] = redirect(target, 301)
    result = fetch_configured(PUBLIC)
    assert result.outcome is FetchOutcome.ERROR and result.error_kind == "redirect"
    assert "private network" in result.error
    assert [r.path for r in proxied.requests] == [PUBLIC]  # the target was never asked


def test_a_chain_through_public_hosts_into_a_private_one_is_refused(proxied: FeedServer) -> None:
    proxied.routes[PUBLIC] = redirect("http://93.184.215.15/next", 302)
    proxied.routes["http://93.184.215.15/next"] = redirect("http://169.254.169.254/", 301)
    result = fetch_configured(PUBLIC)
    assert result.error_kind == "redirect" and result.permanent_url is None
    assert len(proxied.requests) == 2


def test_a_feed_configured_in_a_private_network_may_redirect_within_it(
        feed_server: FeedServer, other_host: FeedServer) -> None:
    other_host.routes["/feed"] = static(FEED_BODY)
    feed_server.routes["/feed"] = redirect(other_host.url("/feed"), 301)
    result = fetch_configured(feed_server.url("/feed"))
    assert result.outcome is FetchOutcome.OK and result.permanent_url == other_host.url("/feed")


def test_feeds_list_flags_the_move_it_did_not_make(env, feed_server: FeedServer,
                                                  other_host: FeedServer) -> None:
    import json

    from test_cli import monitor

    other_host.routes["/feed"] = static(FEED_BODY)
    feed_server.routes["/feed"] = redirect(other_host.url("/feed"), 301)
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    url = feed_server.url("/feed").replace("http://", "http://alice:PW-secret@")
    monitor("feeds", "add", url, "--name", "private", "--no-discover", env=env, check=True)
    monitor("run", "--once", env=env, check=True)
    row = json.loads(monitor("feeds", "list", "--json", env=env, check=True).stdout.splitlines()[0])
    assert row["url"] == feed_server.url("/feed") and row["moved_to"] == other_host.url("/feed")
    table = monitor("feeds", "list", env=env, check=True).stdout
    assert "moved permanently to" in table and "PW-secret" not in table
    assert secrets_seen(other_host) == [{}]
