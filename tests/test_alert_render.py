"""Alert rendering: subjects, escaping of hostile feed text, times, digests, templates."""

from __future__ import annotations

import dataclasses
import string
from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from apprise.conversion import html_to_text, markdown_to_html

from monitor.alert.notices import render_health, render_test
from monitor.alert.render import (
    TEMPLATE_FILES,
    TEMPLATE_VARIABLES,
    Templates,
    load_templates,
    render_alert,
    render_digest,
)
from monitor.errors import ConfigError
from monitor.models import AlertView, RuleHit

NOON_UTC = datetime(2026, 11, 29, 12, 5, tzinfo=UTC)

HOSTILE_TITLE = '<script>alert(1)</script> **bold** [x](javascript:alert(1)) "quoted" `code`'
HOSTILE_SNIPPET = 'a <img src=x onerror=alert(1)> [[hit]] </p><script>steal()</script> | # _x_'
HOSTILE_OUTLET = '"><script>alert(2)</script>'


def story(**changes: object) -> AlertView:
    view = AlertView(rule="energy", severity="warning", score=4.5,
                     title="Drones hit a power plant near Kyiv", url="https://news.example/a/1",
                     feed="Kyiv Independent", published=NOON_UTC,
                     snippet="…drones hit a [[power plant]] near [[Kyiv]] overnight…",
                     terms=("power plant", "Kyiv"), description="Attacks on the grid")
    return dataclasses.replace(view, **changes)


class ParsedHtml(HTMLParser):
    """Every element and attribute of an HTML fragment, and its visible text."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.chunks: list[str] = []
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    @property
    def hrefs(self) -> list[str]:
        return [value or "" for name, value in self.attributes if name == "href"]


def write_template(config_dir: Path, field: str, text: str) -> Path:
    path = config_dir / "templates" / TEMPLATE_FILES[field]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# subject
# --------------------------------------------------------------------------


def test_subject_is_rule_headline_and_outlet() -> None:
    assert render_alert(story(), "UTC").subject == "[energy] Drones hit a power plant near Kyiv — Kyiv Independent"


def test_updated_story_subject_starts_with_update() -> None:
    message = render_alert(story(is_update=True), "UTC")
    assert message.subject == "Update: [energy] Drones hit a power plant near Kyiv — Kyiv Independent"
    assert message.text.startswith("Update: Drones hit")


def test_long_headline_is_cut_in_the_subject_only() -> None:
    title = " ".join(["word"] * 60)  # 299 characters
    message = render_alert(story(title=title), "UTC")
    shown = message.subject.removeprefix("[energy] ").removesuffix(" — Kyiv Independent")
    assert len(shown) <= 120 and shown.endswith("word…")
    assert title in message.text


def test_subject_cannot_carry_a_second_header_or_hidden_characters() -> None:
    title = "Breaking\r\nBcc: victim@example.com\n\nbody\u202eexe.gnp\u200b\x00\x1b[31m"
    subject = render_alert(story(title=title, feed="Out\nlet"), "UTC").subject
    assert subject == "[energy] Breaking Bcc: victim@example.com bodyexe.gnp[31m — Out let"
    assert not any(char in subject for char in "\r\n\x00\x1b\u202e\u200b")


# --------------------------------------------------------------------------
# body contents
# --------------------------------------------------------------------------


def test_text_body_shows_every_part_of_the_alert() -> None:
    text = render_alert(story(also_reported_by=("Ukrainska Pravda", "RBC")), "UTC").text
    assert text.split("\n") == [
        "Drones hit a power plant near Kyiv",
        "Kyiv Independent, 2026-11-29 12:05 UTC",
        "https://news.example/a/1",
        "",
        "…drones hit a [[power plant]] near [[Kyiv]] overnight…",
        "",
        "Matched rules:",
        "- energy (warning, score 4.5): power plant, Kyiv — Attacks on the grid",
        "Also reported by: Ukrainska Pravda, RBC",
    ]


def test_published_time_is_shown_in_the_configured_timezone() -> None:
    assert "2026-11-29 14:05 EET" in render_alert(story(), "Europe/Kyiv").text
    assert "2026-11-29 12:05 UTC" in render_alert(story(), "UTC").text
    summer = story(published=datetime(2026, 7, 1, 9, 30, tzinfo=UTC))
    assert "2026-07-01 12:30 EEST" in render_alert(summer, "Europe/Kyiv").text


def test_unknown_publication_time_says_so() -> None:
    message = render_alert(story(published=None), "Europe/Kyiv")
    assert "Kyiv Independent, unknown" in message.text
    assert "Kyiv Independent, unknown" in message.html


def test_optional_lines_disappear_when_empty() -> None:
    message = render_alert(story(description="", also_reported_by=(), url=None), "UTC")
    for body in (message.text, message.html, message.markdown):
        assert "Also reported by" not in body and "Attacks on the grid" not in body
        assert "news.example" not in body
    assert message.text.endswith("\n- energy (warning, score 4.5): power plant, Kyiv")
    assert "<p style=\"margin:0;color:#555555\"></p>" not in message.html


def test_also_reported_by_appears_in_every_format() -> None:
    message = render_alert(story(also_reported_by=("UP", "RBC")), "UTC")
    assert "Also reported by: UP, RBC" in message.text
    assert "Also reported by: UP, RBC" in ParsedHtml(message.html).text
    assert "Also reported by: UP, RBC" in message.markdown


def test_hits_are_highlighted_in_each_format() -> None:
    message = render_alert(story(), "UTC")
    assert "[[power plant]]" in message.text  # no quotation mark: « » stay the text's
    assert '<b style="background-color:#fff2a8">power plant</b>' in message.html
    assert "**power plant**" in message.markdown
    assert "<strong>power plant</strong>" in markdown_to_html(message.markdown)


def test_html_body_degrades_to_readable_text() -> None:
    """apprise builds the email's plain-text part from the HTML body."""
    text = html_to_text(render_alert(story(), "UTC").html)
    assert "Drones hit a power plant near Kyiv" in text
    assert "https://news.example/a/1" in text
    assert "energy (warning, score 4.5): power plant, Kyiv" in text


