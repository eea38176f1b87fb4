"""Terminal controls from feeds (issue 13, input side): stripped from text, links refused."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from monitor.ingest.fetch import Fetcher
from monitor.ingest.parse import parse_feed
from monitor.models import FetchOutcome, FetchRequest
from support.feedserver import send
from test_fetch import NOW, SETTINGS

CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"


def rss_item(title: str, link: str, description: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
            f"<item><guid>g1</guid><title>{title}</title><link>{link}</link>"
            f"<description>{description}</description></item></channel></rss>").encode()


def parse(body: bytes, content_type: str = "application/rss+xml"):
    return parse_feed(body, {"content-type": content_type}, feed="f", url="https://example.org/feed")


@pytest.mark.parametrize("title", [
    "Breaking\u009b2J news",  # 8-bit CSI
    "Breaking\u009d52;c;x\u009c news",  # 8-bit OSC ... ST
    "Breaking\u007f news",  # DEL
    "Breaking&#x9b;2J news",  # as a character reference
    "Breaking&#127; news",
])
def test_del_and_c1_controls_are_stripped_from_stored_text(title: str) -> None:
    entry, = parse(rss_item(title, "https://example.org/a", f"Body {title}")).entries
    for text in (entry.title, entry.summary):
        assert not CONTROLS.search(text), repr(text)
        assert text.startswith(("Breaking", "Body Breaking"))


@pytest.mark.parametrize("link", [
    f"https://example.org/a{OSC52}", "https://example.org/\x1b[2Jclear", "https://example.org/\u009b2J",
    "https://example.org/a\x7fb",
])
def test_story_links_with_control_characters_are_refused(link: str) -> None:
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t",
                       "items": [{"id": "1", "url": link, "title": "x"}]})
    entry, = parse(body.encode(), "application/feed+json").entries
    assert entry.url is None
    assert not CONTROLS.search(entry.guid)


def test_a_redirect_location_with_escape_sequences_is_refused(feed_server) -> None:
    feed_server.routes["/feed"] = lambda handler: send(
        handler, 301, b"", {"Location": "/next\x1b]52;c;eA==\x07"})
    async def run():
        async with Fetcher(SETTINGS) as fetcher:
            return await fetcher.fetch(FetchRequest(feed="f", url=feed_server.url("/feed")), NOW)

    result = asyncio.run(run())
    assert result.outcome is FetchOutcome.ERROR  # httpx refuses to build the next request
    assert not CONTROLS.search(result.error)


def test_urls_in_fetch_errors_carry_no_control_characters() -> None:
    from monitor.ingest.fetch import redact_url

    shown = redact_url("http://u:p@127.0.0.1/a\u009b2J\x1b]52;c;eA==\x07")
    assert not CONTROLS.search(shown) and shown.startswith("http://127.0.0.1/a%C2%9B2J%1B")
