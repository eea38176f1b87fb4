"""parse_feed on real snapshots, made edge cases and hostile documents; URL clean-up."""

from __future__ import annotations

import random
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.ingest.parse import MAX_TEXT_CHARS, MAX_TITLE_CHARS, entry_content_hash, parse_feed
from monitor.models import Entry, ParsedFeed, ParseError
from monitor.urls import canonical_url, strip_userinfo
from support.feedserver import static

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
XML_TYPE = {"Content-Type": "application/xml"}


def parse_file(name: str, headers: dict[str, str] | None = None, *, url: str = "https://feeds.example.org/feed",
               language: str | None = None) -> ParsedFeed:
    body = (FEEDS / name).read_bytes()
    return parse_feed(body, XML_TYPE if headers is None else headers, feed="test", url=url, language=language)


def parse_rss(items: str, *, channel_extra: str = "", prolog: str = "", headers: dict[str, str] | None = None,
              url: str = "https://example.org/rss", language: str | None = None) -> ParsedFeed:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<rss version="2.0" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
            f"<title>Made</title><link>https://example.org/</link>{channel_extra}{items}</channel></rss>")
    return parse_feed(body.encode("utf-8"), RSS_TYPE if headers is None else headers,
                      feed="made", url=url, language=language)


def all_text(parsed: ParsedFeed) -> str:
    fields = [parsed.title or ""]
    for entry in parsed.entries:
        fields += [entry.title, entry.summary, entry.content, entry.url or "", entry.guid, *entry.authors]
    return "\n".join(fields)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --------------------------------------------------------------------------
# real snapshots
# --------------------------------------------------------------------------

REAL = [
    # file, entries, first title, first published (UTC), feed language
    ("other_feeder_rss_theguardian.xml", 54,
     "Saudi foreign minister defends role in securing Ukraine prisoner swaps", utc(2022, 9, 23, 10, 11, 21), "en"),
    ("other_rss-parser_guardian.rss", 55,
     "Trump State of the Union address promised unity but emphasized discord", utc(2018, 1, 31, 7, 26, 5), "en"),
    ("other_feeder_rdf_slashdot.xml", 15,
     "Ransomware Attack Hampers Prescription Drug Sales at 90% of US Pharmacies", utc(2024, 3, 2, 15, 34), "en"),
    ("other_rss-parser_heise.atom", 15,
     "Java-Anwendungsserver: Red Hat gibt WildFly 10 frei", utc(2016, 2, 1, 16, 22), None),
    ("other_rss-parser_feedburner.atom", 25,
     "AdWords and DFP Java client library will soon require Java 7+", utc(2016, 6, 3, 14, 38), None),
    ("other_rss-parser_reddit-atom.rss", 24, "The Difficulties in Space", utc(2016, 1, 23, 15, 40, 37), None),
    ("other_rss-parser_encoding.rss", 40,
     "Mãe de utente é a nova presidente da Raríssimas", utc(2018, 1, 3, 13, 47), "pt"),
    ("other_feeder_rss_ukrnet.xml", 19,  # 20 items, two share a link and have no guid
     "Торгівля між Росією та Китаєм у 2023 році перевищила 200 млрд доларів — New York Times",
     utc(2023, 12, 21, 23, 4, 55), None),
    ("other_feeder_rss_geekpark.xml", 30, "充电桩 2020：大火一年，它依然没赚到钱（！）",
     utc(2020, 12, 17, 14, 0, 9), None),
    ("other_feeder_rss_mediarss.xml", 20, "Камеди Клаб: «3 сентября»", utc(2022, 9, 3, 6, 37, 11), None),
    ("scmp_hknews-backend_rss2-feed.xml", 50,
     "Hong Kong protests: no plans for foreign exchange controls finance chief says amid online rumours "
     "of more curbs after anti-mask law", utc(2019, 10, 6, 8, 28, 27), "en"),
    ("other_feeder_golem-de.xml", 40, "Anheuser Busch: US-Brauerei bestellt 40 Tesla-Trucks vor",
     utc(2017, 12, 9, 14, 44), "de"),
    ("other_rss-parser_craigslist.rss", 25,
     "Bright, Spacious Beautiful Victorian (oakland north / temescal) $4300 3bd 1930ft2",
     utc(2017, 6, 21, 17, 33, 10), "en"),
]


