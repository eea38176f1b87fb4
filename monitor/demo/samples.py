"""The demo's sample feeds: made-up stories shipped as TOML, served as RSS.

The stories are stored with an age ("2h") rather than a date, so that every
run of the demo starts with a backlog of which some stories are recent
enough to alert on the first poll and some are not. One story per feed set
may be marked `midway`: it is held back and published during the demo.
"""

from __future__ import annotations

import email.utils
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from xml.sax.saxutils import escape

from monitor.config.durations import parse_duration

FEEDS_PACKAGE = "monitor.demo"
FEEDS_FOLDER = "feeds"


@dataclass(frozen=True)
class SampleStory:
    id: str
    title: str
    summary: str
    on_topic: bool  # the shipped watch should flag it
    age: float | None = None  # seconds before the demo starts; None for the midway story
    midway: bool = False  # held back, then added while the demo runs


@dataclass(frozen=True)
class SampleFeed:
    slug: str  # the file name without .toml; the feed is served at /<slug>.xml
    title: str
    language: str
    stories: tuple[SampleStory, ...]

    @property
    def backlog(self) -> tuple[SampleStory, ...]:
        """The stories the feed carries from the start."""
        return tuple(story for story in self.stories if not story.midway)

    @property
    def held_back(self) -> tuple[SampleStory, ...]:
        return tuple(story for story in self.stories if story.midway)


@dataclass(frozen=True)
class Published:
    """A story as the feed server carries it: with a real date and link."""

    story: SampleStory
    published: datetime


def load_samples() -> list[SampleFeed]:
    """Every sample feed shipped in monitor/demo/feeds/, in the order of their `position`."""
    folder = resources.files(FEEDS_PACKAGE) / FEEDS_FOLDER
    files = [item for item in folder.iterdir() if item.name.endswith(".toml")]
    data = {item.name.removesuffix(".toml"): tomllib.loads(item.read_text(encoding="utf-8"))
            for item in files}
    return [_feed(slug, data[slug]) for slug in sorted(data, key=lambda slug: data[slug]["position"])]


def _feed(slug: str, data: dict) -> SampleFeed:
    stories = tuple(
        SampleStory(id=story["id"], title=story["title"], summary=story["summary"],
                    on_topic=story["on_topic"], midway=story.get("midway", False),
                    age=parse_duration(story["age"]) if "age" in story else None)
        for story in data["story"])
    return SampleFeed(slug=slug, title=data["title"], language=data["language"], stories=stories)


def backlog_at(feed: SampleFeed, now: datetime) -> list[Published]:
    """The feed's backlog dated relative to NOW."""
    return [Published(story, now - timedelta(seconds=story.age or 0)) for story in feed.backlog]


def story_path(feed: SampleFeed, story: SampleStory) -> str:
    return f"/{feed.slug}/{story.id}"


def render_rss(feed: SampleFeed, items: list[Published], base_url: str) -> bytes:
    """An RSS 2.0 document of ITEMS, newest first, linking to pages on BASE_URL."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(feed.title)}</title><link>{escape(base_url)}/</link>",
        f"<description>Sample feed of monitor demo</description><language>{feed.language}</language>",
    ]
    for item in sorted(items, key=lambda item: item.published, reverse=True):
        link = base_url + story_path(feed, item.story)
        parts += [
            "<item>",
            f'<guid isPermaLink="false">{escape(feed.slug)}/{escape(item.story.id)}</guid>',
            f"<title>{escape(item.story.title)}</title>",
            f"<link>{escape(link)}</link>",
            f"<description>{escape(item.story.summary)}</description>",
            f"<pubDate>{email.utils.format_datetime(item.published)}</pubDate>",
            "</item>",
        ]
    parts.append("</channel></rss>")
    return "\n".join(parts).encode("utf-8")


def render_page(feed: SampleFeed, story: SampleStory) -> bytes:
    """The story's own page, so that links in the alerts open while the demo runs."""
    return (f'<!doctype html><html lang="{feed.language}"><meta charset="utf-8">'
            f"<title>{escape(story.title)}</title><h1>{escape(story.title)}</h1>"
            f"<p>{escape(story.summary)}</p><p><i>{escape(feed.title)}: a sample story of "
            f"<code>monitor demo</code>.</i></p></html>").encode()