# --------------------------------------------------------------------------
# escaping hostile feed text
# --------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)", " javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "vbscript:msgbox(1)",
])
def test_html_never_links_a_script_url(url: str) -> None:
    view = story(title=HOSTILE_TITLE, snippet=HOSTILE_SNIPPET, feed=HOSTILE_OUTLET, url=url)
    parsed = ParsedHtml(render_alert(view, "UTC").html)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert parsed.hrefs == []
    assert {name for name, _ in parsed.attributes} <= {"style"}


def test_html_shows_hostile_text_literally() -> None:
    view = story(title=HOSTILE_TITLE, snippet=HOSTILE_SNIPPET, feed=HOSTILE_OUTLET, url="javascript:alert(1)")
    parsed = ParsedHtml(render_alert(view, "UTC").html)
    assert HOSTILE_TITLE in parsed.text
    assert HOSTILE_OUTLET in parsed.text
    assert "javascript:alert(1)" in parsed.text  # shown as text, not a link
    assert parsed.tags.count("b") == 1  # the highlighted hit; nothing from the feed


def test_html_link_cannot_break_out_of_its_attribute() -> None:
    url = 'https://news.example/a"onmouseover="alert(1)\'x=<b>'
    parsed = ParsedHtml(render_alert(story(url=url), "UTC").html)
    assert parsed.hrefs == ["https://news.example/a%22onmouseover=%22alert%281%29%27x=%3Cb%3E"]
    assert {name for name, _ in parsed.attributes} == {"style", "href"}