@pytest.mark.parametrize("name, count, first_title, first_published, language", REAL,
                         ids=[row[0] for row in REAL])
def test_real_snapshot(name: str, count: int, first_title: str, first_published: datetime,
                       language: str | None) -> None:
    parsed = parse_file(name)
    assert len(parsed.entries) == count
    first = parsed.entries[0]
    assert first.title == first_title
    assert first.published == first_published
    assert first.published.tzinfo is UTC
    assert parsed.language == language
    assert len({entry.guid for entry in parsed.entries}) == count
    for entry in parsed.entries:
        assert entry.feed == "test"
        assert entry.url is None or entry.url.startswith(("http://", "https://"))
        assert "<" not in entry.title or "<" not in entry.summary.replace("< ", "")
        assert entry.content_hash == entry_content_hash(entry.title, entry.summary, entry.content, entry.url)


def test_language_falls_back_to_the_configured_one_only_when_the_feed_has_none() -> None:
    assert parse_file("other_feeder_rss_ukrnet.xml", language="uk").entries[0].language == "uk"
    assert parse_file("other_feeder_rss_ukrnet.xml").entries[0].language is None
    guardian = parse_file("other_rss-parser_guardian.rss", language="uk")  # <language>en-gb</language>
    assert guardian.language == "en"
    assert {entry.language for entry in guardian.entries} == {"en"}


def test_latin1_feed_decodes_accents() -> None:
    entry = parse_file("other_rss-parser_encoding.rss").entries[0]
    assert entry.title == "Mãe de utente é a nova presidente da Raríssimas"
    assert "Sónia Laygue" in entry.summary


def test_undeclared_windows1252_feed_decodes_with_a_warning() -> None:
    parsed = parse_file("other_rss-parser_uolNoticias.rss")
    assert parsed.entries[0].title == "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno"
    assert "windows-1252" in parsed.warning
    # "Seg, 24 Set 2018" is a Portuguese date feedparser cannot read: no date, no crash
    assert parsed.entries[0].published is None


def test_cyrillic_and_chinese_feeds_decode() -> None:
    ukrnet = parse_file("other_feeder_rss_ukrnet.xml").entries[0]
    assert "Китаєм" in ukrnet.title
    assert "Торгівля між РФ та КНР" in ukrnet.summary
    geekpark = parse_file("other_feeder_rss_geekpark.xml").entries[0]
    assert "新能源汽车" in geekpark.summary


def test_windows1251_feed_decodes_from_its_declaration() -> None:
    parsed = parse_file("made_windows1251.xml", {"Content-Type": "application/rss+xml"})
    assert parsed.title == "112 Украина — Новости"
    assert parsed.language == "ru"
    assert [entry.title for entry in parsed.entries] == [
        "Переговоры в Давосе: Киев ищет поддержку Китая",
        "Россия перебросила дополнительные войска к Авдеевке",
        "Погода: в Киеве ожидается снег и гололедица",
    ]
    assert "«Мы обсудили формулу мира», — сказал он." in parsed.entries[0].summary
    assert parsed.entries[0].published == utc(2024, 1, 16, 7, 10)
    assert parsed.entries[0].tags == ("Политика",)


def test_rdf_dc_date_becomes_published_and_tracking_is_dropped_from_the_url() -> None:
    entry = parse_file("other_feeder_rdf_slashdot.xml").entries[0]
    assert entry.updated == entry.published == utc(2024, 3, 2, 15, 34)
    assert entry.url == ("https://yro.slashdot.org/story/24/03/02/071229/"
                         "ransomware-attack-hampers-prescription-drug-sales-at-90-of-us-pharmacies")
    assert entry.authors == ("EditorDavid",)


def test_bozo_feed_with_entries_is_accepted_with_a_short_warning() -> None:
    parsed = parse_file("other_feeder_rss_theguardian.xml")
    assert len(parsed.entries) == 54
    assert "not well-formed" in parsed.warning
    assert len(parsed.warning) <= 200


