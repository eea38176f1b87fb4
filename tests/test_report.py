"""The report: known matches counted per local day, rule and outlet; the HTML page in Chromium."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from monitor.models import Entry, FeedConfig, Hit, Match
from monitor.read.report import build_report, render_html, render_text, report_rows
from monitor.read.search import mute
from monitor.store.database import Store

TZ = "Europe/Kyiv"  # UTC+2 in November
SINCE = datetime(2026, 11, 19, 22, 0, tzinfo=UTC)  # Kyiv 20 Nov 00:00
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HOSTILE_TITLE = 'Sanctions on Beijing banks <script>alert("x")</script>'


def _match(rule: str, score: float) -> Match:
    return Match(rule=rule, score=score, severity="warning", tags=(), hits=(Hit("title", 0, 5, "China"),),
                 snippet="[[China]]")


def _put(store: Store, feed: str, guid: str, title: str, url: str, at: datetime,
         *matches: Match) -> int:
    entry = Entry(feed=feed, guid=guid, url=url, title=title, content_hash=guid)
    store.save_poll(feed, [(entry, "new", True, list(matches))], at, {}, {}, keep=5)
    return store.db.execute("SELECT id FROM entries WHERE guid = ?", [guid]).fetchone()[0]


@pytest.fixture
def filled(tmp_path: Path):
    """Known matches: a story carried by two outlets, one recorded just after local
    midnight (the previous day in UTC), one muted, one before the period.
    Yields the store and the story IDs by guid."""
    opened = Store.open(tmp_path / "monitor.db")
    opened.sync_feeds([FeedConfig("alpha", "http://127.0.0.1:9/a", 600),
                       FeedConfig("beta", "http://127.0.0.1:9/b", 600)], SINCE)
    _put(opened, "alpha", "old", "Old drone story", "https://a.example/old",
         datetime(2026, 11, 10, tzinfo=UTC), _match("drones", 5))
    ids = {
        "a1": _put(opened, "alpha", "a1", "China sends drones", "https://a.example/drones",
                   datetime(2026, 11, 20, 10, 0, tzinfo=UTC), _match("drones", 6), _match("china", 3)),
        "b1": _put(opened, "beta", "b1", "China sends drones to Russia", "https://a.example/drones",
                   datetime(2026, 11, 20, 21, 30, tzinfo=UTC), _match("drones", 4)),
        "a2": _put(opened, "alpha", "a2", HOSTILE_TITLE, "javascript:alert(1)",
                   datetime(2026, 11, 20, 22, 30, tzinfo=UTC), _match("sanctions", 9)),
        "b2": _put(opened, "beta", "b2", "Oil deal", "https://b.example/oil",
                   datetime(2026, 11, 22, 8, 0, tzinfo=UTC), _match("sanctions", 3)),
    }
    mute(opened, ids["b2"], rule=None, reason="not about the war", now=NOW)
    yield opened, ids
    opened.close()


@pytest.fixture
def store(filled) -> Store:
    return filled[0]


def test_counts_per_local_day_rule_and_outlet(store):
    report = build_report(store, since=SINCE, now=NOW, tz=TZ)
    assert report.days == ("2026-11-20", "2026-11-21", "2026-11-22")
    assert report.by_day == {"2026-11-20": {"drones": 2, "china": 1},
                             "2026-11-21": {"sanctions": 1},  # 22:30 UTC is 00:30 in Kyiv
                             "2026-11-22": {}}  # the muted match is not counted
    assert (report.matches, report.stories, report.muted) == (4, 3, 1)
    assert report.rules == ("drones", "china", "sanctions")
    assert report.rule_matches == {"drones": 2, "china": 1, "sanctions": 1}
    assert report.rule_stories == {"drones": 2, "china": 1, "sanctions": 1}
    assert [(o.name, o.matches, o.stories, dict(o.rules)) for o in report.outlets] == [
        ("alpha", 3, 2, {"drones": 1, "china": 1, "sanctions": 1}), ("beta", 1, 1, {"drones": 1})]


def test_top_stories_join_copies_and_rank_by_outlets_then_score(filled):
    store, ids = filled
    top = build_report(store, since=SINCE, now=NOW, tz=TZ).top
    assert [(s.title, s.outlets, s.score, s.rules) for s in top] == [
        ("China sends drones", ("alpha", "beta"), 6, ("china", "drones")),
        (HOSTILE_TITLE, ("alpha",), 9, ("sanctions",)),
    ]
    assert top[0].ids == (ids["a1"], ids["b1"])
    assert len(build_report(store, since=SINCE, now=NOW, tz=TZ, top=1).top) == 1


def test_text_report(filled):
    store, ids = filled
    text = render_text(build_report(store, since=SINCE, now=NOW, tz=TZ))
    lines = text.splitlines()
    assert lines[0] == "Matches from 2026-11-20 00:00 to 2026-11-22 14:00 (Europe/Kyiv)"
    assert lines[1] == "3 stories matched (4 rule matches) from 2 outlets; 1 muted match not counted"
    split = [line.split() for line in lines]
    assert ["2026-11-20", "2", "3", "drones", "2,", "china", "1"] in split
    assert ["2026-11-21", "1", "1", "sanctions", "1"] in split
    assert ["2026-11-22", "0", "0"] in split
    assert ["drones", "2", "2"] in split
    assert ["alpha", "3", "2", "china", "1,", "drones", "1,", "sanctions", "1"] in split
    assert " 1. China sends drones" in lines
    assert "    score 6 · 2 outlets: alpha, beta · china, drones · story " \
           f"{ids['a1']}, {ids['b1']}" in lines


def test_json_rows(store):
    rows = list(report_rows(build_report(store, since=SINCE, now=NOW, tz=TZ)))
    assert rows[0] == {"kind": "summary", "since": "2026-11-19T22:00:00Z", "until": "2026-11-22T12:00:00Z",
                       "timezone": TZ, "matches": 4, "stories": 3, "outlets": 2, "muted": 1}
    assert [r for r in rows if r["kind"] == "day"][0] == {
        "kind": "day", "day": "2026-11-20", "stories": 2, "matches": 3, "rules": {"drones": 2, "china": 1}}
    assert [r["outlet"] for r in rows if r["kind"] == "outlet"] == ["alpha", "beta"]
    story = next(r for r in rows if r["kind"] == "story")
    assert story["rank"] == 1 and story["outlets"] == ["alpha", "beta"]


def test_an_empty_period_still_reports(store):
    report = build_report(store, since=NOW, now=NOW + timedelta(hours=1), tz=TZ)
    assert (report.matches, report.top, report.outlets) == (0, (), ())
    assert "0 stories matched (0 rule matches) from 0 outlets" in render_text(report)
    assert _SVG_IN_CHART.search(render_html(report))


class _Page(HTMLParser):
    """Tags, hrefs and anything that could load from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        if tag == "a" and attributes.get("href"):
            self.hrefs.append(attributes["href"])
        self.sources += [v for k, v in attrs if k in ("src", "srcset") or (tag == "link" and k == "href")]