def test_markdown_escapes_link_and_emphasis_syntax() -> None:
    title = "**bold** [x](javascript:alert(1))"
    markdown = render_alert(story(title=title), "UTC").markdown
    assert r"\*\*bold\*\* \[x\]\(javascript:alert\(1\)\)" in markdown
    rendered = ParsedHtml(markdown_to_html(markdown))
    assert not any(href.startswith("javascript") for href in rendered.hrefs)
    assert title in rendered.text


def test_markdown_hostile_fields_render_as_literal_text() -> None:
    view = story(title=HOSTILE_TITLE, snippet=HOSTILE_SNIPPET, feed="# Heading | ~~gone~~ > quote")
    markdown = render_alert(view, "UTC").markdown
    assert r"\# Heading \| \~\~gone\~\~ \> quote" in markdown
    assert r"\<script\>alert\(1\)\</script\>" in markdown
    assert r"\`code\`" in markdown
    rendered = ParsedHtml(markdown_to_html(markdown))
    assert {"script", "img", "h1", "code", "del", "table"}.isdisjoint(rendered.tags)
    assert HOSTILE_TITLE in rendered.text
    assert "a <img src=x onerror=alert(1)> hit </p><script>steal()</script> | # _x_" in rendered.text


def test_markdown_link_percent_encodes_parentheses_and_spaces() -> None:
    markdown = render_alert(story(url="https://en.example/wiki/Grid_(power) plant"), "UTC").markdown
    assert "<https://en.example/wiki/Grid_%28power%29%20plant>" in markdown
    assert ParsedHtml(markdown_to_html(markdown)).hrefs == ["https://en.example/wiki/Grid_%28power%29%20plant"]


def test_markdown_shows_a_script_url_as_inert_text() -> None:
    markdown = render_alert(story(url="javascript:alert(1)//)"), "UTC").markdown
    assert r"javascript:alert\(1\)//\)" in markdown
    assert "<javascript" not in markdown and "](javascript" not in markdown
    assert ParsedHtml(markdown_to_html(markdown)).hrefs == []


def test_markdown_cannot_mention_everyone() -> None:
    markdown = render_alert(story(title="@everyone @here look"), "UTC").markdown
    assert "@everyone" not in markdown and "@here" not in markdown
    assert "@\u200beveryone @\u200bhere look" in markdown


def test_text_body_keeps_markup_but_drops_invisible_characters() -> None:
    view = story(title="<b>Fish & chips</b> **now**\u202e\u200b\u2066", feed="Out\u00adlet\x07",
                 snippet="x\u200d[[y]]\x1bz")
    message = render_alert(view, "UTC")
    assert message.text.startswith("<b>Fish & chips</b> **now**\nOutlet, ")
    assert "x[[y]]z" in message.text
    for body in (message.subject, message.text, message.html, message.markdown):
        assert not any(char in body for char in "\u202e\u200b\u2066\u00ad\x07\x1b\u200d")


def test_userinfo_is_dropped_from_a_story_link() -> None:
    message = render_alert(story(url="https://google.com@evil.example/login"), "UTC")
    assert ParsedHtml(message.html).hrefs == ["https://evil.example/login"]
    assert "google.com@" not in message.text


# --------------------------------------------------------------------------
# digests
# --------------------------------------------------------------------------


def digest_views() -> list[AlertView]:
    early = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    late = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    return [
        story(title="Old grid story", url="https://a.example/old", published=early),
        story(title="Blackout in Kharkiv", url="https://a.example/kharkiv", feed="Outlet A", published=late),
        # the same story from two more outlets: same link, then same headline words
        story(title="Blackout in Kharkiv", url="https://a.example/kharkiv", feed="Outlet B",
              published=late.replace(minute=20)),
        story(title="BLACKOUT in Kharkiv!", url="https://b.example/other", feed="Outlet C",
              published=late.replace(minute=30), also_reported_by=("Outlet D",)),
        story(rule="nuclear", severity="critical", description="", title="Alarm at the plant",
              url="https://c.example/zaporizhzhia", feed="Outlet E"),
    ]


