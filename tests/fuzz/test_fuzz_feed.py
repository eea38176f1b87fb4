"""Fuzzing the feed path: mutated real feeds through parse and match, within a time bound.

Each example takes a real fixture feed (tests/fixtures/feeds) and damages it
the ways the internet does: flipped bytes, truncation, a DOCTYPE with
entity bombs or XXE spliced in, tag soup from other feeds, a swapped or
lying encoding declaration. The result must parse to well-formed entries or
raise ParseError, never anything else, within 5 s, and the shipped watch must
match every entry without error.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from monitor.ingest.parse import MAX_GUID_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS, parse_feed
from monitor.match import Matcher, load_watch
from monitor.match.engine import match_entry
from monitor.models import Entry, ParseError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = {path.name: path.read_bytes() for path in sorted((ROOT / "tests/fixtures/feeds").iterdir())
            if path.suffix != ".md"}
MATCHER = Matcher.compile(load_watch(ROOT / "config/watch.toml"))
for _language in ("uk", "ru"):  # load the dictionaries now, not inside the first timed example
    MATCHER.match(title="Китай постачає дрони Росії", language=_language)
TIME_LIMIT = 5.0  # seconds for one feed: parse and match
FEED_URL = "https://example.org/feed"

# A local file an XXE entity would read: its first words must never reach an entry.
_XXE_TARGET = (ROOT / "tests/fixtures/feeds/PROVENANCE.md").as_uri().encode()
XXE_MARKER = "Provenance of these feed snapshots"

DOCTYPES = [
    b'<!DOCTYPE rss [<!ENTITY a "AAAAAAAAAA"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    b'<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
    b'<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>',
    b'<!DOCTYPE rss [<!ENTITY big "' + b"B" * 50_000 + b'">]>',
    b'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "' + _XXE_TARGET + b'">]>',
    b'<!DOCTYPE rss [<!ENTITY % p SYSTEM "' + _XXE_TARGET + b'"> %p;]>',
    b'<!DOCTYPE rss SYSTEM "http://127.0.0.1:9/evil.dtd">',
    b'<!DOCTYPE rss PUBLIC "-//x//" "' + _XXE_TARGET + b'">',
    b'<!DOCTYPE rss [<!-- ]> --><!ENTITY a "x">]>',
    b'<!DOCTYPE rss [',
    b'<!ENTITY xxe SYSTEM "' + _XXE_TARGET + b'">',
    b"<!DOCTYPE html>",
]
REFERENCES = [b"&h;", b"&big;", b"&xxe;", b"&a;", b"&undefined;", b"&#xD800;", b"&#0;", b"&#x110000;", b"&lt;b&gt;"]
SOUP = [
    b"<item>", b"</item>", b"<entry>", b"</entry>", b"<title>", b"</title>", b"</channel>", b"<![CDATA[", b"]]>",
    b"<!--", b"-->", b"<?xml version='1.0'?>", b"<a href='javascript:alert(1)'>x</a>", b"<script>alert(1)",
    b"<link>javascript:alert(1)</link>", b"<guid></guid>", b"<guid>   </guid>", b"<id>" + b"i" * 2_000 + b"</id>",
    b"<pubDate>Tue, 99 Foo 9999 99:99:99 +9999</pubDate>", b"<updated>99999-01-01T00:00:00Z</updated>",
    b"<dc:date>0000-00-00</dc:date>", b"<pubDate>Sat, 01 Jan 9999 23:59:59 -2359</pubDate>",
    b"<title>" + "Китай \u202eгуд\u200b 中国 drones".encode() + b"</title>", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf",
    b"<" * 200, b"<a " * 200, b"<b>" * 2_000, b"&" * 500, b"<rss version='2.0'><channel>", b"<feed xmlns='x'>",
    b"<html><body>", b'<content type="html">&lt;p&gt;Beijing &amp;amp; Moscow&lt;/p&gt;</content>',
]
ENCODINGS = [b"utf-8", b"UTF-16", b"utf-32", b"windows-1251", b"iso-8859-1", b"koi8-r", b"gb2312", b"shift_jis",
             b"bogus", b"", b"ebcdic-cp-us", b"utf-7", b"ascii"]
CONTENT_TYPES = ["application/rss+xml", "application/rss+xml; charset=windows-1251", "text/html",
                 "application/json", "text/xml; charset=bogus", "application/feed+json", "text/xml; charset=utf-16",
                 "application/atom+xml; charset=utf-8"]
_DECLARED = re.compile(rb"encoding=[\"'][^\"']*[\"']")


def _position(draw: st.DrawFn, body: bytes) -> int:
    return draw(st.integers(0, len(body)))


def _flip(draw: st.DrawFn, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 8))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


def _truncate(draw: st.DrawFn, body: bytes) -> bytes:
    return body[:_position(draw, body)]


def _doctype(draw: st.DrawFn, body: bytes) -> bytes:
    doctype = draw(st.sampled_from(DOCTYPES))
    declaration_end = body.find(b"?>")
    at = draw(st.sampled_from([0, declaration_end + 2 if declaration_end >= 0 else 0, _position(draw, body)]))
    body = body[:at] + doctype + body[at:]
    for _ in range(draw(st.integers(0, 3))):  # use the entities inside the document
        at = _position(draw, body)
        body = body[:at] + draw(st.sampled_from(REFERENCES)) + body[at:]
    return body


def _soup(draw: st.DrawFn, body: bytes) -> bytes:
    piece = draw(st.one_of(st.sampled_from(SOUP), st.binary(max_size=20), st.sampled_from(REFERENCES)))
    at = _position(draw, body)
    return body[:at] + piece + body[at:]


def _splice(draw: st.DrawFn, body: bytes) -> bytes:
    """A slice of another real feed dropped into this one."""
    other = FIXTURES[draw(st.sampled_from(sorted(FIXTURES)))]
    start = draw(st.integers(0, len(other)))
    piece = other[start:start + draw(st.integers(0, 5_000))]
    at = _position(draw, body)
    return body[:at] + piece + body[at:]


def _encoding(draw: st.DrawFn, body: bytes) -> bytes:
    """Lie about the encoding, or really change it."""
    how = draw(st.sampled_from(["swap", "declare", "bom", "utf-16", "utf-32"]))
    if how == "swap":
        name = draw(st.sampled_from(ENCODINGS))
        return _DECLARED.sub(lambda _: b'encoding="' + name + b'"', body, count=1)
    if how == "declare":
        return b'<?xml version="1.0" encoding="' + draw(st.sampled_from(ENCODINGS)) + b'"?>\n' + body
    if how == "bom":
        return draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"])) + body
    text = body.decode("utf-8", "replace")
    codec = draw(st.sampled_from([f"{how}", f"{how}-le", f"{how}-be"]))
    return text.encode(codec, "replace")


MUTATIONS = [_flip, _flip, _truncate, _doctype, _doctype, _soup, _soup, _soup, _splice, _encoding, _encoding]


@st.composite
def mutated_feeds(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    name = draw(st.sampled_from(sorted(FIXTURES)))
    body = FIXTURES[name]
    for _ in range(draw(st.integers(1, 4))):
        body = draw(st.sampled_from(MUTATIONS))(draw, body)
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["Content-Type"] = draw(st.sampled_from(CONTENT_TYPES))
    if draw(st.integers(0, 4)) == 0:
        headers["Content-Location"] = draw(st.sampled_from(["/other/", "https://[::1", "javascript:x", "//evil/"]))
    return name, body, headers


def check_entry(entry: Entry) -> None:
    """What the store and the alerts rely on: plain UTF-8 text, capped, UTC times, a guid."""
    assert entry.feed == "fuzzed"
    assert isinstance(entry.guid, str) and entry.guid.strip()
    assert len(entry.guid) <= MAX_GUID_CHARS
    for text, limit in ((entry.title, MAX_TITLE_CHARS), (entry.summary, MAX_TEXT_CHARS),
                        (entry.content, MAX_TEXT_CHARS)):
        assert isinstance(text, str) and len(text) <= limit
        assert XXE_MARKER not in text, "an external entity was read"
    for text in (entry.guid, entry.title, entry.summary, entry.content, entry.url or "",
                 *entry.authors, *entry.tags):
        text.encode("utf-8")  # SQLite stores UTF-8: a lone surrogate would fail there
    assert entry.url is None or entry.url.startswith(("http://", "https://"))
    for moment in (entry.published, entry.updated):
        assert moment is None or (moment.tzinfo is not None and moment.utcoffset() == timedelta(0))
    assert all(isinstance(name, str) and name for name in entry.authors + entry.tags)
    assert entry.language is None or re.fullmatch(r"[a-z]{2,3}", entry.language)
    assert re.fullmatch(r"[0-9a-f]{64}", entry.content_hash)


@settings(deadline=timedelta(seconds=TIME_LIMIT))
@example(feed=("made_billion_laughs.xml", FIXTURES["made_billion_laughs.xml"], {}))
@example(feed=("made_xxe.xml", FIXTURES["made_xxe.xml"], {}))
@example(feed=("made_windows1251.xml", FIXTURES["made_windows1251.xml"].replace(b"windows-1251", b"utf-16"), {}))
# Found by this test: a malformed Content-Location made urljoin raise ValueError out of parse_feed.
@example(feed=("made_ghost_kyivindependent.xml", FIXTURES["made_ghost_kyivindependent.xml"],
               {"Content-Location": "https://[::1"}))
# Found by this test: in a malformed feed, feedparser's fallback parser raised ValueError,
# UnicodeEncodeError or OverflowError on references to no character.
@example(feed=("made_malformed.xml", FIXTURES["made_malformed.xml"].replace(b"</title>", b"&#xD800;</title>", 1), {}))
@example(feed=("made_malformed.xml", FIXTURES["made_malformed.xml"].replace(b"</title>", b"&#x110000;</title>", 1), {}))
@example(feed=("made_malformed.xml", FIXTURES["made_malformed.xml"].replace(b"</title>", b"&#99999999999;</title>", 1),
               {}))
# Found by this test: a stray </media:player> made feedparser raise KeyError (strict and loose parser alike).
@example(feed=("other_feeder_rss_mediarss.xml",
               FIXTURES["other_feeder_rss_mediarss.xml"].replace(b"<title>", b"<title></media:player>", 1), {}))
@given(mutated_feeds())
def test_a_mutated_real_feed_parses_and_matches_or_is_a_parse_error_in_bounded_time(
        feed: tuple[str, bytes, dict[str, str]]) -> None:
    name, body, headers = feed
    started = time.perf_counter()
    try:
        parsed = parse_feed(body, headers, feed="fuzzed", url=FEED_URL, language="en")
    except ParseError as error:
        assert str(error)
        event("ParseError")
        assert time.perf_counter() - started < TIME_LIMIT
        return
    event("parsed" if parsed.entries else "parsed, no entries")
    assert len({entry.guid for entry in parsed.entries}) == len(parsed.entries)
    assert parsed.title is None or XXE_MARKER not in parsed.title
    for entry in parsed.entries:
        check_entry(entry)
        for match in match_entry(MATCHER, entry, feed_tags=("news",)):
            fields = {"title": entry.title, "summary": entry.summary, "content": entry.content}
            for hit in match.hits:
                assert 0 <= hit.start < hit.end <= len(fields[hit.field])
    assert time.perf_counter() - started < TIME_LIMIT, f"{name}: {time.perf_counter() - started:.1f} s"