# --------------------------------------------------------------------------
# made feeds
# --------------------------------------------------------------------------


def test_ghost_feed_like_the_kyiv_independent() -> None:
    parsed = parse_file("made_ghost_kyivindependent.xml", RSS_TYPE, url="https://kyivindependent.com/rss/",
                        language="en")
    assert parsed.title == "The Kyiv Independent"
    assert parsed.link == "https://kyivindependent.com/"
    assert parsed.language == "en"  # Ghost says none: the configured one
    assert parsed.warning is None
    assert len(parsed.entries) == 3
    envoy, kharkiv, latest = parsed.entries
    assert envoy.guid == "65a6539cf1e2d20001a4b7e1"
    assert envoy.url == "https://kyivindependent.com/chinas-envoy-arrives-in-kyiv/"
    assert envoy.title == "China's envoy arrives in Kyiv as Russia steps up strikes on energy grid"
    assert envoy.summary.startswith("Beijing's special representative for Eurasian affairs met")
    assert envoy.published == utc(2024, 1, 16, 9, 48, 31)
    assert envoy.authors == ("Olena Harmash",)
    assert envoy.tags == ("Ukraine", "China", "Diplomacy")
    assert envoy.language == "en"
    assert envoy.content.splitlines() == [
        "Beijing's special representative for Eurasian affairs, Li Hui, met Ukraine's foreign minister on Jan. 16.",
        "The talks focused on the Ukrainian peace formula & grain exports.",
        "Talks in Kyiv today.",
        "A post on X by the foreign ministry.",
        "Russia launched 40 drones overnight, the Air Force said.",
    ]
    assert "killing three civilians, Governor" in kharkiv.content  # &#x200B;&nbsp; folded away
    assert kharkiv.content.endswith("\nKupiansk\nVovchansk")
    assert latest.title == "Ukraine war latest: Zelensky in Davos & Swiss talks"
    assert latest.authors == ("The Kyiv Independent news desk", "Martin Fornusek")


def test_json_feed() -> None:
    parsed = parse_file("made_jsonfeed.json", {"Content-Type": "application/feed+json"},
                        url="https://monitor.example.org/feed.json")
    assert parsed.title == "Ukraine Monitor (JSON Feed)"
    assert parsed.link == "https://monitor.example.org/"
    assert parsed.language == "en"
    grain, drones, no_id = parsed.entries
    assert grain.guid == "https://monitor.example.org/2024/01/16/grain-corridor"
    assert grain.url == "https://monitor.example.org/2024/01/16/grain-corridor"  # utm_* dropped
    assert grain.summary == "Ships keep leaving Odesa."
    assert grain.content == "Ships left Odesa on Tuesday.\nChina's imports of Ukrainian corn rose again."
    assert grain.published == utc(2024, 1, 16, 8, 30)
    assert grain.updated == utc(2024, 1, 16, 12, 0)
    assert grain.authors == ("Olena Petrenko",)
    assert grain.tags == ("Ukraine", "Russia", "China")
    assert grain.language == "en"
    assert drones.guid == "1705400000"
    assert drones.url == "https://monitor.example.org/2024/01/16/kyiv-drones"  # relative, resolved
    assert drones.content == "Сили ППО збили всі дрони над Києвом.\nПостраждалих немає."
    assert drones.authors == ("Редакція",)  # JSON Feed 1.0 "author"
    assert drones.language == "uk"
    assert no_id.guid == "https://monitor.example.org/2024/01/15/no-id"
    assert no_id.published is None  # "not a date"


def test_json_feed_is_recognised_by_its_body_whatever_the_content_type() -> None:
    parsed = parse_file("made_jsonfeed.json", {"Content-Type": "text/plain"})
    assert len(parsed.entries) == 3