def test_digest_subject_counts_stories_and_names_the_period() -> None:
    message = render_digest(digest_views(), "UTC", destination="mail", period="last 6 hours")
    assert message.subject == "[monitor] 3 stories — last 6 hours"
    single = render_digest(digest_views()[:1], "UTC", destination="mail", period="quiet hours 22:00–07:00")
    assert single.subject == "[monitor] 1 story — quiet hours 22:00–07:00"


def test_digest_groups_by_rule_then_story_with_copies_on_one_line() -> None:
    text = render_digest(digest_views(), "UTC", destination="mail", period="last 6 hours").text
    assert text.startswith("3 stories for mail — last 6 hours\n\n=== nuclear (1) ===\n\nAlarm at the plant")
    energy = text.index("=== energy — Attacks on the grid (2) ===")
    kharkiv, old = text.index("Blackout in Kharkiv"), text.index("Old grid story")
    assert text.index("Alarm at the plant") < energy < kharkiv < old  # critical first; newest first
    assert text.count("Blackout in Kharkiv") == 1 and "BLACKOUT" not in text
    assert "Also reported by: Outlet B, Outlet C, Outlet D" in text
    assert "Outlet A, 2026-11-29 10:00 UTC" in text  # the earliest copy is the one shown


def test_digest_html_and_markdown_hold_the_same_grouping() -> None:
    message = render_digest(digest_views(), "Europe/Kyiv", destination="chat", period="last 6 hours")
    parsed = ParsedHtml(message.html)
    assert parsed.tags.count("h3") == 2
    assert "energy — Attacks on the grid (2)" in parsed.text
    assert parsed.text.count("Blackout in Kharkiv") == 1
    assert "### nuclear \\(1\\)" in message.markdown
    assert "### energy — Attacks on the grid \\(2\\)" in message.markdown
    assert "Outlet A, 2026\\-11\\-29 12:00 EET" in message.markdown


def test_digest_escapes_hostile_stories() -> None:
    views = [story(title=HOSTILE_TITLE, rule="<i>r</i>", description="*d*", url="javascript:x()")]
    message = render_digest(views, "UTC", destination='<b>"me"</b>', period="last hour")
    parsed = ParsedHtml(message.html)
    assert {"script", "i"}.isdisjoint(parsed.tags) and parsed.hrefs == []
    assert '1 story for <b>"me"</b> — last hour' in parsed.text
    assert r"\<i\>r\</i\> — \*d\* \(1\)" in message.markdown


def test_digest_stories_use_the_user_templates(tmp_path: Path) -> None:
    write_template(tmp_path, "text", "* $title ($outlet)\n")
    templates = load_templates(tmp_path)
    text = render_digest(digest_views(), "UTC", destination="mail", period="today", templates=templates).text
    assert "* Alarm at the plant (Outlet E)" in text
    assert "* Blackout in Kharkiv (Outlet A)" in text


# --------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------


def default_template(field: str) -> str:
    return resources.files("monitor.alert").joinpath("templates", TEMPLATE_FILES[field]).read_text("utf-8")


def test_template_variables_cover_every_variable_of_the_defaults() -> None:
    for field in TEMPLATE_FILES:
        used = set(string.Template(default_template(field)).get_identifiers())
        assert used and used <= set(TEMPLATE_VARIABLES), field


def test_every_documented_variable_can_be_used(tmp_path: Path) -> None:
    write_template(tmp_path, "text", "\n".join(f"{name}=${name}" for name in TEMPLATE_VARIABLES) + "\n")
    text = render_alert(story(is_update=True, also_reported_by=("UP",)), "UTC", load_templates(tmp_path)).text
    assert "update=yes" in text and "update_prefix=Update:" in text and "also_reported_by=UP" in text
    assert "score=4.5" in text and "link=https://news.example/a/1" in text