_SVG_IN_CHART = re.compile(r'<div[^>]*\bid="chart"[^>]*>\s*<svg\b')


def _parse(markup: str) -> _Page:
    page = _Page()
    page.feed(markup)
    return page


def test_html_is_self_contained_and_escapes_feed_text(store):
    markup = render_html(build_report(store, since=SINCE, now=NOW, tz=TZ))
    page = _parse(markup)
    assert "script" not in page.tags and page.sources == []
    assert "Content-Security-Policy" in markup and "default-src 'none'" in markup
    assert "&lt;script&gt;" in markup
    assert page.hrefs == ["https://a.example/drones"]  # the javascript: link is no link
    assert _SVG_IN_CHART.search(markup)
    assert "drones" in markup and "sanctions" in markup  # the chart's series


# --------------------------------------------------------------------------
# the page in a real browser
# --------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,900", *args],
        capture_output=True, text=True, timeout=90)


def _png_pixels(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (still filtered) image data of a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, width, height, data = 8, 0, 0, b""
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        body = png[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            data += body
        position += 12 + length
    return width, height, zlib.decompress(data)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_html_report_renders_in_headless_chromium(store, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(store, since=SINCE, now=NOW, tz=TZ)), encoding="utf-8")
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), "Chromium wrote no screenshot"
    png = shot.read_bytes()
    width, height, pixels = _png_pixels(png)
    assert (width, height) == (1200, 900)
    assert len(png) > 20_000
    assert len(set(pixels)) > 64, "the screenshot is (nearly) blank"

    dom = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _SVG_IN_CHART.search(dom.stdout), "the chart's <svg> is not inside the chart element"
    assert "China sends drones" in dom.stdout and "script" not in _parse(dom.stdout).tags
