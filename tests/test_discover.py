"""Feed discovery against a real local HTTP server: the URL itself, <link rel=alternate>, common paths."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.ingest.discover import COMMON_PATHS, Candidate, DiscoveryError, discover
from monitor.ingest.fetch import Fetcher
from monitor.models import FetchSettings
from support.feeds import Item, rss
from support.feedserver import fixture_bytes, redirect, static

HTML = Path(__file__).resolve().parent / "fixtures" / "html"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def html(name: str) -> bytes:
    return (HTML / name).read_bytes()


def run_discover(url: str) -> list[Candidate]:
    async def go() -> list[Candidate]:
        async with Fetcher(FetchSettings(connect_timeout=2, read_timeout=2, deadline=5)) as fetcher:
            return await discover(url, fetcher, NOW)
    return asyncio.run(go())


def test_a_feed_url_is_its_own_only_candidate_with_its_title(feed_server):
    feed_server.routes["/rss.xml"] = static(rss([Item("a", "Story")], title="Local News"))
    assert run_discover(feed_server.url("/rss.xml")) == [
        Candidate(feed_server.url("/rss.xml"), "Local News", "application/rss+xml")]
    assert [r.path for r in feed_server.requests] == ["/rss.xml"], "nothing else was probed"


def test_a_json_feed_served_as_plain_json_is_recognised(feed_server):
    feed_server.routes["/feed.json"] = static(fixture_bytes("made_jsonfeed.json"), "application/json")
    [candidate] = run_discover(feed_server.url("/feed.json"))
    assert candidate.url == feed_server.url("/feed.json") and candidate.type == "application/json"


def test_page_alternate_links_relative_and_absolute_in_page_order_without_repeats(feed_server):
    feed_server.routes["/news/index.html"] = static(html("several_alternates.html"), "text/html; charset=utf-8")
    found = run_discover(feed_server.url("/news/index.html"))
    assert found == [
        Candidate(feed_server.url("/news/feed.xml"), "Example News » Feed", "application/rss+xml"),
        Candidate(feed_server.url("/atom.xml"), "Example News (Atom)", "application/atom+xml"),
        Candidate("https://comments.example.org/feed/", "Comments", "application/rss+xml"),
        Candidate(feed_server.url("/news/feed.json"), "JSON", "application/feed+json"),
    ]
    assert [r.path for r in feed_server.requests] == ["/news/index.html"], \
        "the page's own links are taken without probing"


def test_relative_links_resolve_against_the_page_reached_after_redirects(feed_server):
    page = b'<html><head><link rel="alternate" type="application/atom+xml" href="atom"></head></html>'
    feed_server.routes["/old"] = redirect("/blog/2024/index.html")
    feed_server.routes["/blog/2024/index.html"] = static(page, "text/html")
    assert [c.url for c in run_discover(feed_server.url("/old"))] == [feed_server.url("/blog/2024/atom")]


def test_page_without_links_falls_back_to_common_paths_that_parse_as_feeds(feed_server):
    feed_server.routes["/"] = static(html("no_links.html"), "text/html; charset=utf-8")
    feed_server.routes["/feed"] = static(rss([Item("a", "Story")], title="Found by path"))
    feed_server.routes["/rss.xml"] = static(b"<html><body>not a feed</body></html>", "text/html")
    assert run_discover(feed_server.url("/")) == [
        Candidate(feed_server.url("/feed"), "Found by path", "application/rss+xml")]
    probed = {r.path for r in feed_server.requests}
    assert probed == {"/", *COMMON_PATHS}


def test_common_paths_are_on_the_pages_origin_not_under_its_path(feed_server):
    feed_server.routes["/section/page.html"] = static(html("no_links.html"), "text/html")
    feed_server.routes["/index.xml"] = static(rss([Item("a", "Story")], title="Root feed"))
    assert [c.url for c in run_discover(feed_server.url("/section/page.html"))] == [
        feed_server.url("/index.xml")]


def test_page_with_no_feed_anywhere_gives_no_candidates(feed_server):
    feed_server.routes["/"] = static(html("no_links.html"), "text/html")
    assert run_discover(feed_server.url("/")) == []


def test_an_unreachable_page_is_a_discovery_error_naming_the_problem(feed_server):
    with pytest.raises(DiscoveryError, match="HTTP 404"):
        run_discover(feed_server.url("/missing"))


def test_link_titles_are_decoded_with_the_pages_declared_charset(feed_server):
    page = ('<html><head><meta charset="windows-1251">'
            '<link rel="alternate" type="application/rss+xml" title="Новини" href="/rss/"></head></html>')
    feed_server.routes["/"] = static(page.encode("cp1251"), "text/html")
    assert [c.title for c in run_discover(feed_server.url("/"))] == ["Новини"]
