"""OPML in and out: subscription lists from other feed readers, and ours for them.

Reading is done with expat, the parser under ElementTree, driven directly
for two reasons: every outline's line number is known, so a bad one can be
reported where it is; and a DOCTYPE is refused the moment the parser meets
it. OPML never needs a DOCTYPE, and it is how entity-expansion bombs and
external entities get into an XML file. Readers differ in how they write
categories, and all of these become tags:

* Miniflux, Feedly, FreshRSS: a folder outline (no xmlUrl, with children)
  per category, `<outline text="Tech">...</outline>`; nested folders give one
  tag per level.
* The OPML 2.0 `category` attribute: comma-separated, slash-delimited
  ("/Tech/News,Ukraine" -> Tech, News, Ukraine).

Namespaced attributes (FreshRSS `frss:`, Miniflux `miniflux:`) are ignored;
FreshRSS web-scraping sources (type HTML+XPath, JSON+DotNotation...) are
not feeds and are reported as invalid. A feed listed under several folders
(Feedly does this) is one feed with every folder as a tag. A reader's default
category (Miniflux "All", FreshRSS "Uncategorized") is a folder name like any
other and becomes a tag too: the word differs by reader and by language.
A feed's name is its outline's `text` (else `title`); when two different
feeds share one, the later gets "-2", "-3".

Writing (`export_opml`): OPML 2.0 where each feed sits in a folder named by
its first tag, so that folder-only readers keep the grouping, and carries
every tag in `category`, so that nothing is lost on a round trip. A tag
containing ',' or '/' cannot be written in `category` (those characters are
its separators) and survives only as a folder name.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.parsers import expat

from monitor.config.load import MAX_NAME_LENGTH, check_feed_url, check_language, redact
from monitor.edit.feeds import feed_url_key, unique_name
from monitor.errors import UsageError
from monitor.models import FeedConfig

SCRAPER_TYPE_MARKERS = ("xpath", "dotnotation")  # FreshRSS source types that scrape pages
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SHOWN_LABEL_CHARS = 80


@dataclass(frozen=True)
class OpmlFeed:
    """One feed outline: name from its text/title (None when it has neither), tags from its folders."""

    name: str | None
    url: str
    tags: tuple[str, ...] = ()
    language: str | None = None


@dataclass
class OpmlResult:
    feeds: list[OpmlFeed] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # "line 12: 'Title': why", one per bad outline


class OpmlError(UsageError):
    """The file as a whole is not OPML (not XML, wrong root, no body, a DOCTYPE)."""


def parse_opml(data: bytes, source: str) -> OpmlResult:
    """The feeds of an OPML file; a bad outline is listed in `invalid`, a bad file raises OpmlError.

    SOURCE names the file in messages.
    """
    parser = expat.ParserCreate()
    reader = _OutlineReader(source, parser)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = reader.refuse_doctype
    parser.EntityDeclHandler = reader.refuse_entity
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        raise OpmlError(f"{source}:{error.lineno}: not an OPML file: invalid XML "
                        f"({expat.ErrorString(error.code)})") from None
    return reader.result()


def export_opml(feeds: Sequence[FeedConfig], title: str, *, now: datetime | None = None) -> bytes:
    """OPML 2.0 (UTF-8) listing FEEDS: a folder per first tag, every tag in `category`."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = _xml_safe(title)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(created, usegmt=True)
    body = ElementTree.SubElement(root, "body")
    folders: dict[str, ElementTree.Element] = {}
    for feed in feeds:
        parent = body
        if feed.tags:
            folder = _xml_safe(feed.tags[0])
            if folder not in folders:
                folders[folder] = ElementTree.SubElement(body, "outline", text=folder, title=folder)
            parent = folders[folder]
        ElementTree.SubElement(parent, "outline", _feed_attributes(feed))
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _feed_attributes(feed: FeedConfig) -> dict[str, str]:
    name = _xml_safe(feed.name)
    attributes = {"type": "rss", "text": name, "title": name, "xmlUrl": _xml_safe(feed.url)}
    categories = [_xml_safe(tag) for tag in feed.tags if not {",", "/"} & set(tag)]
    if categories:
        attributes["category"] = ",".join(categories)
    if feed.language:
        attributes["language"] = feed.language
    return attributes


def _xml_safe(text: str) -> str:
    """TEXT without the characters XML 1.0 cannot carry (most control characters)."""
    return _XML_INVALID.sub("", text)


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------


@dataclass
class _Frame:
    """An open element: what it is, and for outlines what is needed when it closes."""

    kind: str  # opml, body, folder, feed, other
    line: int = 0
    label: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    has_outlines: bool = False


