"""Find the feeds behind a web page, so a person can paste the site's address instead of the feed's.

Order of evidence: the URL itself when it already is a feed; else the page's
`<link rel="alternate">` feed links (relative ones resolved against the page
and its `<base href>`), which are the site's own statement and are taken
without fetching them; else a few common feed paths on the same origin, each
fetched and kept only when it parses as a feed. Every request goes through
`Fetcher`, so discovery has the same timeouts, size caps and redirect rules as
polling.
"""

from __future__ import annotations

import asyncio
import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

from monitor.errors import MonitorError
from monitor.ingest.fetch import Fetcher, redact_url
from monitor.ingest.parse import parse_feed
from monitor.models import FetchOutcome, FetchRequest, ParseError

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json", "application/json")
COMMON_PATHS = ("/feed", "/rss", "/rss/", "/feed/", "/atom.xml", "/rss.xml", "/index.xml", "/feed.xml")
MAX_TITLE_CHARS = 200

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Candidate:
    """One feed found for a page: its absolute URL, title (when known) and media type."""

    url: str
    title: str | None
    type: str


class DiscoveryError(MonitorError):
    """The page itself could not be fetched, so nothing can be said about its feeds."""

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind  # the fetch's error kind: dns, connect, timeout, http...

    @property
    def nothing_there(self) -> bool:
        """404 or 410, no such host, or a refused connection: the address is wrong, not
        just down for a moment."""
        return self.status in (404, 410) or self.kind in ("dns", "connect")


async def discover(url: str, fetcher: Fetcher, now: datetime) -> list[Candidate]:
    """The feeds URL leads to, best evidence first, without repeats; [] when there are none.

    Raises DiscoveryError when URL cannot be fetched at all.
    """
    result = await fetcher.fetch(FetchRequest(feed="discovery", url=url), now)
    if result.outcome is not FetchOutcome.OK or result.body is None:
        raise DiscoveryError(result.error or f"HTTP {result.status} for {redact_url(url)}",
                             status=result.status, kind=result.error_kind)
    itself = _as_feed(url, result.body, result.headers)
    if itself is not None:
        return [itself]
    found = alternate_links(result.body, result.final_url, result.headers)
    if not found:
        skip = {url, result.final_url}
        probes = [probe for probe in probe_urls(url) if probe not in skip]
        checked = await asyncio.gather(*(_probe(probe, fetcher, now) for probe in probes))
        found = [candidate for candidate in checked if candidate is not None]
    return _unique(found)


def probe_urls(url: str) -> list[str]:
    """The common feed locations tried on URL's origin when its page links no feed."""
    parts = urlsplit(url)
    return [urlunsplit((parts.scheme, parts.netloc, path, "", "")) for path in COMMON_PATHS]


def alternate_links(body: bytes, page_url: str, headers: Mapping[str, str]) -> list[Candidate]:
    """The `<link rel="alternate" type="...feed type...">` targets of an HTML page, in page order."""
    finder = _LinkFinder()
    finder.feed(body.decode(_charset(body, headers), errors="replace"))
    finder.close()
    base = urljoin(page_url, finder.base) if finder.base else page_url
    found = []
    for href, title, media_type in finder.links:
        target = urljoin(base, href)
        if urlsplit(target).scheme.lower() in ("http", "https"):
            found.append(Candidate(url=target, title=title, type=media_type))
    return found


async def _probe(url: str, fetcher: Fetcher, now: datetime) -> Candidate | None:
    result = await fetcher.fetch(FetchRequest(feed="discovery", url=url), now)
    if result.outcome is not FetchOutcome.OK or result.body is None:
        return None
    return _as_feed(url, result.body, result.headers)


def _as_feed(url: str, body: bytes, headers: Mapping[str, str]) -> Candidate | None:
    """URL as a candidate when BODY parses as a feed with a title or at least one story."""
    try:
        parsed = parse_feed(body, headers, feed="discovery", url=url)
    except ParseError:
        return None
    return Candidate(url=url, title=_short(parsed.title), type=_feed_type(body, headers))


def _feed_type(body: bytes, headers: Mapping[str, str]) -> str:
    """The declared media type when it names a feed format, else one guessed from the body."""
    declared = _media_type({key.lower(): value for key, value in headers.items()}.get("content-type", ""))
    if declared in FEED_TYPES:
        return declared
    head = body[:2048].lstrip()
    if head[:1] in (b"{", b"["):
        return "application/feed+json"
    if b"<feed" in head and b"<rss" not in head:
        return "application/atom+xml"
    return "application/rss+xml"


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _charset(body: bytes, headers: Mapping[str, str]) -> str:
    """The page's encoding: the Content-Type charset, else a <meta charset>, else UTF-8."""
    content_type = {key.lower(): value for key, value in headers.items()}.get("content-type", "")
    match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", content_type, re.IGNORECASE)
    name = match.group(1) if match else None
    if name is None:
        meta = _META_CHARSET.search(body[:4096])
        name = meta.group(1).decode("ascii") if meta else None
    try:
        return "utf-8" if name is None else codecs.lookup(name).name
    except LookupError:
        return "utf-8"


def _short(title: str | None) -> str | None:
    if title is None:
        return None
    title = " ".join(title.split())
    return title[:MAX_TITLE_CHARS] or None


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    """First occurrence of each URL (ignoring a #fragment), order kept."""
    seen: set[str] = set()
    unique = []
    for candidate in candidates:
        key = candidate.url.split("#", 1)[0]
        if key not in seen:
            seen.add(key)
            unique.append(candidate)
    return unique


class _LinkFinder(HTMLParser):
    """Collects feed `<link rel=alternate>` tags and the first `<base href>`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str | None, str]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: (value or "") for name, value in attrs}
        if tag == "base" and self.base is None and values.get("href", "").strip():
            self.base = values["href"].strip()
        if tag != "link":
            return
        rels = values.get("rel", "").lower().split()
        media_type = _media_type(values.get("type", ""))
        href = values.get("href", "").strip()
        if "alternate" in rels and media_type in FEED_TYPES and href:
            self.links.append((href, _short(values.get("title")), media_type))