@pytest.mark.parametrize("body, content_type, message", [
    (b'{"error": "rate limited", "status": 429}', "application/json", "jsonfeed.org"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "application/feed+json", "invalid JSON"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "title": "x"}', "application/feed+json", "items"),
    (b'[1, 2, 3]', "application/json", "not an object"),
    (b"Service Unavailable", "application/json", "invalid JSON"),
    (b"[" * 100_000, "application/json", "invalid JSON"),
])
def test_json_that_is_no_feed_is_a_parse_error(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_feed(body, {"Content-Type": content_type}, feed="f", url="https://example.org/feed.json")


def test_malformed_feed_that_still_yields_entries() -> None:
    parsed = parse_file("made_malformed.xml", RSS_TYPE)
    assert [entry.guid for entry in parsed.entries] == ["broken-1", "broken-2"]
    assert parsed.entries[0].title == "Trade & tariffs: Kyiv and Beijing talk"
    assert parsed.entries[0].summary == "First line\nsecond line"
    assert "not well-formed" in parsed.warning


def test_empty_feed_is_not_an_error() -> None:
    parsed = parse_file("made_empty.xml", RSS_TYPE)
    assert parsed.entries == []
    assert parsed.title == "Nothing new yet"
    assert parsed.language == "uk"  # <language>uk-UA</language>
    assert parsed.warning is None


@pytest.mark.parametrize("body", [
    (FEEDS / "made_html_page.html").read_bytes(),
    b"<!doctype html><!-- cached --><HTML><body><p>Moved</p></body></HTML>",
    b"\n\n<br />\n<b>Warning</b>: mysql_connect() failed<br />\n<html><body>x</body></html>",
], ids=["page", "uppercase", "php-warning-first"])
def test_html_page_is_a_parse_error_that_says_html(body: bytes) -> None:
    with pytest.raises(ParseError, match="HTML page, not a feed"):
        parse_feed(body, RSS_TYPE, feed="f", url="https://example.org/rss")


@pytest.mark.parametrize("body", [
    b"",
    b"   \r\n\t",
    random.Random(2024).randbytes(4096),
    b"Internal Server Error",
    b'<?xml version="1.0"?><config><option>1</option></config>',
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "x"> <rss><channel><title>x</title></channel></rss>',
], ids=["empty", "whitespace", "random-bytes", "plain-text", "other-xml", "unterminated-doctype"])
def test_bodies_that_are_no_feed_are_parse_errors(body: bytes) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(body, RSS_TYPE, feed="f", url="https://example.org/rss")


# --------------------------------------------------------------------------
# hostile documents
# --------------------------------------------------------------------------


def test_entity_blowup_is_not_expanded() -> None:
    body = (FEEDS / "made_entity_blowup.xml").read_bytes()
    started = time.perf_counter()
    parsed = parse_feed(body, RSS_TYPE, feed="f", url="https://attacker.example/rss")
    assert time.perf_counter() - started < 2.0  # unprotected: ~10 s
    tracemalloc.start()
    try:
        parse_feed(body, RSS_TYPE, feed="f", url="https://attacker.example/rss")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024  # unprotected: a 200 MB summary, 600 MB peak
    assert "BLOWUP" not in all_text(parsed)
    assert [entry.guid for entry in parsed.entries] == ["blowup-1", "blowup-2"]
    assert parsed.entries[1].summary == "Nothing to see."
    assert len(parsed.entries[0].summary) <= MAX_TEXT_CHARS


def test_billion_laughs_is_not_expanded() -> None:
    body = (FEEDS / "made_billion_laughs.xml").read_bytes()
    tracemalloc.start()
    try:
        parsed = parse_feed(body, RSS_TYPE, feed="f", url="https://attacker.example/rss")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024
    assert "LAUGH" not in all_text(parsed)
    assert [entry.guid for entry in parsed.entries] == ["laugh-1"]


def test_xxe_file_entity_is_never_read() -> None:
    passwd = Path("/etc/passwd").read_text().splitlines()[0]
    parsed = parse_file("made_xxe.xml", RSS_TYPE)
    text = all_text(parsed)
    assert passwd not in text
    assert "root:" not in text
    assert parsed.entries[0].guid == "xxe-1"


def test_external_entities_and_dtds_are_never_fetched(feed_server) -> None:
    feed_server.routes["/secret"] = static(b"SECRET-FROM-SERVER", content_type="text/plain")
    feed_server.routes["/evil.dtd"] = static(b'<!ENTITY leak "SECRET-FROM-DTD">', content_type="text/plain")
    secret, dtd = feed_server.url("/secret"), feed_server.url("/evil.dtd")
    parsed = parse_rss(
        '<item><title>Leak &ext; &leak;</title><guid>x</guid><description>&ext;</description></item>',
        prolog=f'<!DOCTYPE rss SYSTEM "{dtd}" [<!ENTITY ext SYSTEM "{secret}"><!ENTITY % p SYSTEM "{dtd}"> %p;]>',
    )
    assert "SECRET" not in all_text(parsed)
    assert feed_server.requests == []


@pytest.mark.parametrize("body", [
    # declarations hidden in a comment: feedparser's own regex still reads them
    b'<?xml version="1.0"?>\n<!--\n<!DOCTYPE rss [\n<!ENTITY big "HIDDEN">\n]>\n-->\n',
    # an entity declared after the DOCTYPE, outside any internal subset
    b'<?xml version="1.0"?>\n<!DOCTYPE rss>\n<!ENTITY big "HIDDEN">\n',
    # inside a processing instruction
    b'<?xml version="1.0"?>\n<?pi\n<!DOCTYPE rss>\n<!ENTITY big "HIDDEN">\n?>\n',
    # text before the prolog
    b'junk text\n<!DOCTYPE rss [\n<!ENTITY big "HIDDEN">\n]>\n',
    # "]>" inside a quoted entity value does not end the internal subset
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY x "]>">\n<!ENTITY big "HIDDEN">\n]>\n',
], ids=["in-comment", "after-doctype", "in-pi", "junk-first", "quoted-bracket"])
def test_entities_hidden_in_the_prolog_are_not_expanded(body: bytes) -> None:
    # "& broken" makes expat fail, so feedparser's loose parser (which expands) runs
    body += b'<rss version="2.0"><channel><title>t</title><item><title>&big; & broken</title>' \
            b'<guid>1</guid></item></channel></rss>'
    parsed = parse_feed(body, RSS_TYPE, feed="f", url="https://attacker.example/rss")
    assert parsed.entries[0].title == "&big; & broken"