def test_no_template_files_means_defaults(tmp_path: Path) -> None:
    assert load_templates(tmp_path) == Templates()
    assert render_alert(story(), "UTC", load_templates(tmp_path)) == render_alert(story(), "UTC")


def test_template_files_override_the_defaults(tmp_path: Path) -> None:
    write_template(tmp_path, "subject", "$severity: ${title} ($$5 $rule)\n")
    write_template(tmp_path, "markdown", "_${outlet}_ $link\n")
    message = render_alert(story(), "UTC", load_templates(tmp_path))
    assert message.subject == "warning: Drones hit a power plant near Kyiv ($5 energy)"
    assert message.markdown == "_Kyiv Independent_ <https://news.example/a/1>"
    assert message.text == render_alert(story(), "UTC").text  # not overridden


def test_user_templates_get_values_escaped_for_their_format(tmp_path: Path) -> None:
    write_template(tmp_path, "html", '<p><a href="$url">$title</a> $outlet</p>\n')
    templates = load_templates(tmp_path)
    hostile = story(title=HOSTILE_TITLE, feed=HOSTILE_OUTLET, url="javascript:alert(1)")
    parsed = ParsedHtml(render_alert(hostile, "UTC", templates).html)
    assert parsed.tags == ["p", "a"] and parsed.hrefs == [""]
    assert HOSTILE_TITLE in parsed.text
    safe = ParsedHtml(render_alert(story(), "UTC", templates).html)
    assert safe.hrefs == ["https://news.example/a/1"]


def test_unknown_variable_names_file_line_and_variable(tmp_path: Path) -> None:
    path = write_template(tmp_path, "text", "$title\nSeen in ${outlet} by $autor today\n")
    with pytest.raises(ConfigError) as caught:
        load_templates(tmp_path)
    error = caught.value
    assert (error.path, error.line, error.column) == (path, 2, 22)
    assert "$autor" in error.message and "author" not in error.message
    assert str(error).startswith(f"{path}:2:22: unknown template variable $autor")
    assert error.context == "    Seen in ${outlet} by $autor today\n" + " " * 25 + "^"


def test_a_lone_dollar_sign_is_an_error_with_advice(tmp_path: Path) -> None:
    write_template(tmp_path, "subject", "[$rule] costs $5\n")
    with pytest.raises(ConfigError, match=r"write \$\$ for a dollar sign") as caught:
        load_templates(tmp_path)
    assert (caught.value.line, caught.value.column) == (1, 15)


def test_a_template_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = write_template(tmp_path, "html", "")
    path.write_bytes(b"<p>\xff\xfe $title</p>")
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        load_templates(tmp_path)
    assert caught.value.path == path


# --------------------------------------------------------------------------
# feed health and test messages
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("event", "detail", "subject"), [
    ("failing", "HTTP 503 after 5 polls", "[monitor] feed kyiv-independent is failing: HTTP 503 after 5 polls"),
    ("recovered", "after 7 failed polls", "[monitor] feed kyiv-independent recovered"),
    ("silent", "3 days", "[monitor] feed kyiv-independent is silent for 3 days"),
    ("gone", "410", "[monitor] feed kyiv-independent is gone (410)"),
])
def test_health_subjects(event: str, detail: str, subject: str) -> None:
    message = render_health("kyiv-independent", "https://kyivindependent.example/rss", event, detail,
                            "Europe/Kyiv", NOON_UTC)
    assert message.subject == subject
    assert "When: 2026-11-29 14:05 EET" in message.text
    assert detail in message.text


