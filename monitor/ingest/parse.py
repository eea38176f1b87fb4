"""Feed bodies (RSS, RDF, Atom, JSON Feed) turned into normalised `Entry` records.

XML goes through feedparser, on the raw bytes so that declared charsets
(windows-1251, ISO-8859-1...) are honoured, with its HTML sanitiser and URI
rewriting switched off: we keep plain text only (`monitor.ingest.htmltext`), and
those two passes are most of feedparser's cost. The bytes are cleaned before
feedparser sees them (`monitor.ingest.prolog`: DOCTYPE subsets, bad character
references). JSON Feed, which feedparser does not read, is parsed here.

Choices a reader of the stored data should know:

* summary and content: `summary` is the feed's own summary/description (not
  the copy of the content feedparser puts there when it is missing), `content`
  the longest full-text body. When both come out as the same text (many feeds
  repeat the description as `content:encoded`) it is kept once, as `summary`,
  and `content` is empty, so nothing is stored or matched twice.
* published falls back to the updated date when the feed gives only one
  (RDF `dc:date`, Atom `<updated>`), so every dated story has `published`.
* url is kept only for http(s) links: a `javascript:` link never reaches an
  alert.
* guid: the entry id; else the canonical link; else `sha256:` of the title and
  published time, which is stable across polls. An id longer than
  `MAX_GUID_CHARS` is replaced by its hash. Repeated guids keep the first entry.
* language: the item's own (`dc:language`, JSON `language`), else the feed's,
  else the configured one, always as a lowercase primary subtag ('uk-UA' -> 'uk').
* text fields are capped (`MAX_TITLE_CHARS`, `MAX_TEXT_CHARS`...) so a hostile
  feed cannot bloat the database.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from monitor.ingest.htmltext import fold_whitespace, html_to_text
from monitor.ingest.prolog import first_significant_byte, strip_doctype_subsets, valid_char_references
from monitor.languages import primary_language
from monitor.models import Entry, ParsedFeed, ParseError
from monitor.stories import repeats_summary
from monitor.urls import canonical_url

MAX_TITLE_CHARS = 1_000
MAX_TEXT_CHARS = 100_000  # summary, content
MAX_SOURCE_CHARS = 1_000_000  # of a field's raw text/HTML; the rest is never read
MAX_GUID_CHARS = 1_000
MAX_NAMES = 50  # authors, tags per entry
MAX_NAME_CHARS = 200
MAX_WARNING_CHARS = 200
MAX_ATTRIBUTES = 1_000  # per element: feedparser's strict parser is quadratic in their number

# Bidi embeddings, overrides and isolates; DEL and the C1 controls (8-bit CSI and OSC
# among them, which terminals obey) except NEL, which is whitespace and folded.
# fold_whitespace already removes the C0 controls but tab and line breaks.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\x7f-\x84\x86-\x9f]+")
# Any control character in a link: ESC in a URL can drive a terminal that prints it.
_URL_CONTROLS = re.compile("[\x00-\x20\x7f-\x9f]")
_LONG_TAG = re.compile(rb"<[^<>!?][^<>]{8192,}>")  # start tags this long are rare enough to count

_ABSOLUTE_WEB_URL = re.compile(r"https?://", re.IGNORECASE)
_HTML_ELEMENT = re.compile(rb"<html[\s>]", re.IGNORECASE)


def parse_feed(body: bytes, headers: Mapping[str, str], *, feed: str, url: str,
               language: str | None = None) -> ParsedFeed:
    """Every entry of a fetched feed body, normalised; ParseError if it is no feed.

    `headers` are the HTTP response headers; `url` is where the body came from
    (the base for relative links unless a Content-Location says otherwise);
    `language` is the configured fallback for entries and feeds that say none.
    """
    response_headers = {name.lower(): value for name, value in headers.items()}
    # Links are resolved here, not by feedparser: given a Content-Location it
    # urljoins the base at every element (10-15% of its parse time) and
    # resolves relative Atom ids, which would tie guids to the feed's URL.
    try:
        base = urljoin(url, response_headers.pop("content-location", "")) or url
    except ValueError:  # a malformed Content-Location ("https://[::1") is ignored
        base = url
    first = first_significant_byte(body)
    if not first:
        raise ParseError("not a feed: empty body")
    if first in b"{[" or (first != b"<" and "json" in response_headers.get("content-type", "")):
        return _parse_json_feed(body, response_headers, feed=feed, base=base, language=language)
    return _parse_xml_feed(body, response_headers, feed=feed, base=base, language=language)


class _ParseTimedOut(BaseException):
    """Raised by the timer in a parse: a BaseException, so feedparser's own
    `except Exception` (which would fall back to its slower loose parser) lets it through."""


def parse_feed_within(time_limit: float, body: bytes, headers: Mapping[str, str], *,
                      feed: str, url: str, language: str | None = None) -> ParsedFeed:
    """`parse_feed`, ended with a ParseError after `time_limit` seconds of wall time.

    A body under the size cap can still cost a parser many seconds (100,000 tiny
    items, deep nesting); in a worker process that would hold one of the two
    parsers from every other feed. The limit is a SIGALRM timer, so it works only
    in a process's main thread (the parser workers); elsewhere, or with a limit of
    0, the parse is not limited. A parse stuck inside one C call never sees the
    signal: the pipeline's own backstop replaces such a worker.
    """
    if time_limit <= 0 or threading.current_thread() is not threading.main_thread():
        return parse_feed(body, headers, feed=feed, url=url, language=language)
    armed = True

    def expire(signum: int, frame: object) -> None:
        if armed:
            raise _ParseTimedOut

    previous = signal.signal(signal.SIGALRM, expire)
    # Repeats each second after the first expiry, in case a library swallowed one.
    signal.setitimer(signal.ITIMER_REAL, time_limit, 1.0)
    try:
        return parse_feed(body, headers, feed=feed, url=url, language=language)
    except _ParseTimedOut:
        raise ParseError(f"parsing took longer than {time_limit:g} s (a feed this slow "
                         "to read is refused; see parse_timeout in monitor.toml)") from None
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def entry_content_hash(title: str, summary: str, content: str, url: str | None) -> str:
    """sha256 hex of the fields whose change makes a stored story "updated"."""
    digest = hashlib.sha256()
    for part in (title, summary, content, url or ""):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(b"%d:" % len(data))
        digest.update(data)
    return digest.hexdigest()


# --------------------------------------------------------------------------
# XML through feedparser
# --------------------------------------------------------------------------


def _parse_xml_feed(body: bytes, headers: dict[str, str], *, feed: str, base: str,
                    language: str | None) -> ParsedFeed:
    cleaned, root = strip_doctype_subsets(body)
    if root == "html":
        raise ParseError("HTML page, not a feed")
    _check_attribute_counts(cleaned)
    try:
        parsed = feedparser.parse(io.BytesIO(valid_char_references(cleaned)), response_headers=headers,
                                  sanitize_html=False, resolve_relative_uris=False)
    except Exception as error:  # its element handlers raise on some malformed input (a stray </media:player>)
        raise ParseError(f"not a feed: feedparser failed on it ({type(error).__name__}: {_short(error)})") from None
    channel = parsed["feed"]
    title = _detail_text(channel, "title", MAX_TITLE_CHARS)
    if not parsed["entries"] and not parsed.get("version") and not title:
        raise ParseError(_not_a_feed_reason(parsed, cleaned))
    feed_language = primary_language(channel.get("language")) or primary_language(language)
    entries = _unique_by_guid(
        _entry_from_feedparser(item, feed=feed, base=base, language=feed_language)
        for item in parsed["entries"]
    )
    warning = _short(parsed.get("bozo_exception")) if parsed.get("bozo") else None
    return ParsedFeed(title=title or None, link=_web_url(channel.get("link"), base),
                      language=feed_language, entries=entries, warning=warning)


def _entry_from_feedparser(item: Mapping[str, Any], *, feed: str, base: str,
                           language: str | None) -> Entry:
    title = _detail_text(item, "title", MAX_TITLE_CHARS)
    summary = _detail_text(item, "summary", MAX_TEXT_CHARS)
    content = max((_value_text(part, MAX_TEXT_CHARS) for part in dict.get(item, "content") or ()),
                  key=len, default="")
    published = _utc(dict.get(item, "published_parsed"))
    updated = _utc(dict.get(item, "updated_parsed"))
    names = [author.get("name") or author.get("email") for author in dict.get(item, "authors") or ()]
    if not any(names):
        names = [dict.get(item, "author")]
    return _make_entry(
        feed=feed, raw_id=dict.get(item, "id"), raw_link=_item_link(item), base=base,
        title=title, summary=summary, content=content,
        published=published or updated, updated=updated,
        authors=names, tags=[tag.get("term") or tag.get("label") for tag in dict.get(item, "tags") or ()],
        language=primary_language(dict.get(item, "language")) or language,
    )


def _item_link(item: Mapping[str, Any]) -> str | None:
    """The entry's link; a relative RSS guid that feedparser promoted to link is no link."""
    link = dict.get(item, "link")
    if dict.get(item, "links") or (link and _ABSOLUTE_WEB_URL.match(link.strip())):
        return link
    return None