def test_utf16_feed_with_an_internal_subset() -> None:
    body = ('<?xml version="1.0" encoding="utf-16"?><!DOCTYPE rss [<!ENTITY big "HIDDEN">]>'
            '<rss version="2.0"><channel><title>Київ</title><item><title>Новини &big;</title>'
            '<guid>u16</guid></item></channel></rss>').encode("utf-16")
    parsed = parse_feed(body, {"Content-Type": "application/xml"}, feed="f", url="https://example.org/rss")
    assert parsed.title == "Київ"
    assert parsed.entries[0].title == "Новини &big;"


def test_warning_line_numbers_point_at_the_served_document() -> None:
    parsed = parse_file("made_xxe.xml", RSS_TYPE)
    assert parsed.warning.startswith("<unknown>:10:")  # line 10 holds the first &xxe;


# --------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------


def test_guid_falls_back_to_the_canonical_link() -> None:
    parsed = parse_rss("<item><title>No guid</title><link>https://example.org/a?utm_source=rss#top</link></item>")
    assert parsed.entries[0].guid == "https://example.org/a"


def test_guid_without_id_or_link_is_a_stable_hash_of_title_and_date() -> None:
    def item(summary: str) -> str:
        return (f"<item><title>Only a title</title><description>{summary}</description>"
                "<pubDate>Tue, 16 Jan 2024 10:00:00 +0000</pubDate></item>")

    first = parse_rss(item("first version")).entries[0]
    again = parse_rss(item("edited summary")).entries[0]
    assert first.guid.startswith("sha256:")
    assert first.guid == again.guid
    assert first.content_hash != again.content_hash  # same story, changed: "updated", not new
    other = parse_rss(item("x").replace("Only a title", "Another title")).entries[0]
    assert other.guid != first.guid
    assert first.url is None


def test_relative_guid_is_no_link() -> None:
    entry = parse_rss("<item><title>t</title><guid>12345</guid></item>").entries[0]
    assert entry.guid == "12345"
    assert entry.url is None


