"""Build small feeds for tests, with the dates and guids a test needs."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape


@dataclass
class Item:
    guid: str
    title: str
    summary: str = ""
    published: datetime | None = None
    link: str | None = None


def rss(items: list[Item], *, title: str = "Test feed", language: str = "en") -> bytes:
    """An RSS 2.0 document with the given items, UTF-8."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>https://example.org/</link>",
        f"<description>{escape(title)}</description><language>{language}</language>",
    ]
    for item in items:
        parts.append("<item>")
        parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        parts.append(f"<title>{escape(item.title)}</title>")
        parts.append(f"<link>{escape(item.link or 'https://example.org/' + item.guid)}</link>")
        if item.summary:
            parts.append(f"<description>{escape(item.summary)}</description>")
        if item.published is not None:
            parts.append(f"<pubDate>{email.utils.format_datetime(item.published)}</pubDate>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode("utf-8")
