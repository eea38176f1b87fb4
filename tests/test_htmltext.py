"""html_to_text and fold_whitespace: readable words out of feed HTML, fast on any input."""

from __future__ import annotations

import time

import pytest

from monitor.ingest.htmltext import fold_whitespace, html_to_text


@pytest.mark.parametrize("html, text", [
    ("foo</p><p>bar", "foo\nbar"),
    ("<p>one</p><p>two</p>", "one\ntwo"),
    ("line<br>break<br/>again<BR />end", "line\nbreak\nagain\nend"),
    ("<div>a</div><div>b</div>", "a\nb"),
    ("<ul><li>Kyiv</li><li>Kharkiv</li></ul>", "Kyiv\nKharkiv"),
    ("<h2>Title</h2>Body", "Title\nBody"),
    ("<table><tr><td>a</td><td>b</td></tr></table>", "a\nb"),
    ("<blockquote>quote</blockquote>after", "quote\nafter"),
], ids=["p-boundary", "paragraphs", "br", "div", "li", "heading", "table", "blockquote"])
def test_block_elements_separate_words(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_inline_elements_do_not_split_words() -> None:
    assert html_to_text("Ky<b>iv</b> and <a href='/x'>Bei</a><i>jing</i>") == "Kyiv and Beijing"
    assert html_to_text("<span>a</span> <em>b</em>") == "a b"


@pytest.mark.parametrize("html", [
    "<p>news</p><script>var leak = 'SCRIPT';</script>",
    "<p>news</p><script type='text/javascript'>if (a < b) { x('SCRIPT') }</script>",
    "<style>p { color: red } /* STYLE */</style><p>news</p>",
    "<head><title>HEAD</title></head><p>news</p>",
    "<noscript><img src='x'>NOSCRIPT</noscript><p>news</p>",
    "<template>TEMPLATE</template><p>news</p>",
    "<!-- COMMENT --><p>news</p>",
    "<p>news</p><!-- unterminated COMMENT",
    "<p>news</p><script>unterminated SCRIPT",
    "<?xml version='1.0'?><!DOCTYPE html><p>news</p>",
], ids=["script", "script-with-lt", "style", "head", "noscript", "template", "comment",
        "unterminated-comment", "unterminated-script", "declarations"])
def test_invisible_content_is_dropped(html: str) -> None:
    assert html_to_text(html) == "news"


def test_cdata_markers_are_dropped_and_their_text_kept() -> None:
    assert html_to_text("<p><![CDATA[inside]]> outside</p>") == "inside outside"


@pytest.mark.parametrize("html, text", [
    ("Tom &amp; Jerry", "Tom & Jerry"),
    ("it&#x27;s &#39;quoted&#39;", "it's 'quoted'"),
    ("a&nbsp;b&nbsp;&nbsp;c", "a b c"),
    ("1&ndash;2 &mdash; &laquo;ok&raquo; &euro;5", "1–2 — «ok» €5"),
    ("&lt;p&gt;literal&lt;/p&gt;", "<p>literal</p>"),
    ("&amp;lt;b&amp;gt;", "&lt;b&gt;"),
    ("AT&T and &unknown; stay", "AT&T and &unknown; stay"),
], ids=["amp", "apos", "nbsp", "named", "escaped-tags", "double-escaped", "bare-ampersand"])
def test_entities_are_decoded_once(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_escaped_markup_stays_text_even_with_real_tags_around() -> None:
    assert html_to_text("<p>Use &lt;br&gt; for breaks</p>") == "Use <br> for breaks"


def test_text_that_only_looks_like_tags_is_kept() -> None:
    assert html_to_text("a < b and c > d") == "a < b and c > d"
    assert html_to_text("<p>5 <3 ok</p>") == "5 <3 ok"


def test_attribute_values_may_contain_a_greater_than_sign() -> None:
    assert html_to_text('<a title="a > b" href="/x">link</a> text') == "link text"


@pytest.mark.parametrize("html, text", [
    ("  spaced\n\tout  \r\n words ", "spaced out words"),
    ("<p>\n  Indented\n  paragraph\n</p>\n\n<p>next</p>", "Indented paragraph\nnext"),
    ("zero\u200bwidth\ufeff and soft\u00adhyphen", "zerowidth and softhyphen"),
    ("odd\u00a0spaces\u2009here\u3000too", "odd spaces here too"),
    ("control\x00chars\x07gone", "controlcharsgone"),
    ("<p></p><div>  </div><p>only</p><br><br>", "only"),
], ids=["raw-whitespace", "source-newlines", "zero-width", "unicode-spaces", "controls", "empty-blocks"])
def test_whitespace_is_folded(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_plain_text_passes_through() -> None:
    text = "Zelensky meets Xi: «talks» – 2024 (Kyiv) 100% [updated]"
    assert html_to_text(text) == text
    assert html_to_text("Торгівля між Росією та Китаєм") == "Торгівля між Росією та Китаєм"
    assert html_to_text("") == ""


def test_fold_whitespace_keeps_line_breaks_but_no_blank_lines() -> None:
    assert fold_whitespace("  first  line \n\n\n  second\u200b line\t\n") == "first line\nsecond line"
    assert fold_whitespace("no <b>tags</b> &amp; no entities touched") == "no <b>tags</b> &amp; no entities touched"


@pytest.mark.parametrize("hostile", [
    "<" * 200_000,
    '<a "' * 100_000,
    "<a title='" * 100_000,
    "<!--" * 100_000,
    "<script" * 100_000,
    "<p " * 100_000 + ">",
], ids=["lt", "unclosed-double-quotes", "unclosed-single-quotes", "unclosed-comments", "unclosed-scripts",
        "long-tag"])
def test_hostile_markup_is_converted_in_linear_time(hostile: str) -> None:
    started = time.perf_counter()
    html_to_text(hostile)
    assert time.perf_counter() - started < 2.0  # a quadratic pattern takes minutes here