def test_health_message_hides_feed_credentials_and_escapes_errors() -> None:
    message = render_health("private", "https://user:s3cret@feeds.example/rss?x=1", "failing",
                            "bad\r\nSubject: <script>x</script>", "UTC", NOON_UTC)
    assert message.subject == "[monitor] feed private is failing: bad Subject: <script>x</script>"
    for body in (message.text, message.html, message.markdown):
        assert "s3cret" not in body and "user:" not in body
    parsed = ParsedHtml(message.html)
    assert "script" not in parsed.tags
    assert parsed.hrefs == ["https://feeds.example/rss?x=1"]


def test_health_rejects_an_unknown_event() -> None:
    with pytest.raises(ValueError, match="unknown feed health event"):
        render_health("f", "https://f.example/rss", "exploded", "", "UTC", NOON_UTC)


def test_test_message_names_the_destination_and_the_time() -> None:
    message = render_test("team-chat", "Europe/Kyiv", NOON_UTC)
    assert message.subject == "[monitor] test message to team-chat"
    assert "Sent: 2026-11-29 14:05 EET" in message.text
    assert "Sent: 2026\\-11\\-29 14:05 EET" in message.markdown
    assert "team-chat" in ParsedHtml(message.html).text


# --------------------------------------------------------------------------
# one story, several rules
# --------------------------------------------------------------------------


def three_rules(*, new: str | None = None) -> AlertView:
    hits = (RuleHit("china_military", "critical", 6.0, "[[Chinese]] parts in [[drones]]",
                    ("Chinese", "drones"), "China arms Russia", is_new=new == "china_military"),
            RuleHit("energy", "warning", 4.5, "a [[power plant]]", ("power plant",),
                    is_new=new == "energy"),
            RuleHit("sanctions", "info", 2.0, "[[sanctions]]", ("sanctions",),
                    is_new=new == "sanctions"))
    return story(rule="china_military", severity="critical", score=6.0, snippet=hits[0].snippet,
                 terms=hits[0].terms, description=hits[0].description, rules=hits,
                 is_update=new is not None)


def test_one_story_alert_names_every_rule_most_severe_first_in_every_format() -> None:
    message = render_alert(three_rules(), "UTC")
    assert message.subject == "[china_military +2] Drones hit a power plant near Kyiv — Kyiv Independent"
    lines = message.text.split("\n")
    start = lines.index("Matched rules:")
    assert lines[start + 1:start + 4] == [
        "- china_military (critical, score 6): Chinese, drones — China arms Russia",
        "- energy (warning, score 4.5): power plant",
        "- sanctions (info, score 2): sanctions",
    ]
    html_text = ParsedHtml(message.html).text
    assert html_text.index("china_military (critical") < html_text.index("energy (warning") \
        < html_text.index("sanctions (info")
    rendered = markdown_to_html(message.markdown)
    assert rendered.count("<li>") == 3 and "china_military (critical, score 6)" in rendered
    assert "New in this update" not in message.text


def test_an_update_says_which_rule_is_new() -> None:
    message = render_alert(three_rules(new="sanctions"), "UTC")
    assert message.subject.startswith("Update: [china_military +2] ")
    assert "- sanctions (info, score 2, new): sanctions" in message.text
    assert "New in this update: sanctions" in message.text
    assert "New in this update: sanctions" in ParsedHtml(message.html).text
    assert "New in this update: sanctions" in message.markdown


def test_a_digest_lists_a_story_of_several_rules_once() -> None:
    message = render_digest([three_rules()], "UTC", destination="mail", period="today")
    assert message.subject == "[monitor] 1 story — today"
    assert message.text.count("Drones hit a power plant near Kyiv") == 1
    assert "=== china_military — China arms Russia (1) ===" in message.text
    assert "- sanctions (info, score 2): sanctions" in message.text


def test_a_text_highlight_never_doubles_the_texts_own_quotation_marks() -> None:
    """Ukrainian and Russian headlines quote with « »: a hit inside them stays readable."""
    message = render_alert(story(snippet="Росія запускає «[[Шахедів]]» з Китаю"), "UTC")
    assert "«[[Шахедів]]»" in message.text and "««" not in message.text