def _detail_text(item: Mapping[str, Any], key: str, limit: int) -> str:
    """Plain text of feedparser's `<key>_detail` (HTML converted, plain folded)."""
    detail = dict.get(item, f"{key}_detail")
    if detail is None:
        return ""
    return _value_text(detail, limit)


def _value_text(detail: Mapping[str, Any], limit: int) -> str:
    value = detail.get("value") or ""
    if "html" in (detail.get("type") or ""):
        return _html_text(value, limit)
    return _plain_text(value, limit)


def _check_attribute_counts(body: bytes) -> None:
    """ParseError for an element with absurdly many attributes.

    The stdlib SAX attributes feedparser reads look each one up by a linear
    scan, so 50,000 attributes on one element take minutes of CPU.
    """
    for tag in _LONG_TAG.finditer(body):
        if tag.group(0).count(b"=") > MAX_ATTRIBUTES:
            raise ParseError(f"not a feed: an element with more than {MAX_ATTRIBUTES:,} attributes")


def _html_text(html: str, limit: int) -> str:
    return _capped(_without_bidi_controls(html_to_text(html[:MAX_SOURCE_CHARS])), limit)


def _plain_text(text: str, limit: int) -> str:
    return _capped(fold_whitespace(_without_bidi_controls(text[:MAX_SOURCE_CHARS])), limit)


