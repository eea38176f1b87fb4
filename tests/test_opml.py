"""OPML: exports of real readers read exactly, bad outlines reported, hostile files refused, round trips."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.edit.opml import OpmlError, OpmlFeed, export_opml, parse_opml
from monitor.models import FeedConfig

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "opml"


def parse_fixture(name: str):
    return parse_opml((FIXTURES / name).read_bytes(), name)


def test_miniflux_export_categories_become_tags_and_namespaced_settings_are_ignored():
    result = parse_fixture("miniflux.opml")
    assert result.feeds == [
        OpmlFeed("Hacker News", "https://news.ycombinator.com/rss", ("All",)),
        OpmlFeed("Kyiv Independent", "https://kyivindependent.com/rss/", ("Ukraine",)),
        OpmlFeed("Українська правда", "https://www.pravda.com.ua/rss/view_news/", ("Ukraine",)),
    ]
    assert result.invalid == []


def test_freshrss_export_reads_text_names_and_reports_a_scraping_source():
    result = parse_fixture("freshrss.opml")
    assert result.feeds == [
        OpmlFeed("FreshRSS releases", "https://github.com/FreshRSS/FreshRSS/releases.atom",
                 ("Uncategorized",)),
        OpmlFeed("SCMP China", "https://www.scmp.com/rss/4/feed", ("China watch",)),
    ]
    assert result.invalid == [
        "line 13: 'Example scraped page': a web-scraping source (type 'HTML+XPath'), not a feed"]


def test_feedly_export_merges_a_feed_listed_in_two_folders():
    result = parse_fixture("feedly.opml")
    assert result.feeds == [
        OpmlFeed("Ars Technica", "https://feeds.arstechnica.com/arstechnica/index", ("Tech", "Asia")),
        OpmlFeed("The Verge", "https://www.theverge.com/rss/index.xml", ("Tech",)),
        OpmlFeed("The Diplomat", "https://thediplomat.com/feed/", ("Asia",)),
    ]
    assert result.invalid == []


def test_bad_outlines_are_reported_with_line_and_title_and_the_rest_still_read():
    result = parse_fixture("bad_outline.opml")
    assert result.feeds == [
        OpmlFeed("Good one", "https://good.example/feed.xml", ("Tech", "News", "Ukraine"), "uk-ua"),
        OpmlFeed("Blog", "https://one.example/blog.rss"),
        OpmlFeed("Blog-2", "https://two.example/blog.rss"),
        OpmlFeed(None, "https://untitled.example/rss"),
    ]
    assert [problem.split(":", 2)[:2] for problem in result.invalid] == [
        ["line 8", " 'FTP feed'"], ["line 9", " 'Empty address'"],
        ["line 10", " 'No address at all'"], ["line 11", " 'Relative'"]]
    assert "unsupported scheme 'ftp'" in result.invalid[0]
    assert "no xmlUrl" in result.invalid[2]
    assert "has no scheme" in result.invalid[3]


def test_nested_folders_give_a_tag_per_level():
    data = b"""<opml version="2.0"><body>
      <outline title="News"><outline text="World">
        <outline text="Deep" xmlUrl="https://deep.example/rss" category="World,Extra"/>
      </outline></outline></body></opml>"""
    assert parse_opml(data, "nested.opml").feeds == [
        OpmlFeed("Deep", "https://deep.example/rss", ("News", "World", "Extra"))]


def test_entity_bomb_is_refused_quickly_before_expansion():
    started = time.monotonic()
    with pytest.raises(OpmlError, match=r"entity_bomb.opml:2: refusing a file with a <!DOCTYPE>"):
        parse_fixture("entity_bomb.opml")
    assert time.monotonic() - started < 1


def test_doctype_is_refused_whatever_the_encoding():
    text = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE opml SYSTEM "file:///etc/passwd">\n' \
           '<opml version="2.0"><body/></opml>'
    with pytest.raises(OpmlError, match="DOCTYPE"):
        parse_opml(text.encode("utf-16"), "utf16.opml")


@pytest.mark.parametrize("data, message", [
    (b"", "not an OPML file: invalid XML"),
    (b"<html><body>a page</body></html>", "the root element is <html>, not <opml>"),
    (b'<?xml version="1.0"?>\n<opml version="2.0"><head/></opml>', "it has no <body>"),
    (b'<opml version="2.0">\n<body><outline text="x"></body></opml>', ":2: not an OPML file: invalid XML"),
    (b'<rss version="2.0"><channel/></rss>', "the root element is <rss>"),
])
def test_a_file_that_is_not_opml_is_one_clear_error(data, message):
    with pytest.raises(OpmlError, match=message) as raised:
        parse_opml(data, "list.opml")
    assert str(raised.value).startswith("list.opml")
    assert raised.value.exit_code == 2


def test_export_is_opml_2_with_a_folder_per_first_tag_and_every_tag_in_category():
    feeds = [
        FeedConfig("Kyiv Independent", "https://kyivindependent.com/rss/", 600, "en", ("ukraine", "war")),
        FeedConfig("Loose", "https://loose.example/rss", 600),
        FeedConfig("Pravda", "https://www.pravda.com.ua/rss/", 600, None, ("ukraine",)),
    ]
    data = export_opml(feeds, "My feeds", now=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    text = data.decode("utf-8")
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>\n<opml version=\"2.0\">")
    assert "<dateCreated>Thu, 02 Jan 2025 03:04:05 GMT</dateCreated>" in text
    assert "<title>My feeds</title>" in text
    assert text.count('<outline text="ukraine" title="ukraine">') == 1
    assert ('<outline type="rss" text="Kyiv Independent" title="Kyiv Independent" '
            'xmlUrl="https://kyivindependent.com/rss/" category="ukraine,war" language="en" />') in text
    assert parse_opml(data, "export.opml").feeds == [  # grouped by folder
        OpmlFeed("Kyiv Independent", "https://kyivindependent.com/rss/", ("ukraine", "war"), "en"),
        OpmlFeed("Pravda", "https://www.pravda.com.ua/rss/", ("ukraine",)),
        OpmlFeed("Loose", "https://loose.example/rss"),
    ]


_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30)
_word = _text.map(lambda text: " ".join(text.split())).filter(lambda text: text and text.isprintable())
_tag = _word.filter(lambda tag: "," not in tag and "/" not in tag)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_word, st.lists(_tag, max_size=3, unique=True)), max_size=6,
                unique_by=lambda pair: pair[0].casefold()))
def test_export_then_parse_gives_the_same_feeds(pairs):
    feeds = [FeedConfig(name, f"https://feed{number}.example/rss?x=1&y=<2>", 600, None, tuple(tags))
             for number, (name, tags) in enumerate(pairs)]
    parsed = parse_opml(export_opml(feeds, "round & trip <test>"), "round.opml")
    assert parsed.invalid == []
    assert sorted(parsed.feeds, key=lambda feed: feed.url) == sorted(
        (OpmlFeed(feed.name, feed.url, feed.tags) for feed in feeds), key=lambda feed: feed.url)