class _OutlineReader:
    """expat callbacks: turns outlines into feeds and problems as the file streams by."""

    def __init__(self, source: str, parser: expat.XMLParserType) -> None:
        self.source = source
        self.parser = parser
        self.stack: list[_Frame] = []
        self.seen_root = False
        self.seen_body = False
        self.feeds: dict[str, OpmlFeed] = {}  # URL key -> feed, in file order
        self.invalid: list[str] = []

    def refuse_doctype(self, name: str, *_: object) -> None:
        where = f"{self.source}:{self.parser.CurrentLineNumber}"
        if name.lower() != "opml":
            raise OpmlError(f"{where}: not an OPML file: it declares <!DOCTYPE {name}>")
        raise OpmlError(f"{where}: refusing a file with a <!DOCTYPE> declaration: OPML needs none, "
                        "and it can hide entity bombs")

    def refuse_entity(self, *_: object) -> None:
        raise OpmlError(f"{self.source}:{self.parser.CurrentLineNumber}: refusing a file with an "
                        "<!ENTITY> declaration")

    def start(self, tag: str, raw_attributes: dict[str, str]) -> None:
        line = self.parser.CurrentLineNumber
        name = tag.lower()
        if not self.seen_root:
            if name != "opml":
                raise OpmlError(f"{self.source}:{line}: not an OPML file: the root element is "
                                f"<{tag}>, not <opml>")
            self.seen_root = True
            self.stack.append(_Frame("opml", line))
            return
        parent = self.stack[-1]
        if name == "body" and parent.kind == "opml":
            self.seen_body = True
            self.stack.append(_Frame("body", line))
        elif name == "outline" and parent.kind in ("body", "folder", "feed"):
            parent.has_outlines = True
            attributes = {key.lower(): value for key, value in raw_attributes.items() if ":" not in key}
            kind = "feed" if "xmlurl" in attributes else "folder"
            frame = _Frame(kind, line, _label(attributes), attributes)
            if kind == "feed":
                self._feed(frame)
            self.stack.append(frame)
        else:
            self.stack.append(_Frame("other", line))

    def end(self, _tag: str) -> None:
        frame = self.stack.pop()
        if frame.kind == "folder" and not frame.has_outlines and _looks_like_feed(frame.attributes):
            self._invalid(frame, "no xmlUrl (the feed's address)")

    def result(self) -> OpmlResult:
        if not self.seen_body:
            raise OpmlError(f"{self.source}: not an OPML file: it has no <body>")
        return OpmlResult(feeds=list(self.feeds.values()), invalid=self.invalid)

    def _folders(self) -> list[str]:
        return [frame.label for frame in self.stack if frame.kind == "folder" and frame.label]

    def _feed(self, frame: _Frame) -> None:
        url = frame.attributes["xmlurl"].strip()
        source_type = frame.attributes.get("type", "")
        if any(marker in source_type.lower() for marker in SCRAPER_TYPE_MARKERS):
            self._invalid(frame, f"a web-scraping source (type {source_type!r}), not a feed")
            return
        problem = "empty xmlUrl" if not url else check_feed_url(url)
        if problem:
            self._invalid(frame, problem)
            return
        tags = _unique([*self._folders(), *_category_tags(frame.attributes.get("category", ""))])
        language = frame.attributes.get("language", "").strip()
        feed = OpmlFeed(name=frame.label, url=url, tags=tuple(tags),
                        language=language.lower() if language and not check_language(language) else None)
        key = feed_url_key(url)
        earlier = self.feeds.get(key)
        if earlier is not None:
            self.feeds[key] = replace(earlier, tags=tuple(_unique([*earlier.tags, *feed.tags])))
            return
        if feed.name is not None:
            taken = {other.name.casefold() for other in self.feeds.values() if other.name}
            feed = replace(feed, name=unique_name(feed.name, taken))
        self.feeds[key] = feed

    def _invalid(self, frame: _Frame, problem: str) -> None:
        shown = frame.label or redact(frame.attributes.get("xmlurl", "").strip()) or "(untitled outline)"
        if len(shown) > _SHOWN_LABEL_CHARS:
            shown = shown[:_SHOWN_LABEL_CHARS - 1] + "…"
        self.invalid.append(f"line {frame.line}: {shown!r}: {problem}")


def _label(attributes: dict[str, str]) -> str | None:
    """An outline's display name: `text` (required by OPML), else `title`; cleaned, or None."""
    for key in ("text", "title"):
        text = "".join(char for char in " ".join(attributes.get(key, "").split()) if char.isprintable())
        if text:
            return text[:MAX_NAME_LENGTH].strip()
    return None


def _looks_like_feed(attributes: dict[str, str]) -> bool:
    """A leaf outline meant as a subscription (a type or a site link) but missing its feed URL."""
    return bool(attributes.get("type", "").strip() or attributes.get("htmlurl", "").strip())


def _category_tags(category: str) -> list[str]:
    """OPML 2.0 `category`: comma-separated, slash-delimited paths; each path step is a tag."""
    return [" ".join(step.split()) for path in category.split(",") for step in path.split("/")
            if step.strip()]


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))