def test_non_web_links_are_dropped() -> None:
    entry = parse_rss("<item><title>t</title><guid>g</guid><link>javascript:alert(1)</link></item>").entries[0]
    assert entry.url is None


def test_relative_links_resolve_against_content_location_else_the_feed_url() -> None:
    item = "<item><title>t</title><guid>g</guid><link>story/1?utm_medium=x</link></item>"
    assert parse_rss(item, url="https://example.org/news/rss").entries[0].url == "https://example.org/news/story/1"
    moved = parse_rss(item, url="https://example.org/news/rss",
                      headers={**RSS_TYPE, "Content-Location": "https://cdn.example.net/feeds/main.xml"})
    assert moved.entries[0].url == "https://cdn.example.net/feeds/story/1"
    relative = parse_rss(item, url="https://example.org/news/rss",
                         headers={**RSS_TYPE, "content-location": "/mirror/rss.xml"})
    assert relative.entries[0].url == "https://example.org/mirror/story/1"


def test_atom_xml_base_still_applies() -> None:
    body = (b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://base.example/dir/">'
            b'<title>t</title><entry><id>urn:1</id><title>x</title><link href="page.html"/></entry></feed>')
    parsed = parse_feed(body, {"Content-Type": "application/atom+xml"}, feed="f", url="https://example.org/atom")
    assert parsed.entries[0].url == "https://base.example/dir/page.html"


def test_duplicate_guids_keep_the_first_occurrence() -> None:
    parsed = parse_rss(
        "<item><title>first</title><guid>same</guid></item>"
        "<item><title>other</title><guid>other</guid></item>"
        "<item><title>second</title><guid>same</guid></item>"
    )
    assert [(entry.guid, entry.title) for entry in parsed.entries] == [("same", "first"), ("other", "other")]


def test_dates_are_utc_garbage_is_none_and_the_future_is_kept() -> None:
    parsed = parse_rss(
        "<item><title>a</title><guid>a</guid><pubDate>Tue, 16 Jan 2024 12:30:00 +0530</pubDate></item>"
        "<item><title>b</title><guid>b</guid><pubDate>yesterday-ish</pubDate></item>"
        "<item><title>c</title><guid>c</guid><pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate></item>"
    )
    assert [entry.published for entry in parsed.entries] == [utc(2024, 1, 16, 7, 0), None, utc(2100, 1, 1)]


def test_atom_entry_with_only_updated_gets_it_as_published() -> None:
    body = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>urn:1</id><title>x</title>'
            b'<updated>2024-01-16T10:00:00-05:00</updated><content type="html">&lt;p&gt;Body&lt;/p&gt;</content>'
            b'</entry></feed>')
    entry = parse_feed(body, {"Content-Type": "application/atom+xml"}, feed="f", url="https://e.org/").entries[0]
    assert entry.published == entry.updated == utc(2024, 1, 16, 15, 0)
    assert (entry.summary, entry.content) == ("", "Body")


def test_the_same_text_as_summary_and_content_is_kept_once_as_summary() -> None:
    rss = parse_rss(
        "<item><title>t</title><guid>g</guid><description>&lt;p&gt;Same  text&lt;/p&gt;</description>"
        "<content:encoded><![CDATA[<div>Same text</div>]]></content:encoded></item>"
    ).entries[0]
    assert (rss.summary, rss.content) == ("Same text", "")
    # feedparser copies a <content> into a missing summary; that copy is not a summary
    body = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>urn:1</id><title>x</title>'
            b'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Body</p></div></content>'
            b'</entry></feed>')
    atom = parse_feed(body, {"Content-Type": "application/atom+xml"}, feed="f", url="https://e.org/").entries[0]
    assert (atom.summary, atom.content) == ("", "Body")


def test_summary_and_content_are_plain_text_and_both_kept_when_different() -> None:
    entry = parse_rss(
        "<item><title>AT&amp;amp;T &amp;#8211; &lt;b&gt;news&lt;/b&gt;</title><guid>g</guid>"
        "<description><![CDATA[<p>Short <b>teaser</b></p>]]></description>"
        "<content:encoded><![CDATA[<p>Full</p><p>story &amp; more</p><script>x()</script>]]></content:encoded>"
        "</item>"
    ).entries[0]
    assert entry.title == "AT&T – news"
    assert entry.summary == "Short teaser"
    assert entry.content == "Full\nstory & more"


