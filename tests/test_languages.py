"""monitor.languages: a language tag reduced to its primary subtag, the same way for feeds and rules."""

from __future__ import annotations

import pytest

from monitor.languages import language_code, primary_language


@pytest.mark.parametrize(("tag", "expected"), [
    ("uk-UA", "uk"), ("uk_UA", "uk"), ("EN", "en"), (" ru ", "ru"), ("pt-BR-x-private", "pt"),
    ("ukr", "ukr"), ("en-", "en"), ("english", "english"), ("", ""),
])
def test_language_code_is_the_first_subtag_in_lower_case(tag: str, expected: str) -> None:
    assert language_code(tag) == expected


@pytest.mark.parametrize(("tag", "expected"), [
    ("uk-UA", "uk"), ("uk_UA", "uk"), ("EN", "en"), (" ru ", "ru"), ("ukr", "ukr"), ("en-", "en"),
    (None, None), ("", None), ("english", None), ("e", None), ("x-klingon", None), ("-en", None),
    ("en US", None), ("\u212aa", None),  # KELVIN SIGN lower-cases to an ASCII k: still no language
])
def test_primary_language_is_none_unless_the_subtag_is_a_language(tag: str | None, expected: str | None) -> None:
    assert primary_language(tag) == expected


def test_both_agree_on_every_valid_tag() -> None:
    for tag in ("uk-UA", "ru_RU", "EN", "de-CH-1901"):
        assert primary_language(tag) == language_code(tag)
