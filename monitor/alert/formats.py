"""Cleaning and escaping feed text for each message format: plain text, HTML and Markdown.

Everything an alert shows comes from a feed, so none of it is trusted. These
helpers are apart from the message layouts (monitor.alert.render,
monitor.alert.notices) so that the one place that decides what is safe to
show in each format can be read and tested alone; see render's docstring for
the rules.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from monitor.urls import strip_userinfo

HTML_FONT = "font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.4;color:#222222"
_HIT = re.compile(r"\[\[(.+?)\]\]")
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]()#+\-.!|<>~{}=]|&(?=#?[0-9A-Za-z]{1,32};)")
_URL_UNSAFE = frozenset(" \"'<>\\^`{|}()")


class _CharMap(dict[int, "str | None"]):
    """A str.translate table filled per character on first sight: tabulating
    the whole Unicode database up front would cost a second at import."""

    def __init__(self, rule: Callable[[str], str | None]) -> None:
        super().__init__()
        self._rule = rule

    def __missing__(self, codepoint: int) -> str | None:
        value = self._rule(chr(codepoint))
        self[codepoint] = value
        return value


def _is_hidden(char: str) -> bool:
    """Controls, invisible format characters (bidi overrides, zero-width) and lone surrogates."""
    return unicodedata.category(char) in ("Cc", "Cf", "Cs")


_TEXT_CHARS = _CharMap(lambda c: " " if c.isspace() else None if _is_hidden(c) else c)
_URL_HIDDEN = _CharMap(lambda c: None if _is_hidden(c) else c)
_URL_ENCODE = _CharMap(lambda c: quote(c, safe="") if c.isspace() or c in _URL_UNSAFE else c)


def clean(value: str) -> str:
    """One line of visible text: hidden characters removed, whitespace runs folded."""
    return " ".join(value.translate(_TEXT_CHARS).split())


def truncate(text: str, limit: int) -> str:
    """TEXT cut to LIMIT characters, at a space when one is not too far back."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def escape_markdown(text: str) -> str:
    """TEXT that renders literally in Markdown and cannot mention @everyone."""
    escaped = _MARKDOWN_SPECIAL.sub(lambda found: "\\" + found.group(), text)
    return escaped.replace("@", "@\u200b")


def escape_html(text: str) -> str:
    return html.escape(text, quote=True)


def _plain(text: str) -> str:
    return text


@dataclass(frozen=True)
class Link:
    """A story's link: the web form (http/https, safe to make clickable) or inert text."""

    web: str | None
    shown: str  # what to show when it is not a web link

    @classmethod
    def of(cls, url: str | None) -> Link:
        raw = (url or "").translate(_URL_HIDDEN).strip()
        encoded = raw.translate(_URL_ENCODE)
        try:
            parts = urlsplit(encoded)
            is_web = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:  # e.g. a broken IPv6 literal
            is_web = False
        return cls(web=strip_userinfo(encoded) if is_web else None, shown=clean(raw))


@dataclass(frozen=True)
class Format:
    """How one message format escapes, highlights and links."""

    escape: Callable[[str], str]
    highlight: Callable[[str], str]  # wraps an already escaped hit
    href: Callable[[str], str]  # a web URL made ready for a link target
    anchor: Callable[[str], str]  # a web URL made ready to show as a link
    inert_urls: bool  # True: a URL that is not http(s) is no link target

    def url(self, link: Link) -> str:
        if link.web is not None:
            return self.href(link.web)
        return "" if self.inert_urls else link.shown

    def link(self, link: Link) -> str:
        return self.anchor(link.web) if link.web is not None else self.escape(link.shown)


def _html_anchor(url: str) -> str:
    escaped = escape_html(url)
    return f'<a href="{escaped}" style="color:#1a0dab">{escaped}</a>'


TEXT = Format(escape=_plain, highlight=lambda hit: f"[[{hit}]]", href=_plain, anchor=_plain,
              inert_urls=False)
HTML = Format(escape=escape_html,
              highlight=lambda hit: f'<b style="background-color:#fff2a8">{hit}</b>',
              href=escape_html, anchor=_html_anchor, inert_urls=True)
MARKDOWN = Format(escape=escape_markdown, highlight=lambda hit: f"**{hit}**", href=_plain,
                  anchor=lambda url: f"<{url}>", inert_urls=True)
BODY_FORMATS = {"text": TEXT, "html": HTML, "markdown": MARKDOWN}


def highlight(snippet: str, form: Format) -> str:
    """The snippet escaped for FORM, its [[hits]] highlighted."""
    pieces = _HIT.split(clean(snippet))  # even indexes: between hits; odd: hits
    return "".join(form.highlight(form.escape(piece)) if index % 2 else form.escape(piece)
                   for index, piece in enumerate(pieces) if piece)


def joined(names: Sequence[str]) -> str:
    return ", ".join(name for name in (clean(n) for n in names) if name)


def when(moment: datetime | None, tz: str) -> str:
    if moment is None:
        return "unknown"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")