def test_languages_are_normalised_to_the_primary_subtag() -> None:
    parsed = parse_rss(
        "<item><title>a</title><guid>a</guid><dc:language>uk-UA</dc:language></item>"
        "<item><title>b</title><guid>b</guid></item>",
        channel_extra="<language>EN_us</language>",
    )
    assert parsed.language == "en"
    assert [entry.language for entry in parsed.entries] == ["uk", "en"]
    nonsense = parse_rss("<item><title>a</title><guid>a</guid></item>",
                         channel_extra="<language>English</language>", language="ru")
    assert nonsense.entries[0].language == "ru"


def test_authors_and_tags() -> None:
    entry = parse_rss(
        "<item><title>a</title><guid>a</guid><author>desk@example.org (News  Desk)</author>"
        "<category>Ukraine</category><category>Ukraine</category><category> China </category></item>"
    ).entries[0]
    assert entry.authors == ("News Desk",)
    assert entry.tags == ("Ukraine", "China")


def test_huge_fields_are_capped() -> None:
    entry = parse_rss(
        f"<item><title>{'T' * 5000}</title><guid>g</guid><description>{'word ' * 60_000}</description></item>"
    ).entries[0]
    assert len(entry.title) == MAX_TITLE_CHARS
    assert entry.title.endswith("…")
    assert len(entry.summary) == MAX_TEXT_CHARS


def test_huge_guid_is_hashed() -> None:
    entry = parse_rss(f"<item><title>t</title><guid>{'g' * 50_000}</guid></item>").entries[0]
    assert entry.guid.startswith("sha256:") and len(entry.guid) == 71


def test_entry_is_the_shared_record() -> None:
    entry = parse_rss("<item><title>t</title><guid>g</guid></item>").entries[0]
    assert isinstance(entry, Entry)
    assert entry.feed == "made"


def test_content_hash_separates_fields() -> None:
    assert entry_content_hash("ab", "c", "", None) != entry_content_hash("a", "bc", "", None)
    assert entry_content_hash("t", "s", "c", None) == entry_content_hash("t", "s", "c", "")
    assert entry_content_hash("t", "s", "c", "https://a/") != entry_content_hash("t", "s", "c", "https://b/")
    assert len(entry_content_hash("t", "", "", None)) == 64


# --------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("https://Example.COM/a?utm_source=rss&id=3&fbclid=x&b=2#comments", "https://example.com/a?id=3&b=2"),
    ("HTTP://example.com:80/path", "http://example.com/path"),
    ("https://example.com:443", "https://example.com/"),
    ("https://example.com:8443/x", "https://example.com:8443/x"),
    ("https://example.com/a?UTM_Campaign=x&gclid=1&mc_cid=2&mc_eid=3&igshid=4&ref_src=twsrc&yclid=5&_ga=6",
     "https://example.com/a"),
    ("https://example.com/a?z=1&a=2&utm_medium=email&m=%20x", "https://example.com/a?z=1&a=2&m=%20x"),
    ("https://www.lemonde.fr/article.html?xtor=RSS-3208", "https://www.lemonde.fr/article.html"),
    ("  https://example.com/story  ", "https://example.com/story"),
    ("https://user:pw@Example.com/x", "https://user:pw@example.com/x"),
    ("http://[2001:DB8::1]:80/x", "http://[2001:db8::1]/x"),
    ("https://example.com/a?&&q=1&", "https://example.com/a?q=1"),
    ("not a url", "not a url"),
    ("http://[broken/x", "http://[broken/x"),
])
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize("url, expected", [
    ("https://user:secret@example.com/feed", "https://example.com/feed"),
    ("https://user:p@ss@example.com:8080/feed?a=b@c", "https://example.com:8080/feed?a=b@c"),
    ("https://example.com/feed?mail=a@b", "https://example.com/feed?mail=a@b"),
    ("https://token@example.com/", "https://example.com/"),
])
def test_strip_userinfo(url: str, expected: str) -> None:
    assert strip_userinfo(url) == expected
