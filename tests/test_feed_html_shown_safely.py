"""feedparser's HTML sanitiser and relative-URI resolution are off (monitor.ingest.parse keeps plain
text only), so what stops feed markup is the text conversion and the escaping where text is
shown. A hostile feed, parsed as the pipeline parses it, then shown in an HTML alert."""

from __future__ import annotations

from monitor.alert.render import render_alert
from monitor.ingest.parse import parse_feed
from test_alert_render import ParsedHtml, story

HOSTILE_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>Hostile &lt;b onmouseover=alert(0)&gt;outlet</title><link>https://hostile.example/</link>
<item><guid>h1</guid><link>/story/1</link>
<title>&lt;script&gt;alert(1)&lt;/script&gt; Drones hit Kyiv</title>
<description>&lt;img src=x onerror=alert(2)&gt;&lt;script&gt;steal()&lt;/script&gt;&lt;p&gt;Drones hit
&lt;a href="javascript:alert(3)"&gt;Kyiv&lt;/a&gt;&lt;/p&gt;&lt;style&gt;body{}&lt;/style&gt;</description>
<content:encoded><![CDATA[<iframe src="javascript:alert(4)"></iframe><p onclick="alert(5)">Full
<a href="/relative">story</a></p><svg onload=alert(6)></svg>]]></content:encoded>
</item></channel></rss>"""


def test_parsed_text_holds_no_markup_and_links_are_resolved_by_monitor():
    parsed = parse_feed(HOSTILE_FEED, {}, feed="hostile", url="https://hostile.example/rss")
    entry = parsed.entries[0]
    for text in (entry.summary, entry.content):
        assert "<" not in text and "onerror" not in text and "onclick" not in text, text
        assert "steal()" not in text and "alert(" not in text, text
    assert "Drones hit" in entry.summary and "Kyiv" in entry.summary
    assert "Full" in entry.content and "story" in entry.content
    # a title is text: the feed's escaped markup is kept literally, to be escaped where shown
    assert entry.title == "<script>alert(1)</script> Drones hit Kyiv"
    assert entry.url == "https://hostile.example/story/1"  # resolved by monitor, not feedparser


def test_an_html_alert_shows_the_parsed_story_as_text():
    parsed = parse_feed(HOSTILE_FEED, {}, feed="hostile", url="https://hostile.example/rss")
    entry = parsed.entries[0]
    view = story(title=entry.title, snippet=entry.summary, feed=parsed.title or "hostile",
                 url=entry.url)
    html = ParsedHtml(render_alert(view, "UTC").html)
    assert not {"script", "img", "iframe", "svg", "style"} & set(html.tags)
    assert not [name for name, _ in html.attributes if name.startswith("on")]
    assert entry.title in html.text
    assert html.hrefs == ["https://hostile.example/story/1"]