def _without_bidi_controls(text: str) -> str:
    """Text without bidi embedding, override and isolate controls, DEL and C1 controls.

    An unterminated right-to-left override in a headline would reverse the
    rest of an alert's subject line (the outlet's name included) and can
    disguise words; the marks (LRM, RLM, ALM) that only nudge direction stay.
    DEL and C1 controls (U+0080-U+009F, 8-bit CSI and OSC) mean nothing in
    text and could drive a terminal that shows it.
    """
    if not _BIDI_CONTROLS.search(text):
        return text
    return fold_whitespace(_BIDI_CONTROLS.sub("", text))


def _utc(parsed: time.struct_time | None) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime; None if unusable."""
    if parsed is None:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _not_a_feed_reason(parsed: Mapping[str, Any], body: bytes) -> str:
    if _HTML_ELEMENT.search(body, 0, 65536):
        return "HTML page, not a feed"
    problem = _short(parsed.get("bozo_exception")) if parsed.get("bozo") else None
    return f"not a feed: {problem or 'no RSS, RDF or Atom elements'}"


# --------------------------------------------------------------------------
# JSON Feed 1.0 / 1.1
# --------------------------------------------------------------------------


def _parse_json_feed(body: bytes, headers: Mapping[str, str], *, feed: str, base: str,
                     language: str | None) -> ParsedFeed:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, bad encoding, huge ints
        raise ParseError(f"not a feed: invalid JSON ({_short(error)})") from None
    if not isinstance(document, dict):
        raise ParseError("not a feed: JSON document is not an object")
    declared = "jsonfeed.org" in _string(document.get("version"))
    if not declared and "feed+json" not in headers.get("content-type", ""):
        raise ParseError("not a feed: JSON document without a jsonfeed.org version (an error page?)")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError("not a feed: JSON Feed without an 'items' list")
    feed_language = primary_language(_string(document.get("language"))) or primary_language(language)
    entries = _unique_by_guid(
        _entry_from_json(item, feed=feed, base=base, language=feed_language)
        for item in items if isinstance(item, dict)
    )
    title = _plain_text(_string(document.get("title")), MAX_TITLE_CHARS)
    return ParsedFeed(title=title or None, link=_web_url(_string(document.get("home_page_url")), base),
                      language=feed_language, entries=entries)


def _entry_from_json(item: Mapping[str, Any], *, feed: str, base: str,
                     language: str | None) -> Entry:
    tags = item.get("tags")
    html_content = _html_text(_string(item.get("content_html")), MAX_TEXT_CHARS)
    plain_content = _plain_text(_string(item.get("content_text")), MAX_TEXT_CHARS)
    authors = item.get("authors")
    if not isinstance(authors, list):
        authors = [item.get("author")]
    updated = _iso_datetime(item.get("date_modified"))
    return _make_entry(
        feed=feed, raw_id=_json_id(item.get("id")),
        raw_link=_string(item.get("url")) or _string(item.get("external_url")), base=base,
        title=_plain_text(_string(item.get("title")), MAX_TITLE_CHARS),
        summary=_plain_text(_string(item.get("summary")), MAX_TEXT_CHARS),
        content=max(html_content, plain_content, key=len),
        published=_iso_datetime(item.get("date_published")) or updated, updated=updated,
        authors=[_string(a.get("name")) or _string(a.get("url")) for a in authors if isinstance(a, dict)],
        tags=[_string(tag) for tag in tags] if isinstance(tags, list) else (),
        language=primary_language(_string(item.get("language"))) or language,
    )


def _json_id(value: object) -> str | None:
    """A JSON Feed id: a string, or the number some generators put there."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)


