"""monitor.stories: copies of one story recognised the same way everywhere (see also test_alert_route.py)."""

from __future__ import annotations

import pytest

from monitor.stories import MIN_TITLE_KEY_CHARS, repeats_summary, story_keys

SHORT = "Blackout in Kharkiv"  # under MIN_TITLE_KEY_CHARS


def test_a_short_headline_gives_no_key_unless_asked() -> None:
    assert len(SHORT) < MIN_TITLE_KEY_CHARS
    assert story_keys(None, SHORT) == ()
    assert story_keys(None, SHORT, min_title_chars=1) == ("title:blackout in kharkiv",)
    assert story_keys(None, "BLACKOUT in Kharkiv!", min_title_chars=1) == story_keys(None, SHORT, min_title_chars=1)


def test_an_empty_headline_gives_no_key_at_any_length() -> None:
    assert story_keys(None, " ... ", min_title_chars=0) == ()


def test_a_front_page_link_gives_no_url_key() -> None:
    assert story_keys("https://www.example.com/", "t") == ()
    assert story_keys("https://u:p@example.com/news/1", "t") == (
        "url:https://example.com/news/1", "path:example.com/news/1")


@pytest.mark.parametrize(("summary", "content", "repeats"), [
    ("Drones hit a plant.", "Drones hit a plant.", True),
    ("Drones hit a plant.", "  Drones hit a plant.\n", True),
    ("", "", True),
    (None, "", True),
    ("Drones hit a plant.", "Drones hit a plant. More details follow.", False),
    ("", "The full text.", False),
])
def test_repeats_summary(summary: str | None, content: str | None, repeats: bool) -> None:
    assert repeats_summary(summary, content) is repeats