def _string(value: object) -> str:
    """`value` if it is a string (lone surrogates from JSON escapes replaced), else ''."""
    if not isinstance(value, str):
        return ""
    if value.isascii():
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


def _iso_datetime(value: object) -> datetime | None:
    """An RFC 3339 date as aware UTC; a date without offset is taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


# --------------------------------------------------------------------------
# shared normalisation
# --------------------------------------------------------------------------


def _make_entry(*, feed: str, raw_id: str | None, raw_link: str | None, base: str,
                title: str, summary: str, content: str,
                published: datetime | None, updated: datetime | None,
                authors: Iterable[str | None], tags: Iterable[str | None],
                language: str | None) -> Entry:
    url = _web_url(raw_link, base)
    if repeats_summary(summary, content):
        content = ""
    return Entry(
        feed=feed,
        guid=_guid(raw_id, url or _URL_CONTROLS.sub("", (raw_link or "").strip()), title, published),
        url=url, title=title, summary=summary, content=content,
        published=published, updated=updated,
        authors=_names(authors), tags=_names(tags), language=language,
        content_hash=entry_content_hash(title, summary, content, url),
    )


def _guid(raw_id: str | None, link: str, title: str, published: datetime | None) -> str:
    guid = (raw_id or "").strip() or link
    if not guid:
        stamp = published.isoformat() if published else ""
        guid = "sha256:" + hashlib.sha256(f"{title}\n{stamp}".encode("utf-8", "replace")).hexdigest()
    elif len(guid) > MAX_GUID_CHARS:
        guid = "sha256:" + hashlib.sha256(guid.encode("utf-8", "replace")).hexdigest()
    return guid


def _web_url(link: str | None, base: str) -> str | None:
    """Canonical absolute http(s) URL of `link`, resolved against `base`; else None."""
    link = (link or "").strip()
    if not link or _URL_CONTROLS.search(link):
        return None  # a link with control characters (ESC, BEL, C1) is no link to keep
    if not _ABSOLUTE_WEB_URL.match(link):
        try:
            link = urljoin(base, link)
        except ValueError:
            return None
        if not _ABSOLUTE_WEB_URL.match(link):
            return None
    return canonical_url(link)


def _names(values: Iterable[str | None]) -> tuple[str, ...]:
    """Distinct, folded, length-capped names in their original order."""
    seen: dict[str, None] = {}
    for value in values:
        name = _plain_text(value, MAX_NAME_CHARS) if isinstance(value, str) else ""
        if name:
            seen.setdefault(name, None)
        if len(seen) >= MAX_NAMES:
            break
    return tuple(seen)


def _unique_by_guid(entries: Iterable[Entry]) -> list[Entry]:
    """Entries with the first occurrence of each guid only."""
    unique: dict[str, Entry] = {}
    for entry in entries:
        unique.setdefault(entry.guid, entry)
    return list(unique.values())


def _capped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(problem: object) -> str | None:
    if problem is None:
        return None
    text = fold_whitespace(str(problem)) or type(problem).__name__
    return _capped(text, MAX_WARNING_CHARS)
