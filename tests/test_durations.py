"""The one duration grammar used by the config, --interval and --since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.config.durations import MAX_DURATION, format_duration, parse_duration, parse_since

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("10m", 600), ("1h", 3600), ("2d", 172800), ("1w", 604800),
    ("1h30m", 5400), ("1w2d3h4m5s", 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
    ("90", 90), ("0", 0), ("0s", 0), ("1.5h", 5400), (".5m", 30),
    (" 10m ", 600), ("1h 30m", 5400), ("1H30M", 5400), ("10 m", 600),
    (42, 42), (2.5, 2.5), (0, 0),
])
def test_every_form_of_the_grammar(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [
    "99999999999w", "9" * 5000 + "d", "1" + "0" * 100_000 + "w", "99999999999999999999", 10**5000, 1e308,
    float("inf"), "1w" * 1000,
], ids=["11-digit-weeks", "5000-digit-days", "100k-digit-weeks", "20-digit-seconds", "int-5000-digits",
        "float-1e308", "float-inf", "1000-parts"])
def test_huge_values_are_clamped_not_crashes(text: str | int | float) -> None:
    assert parse_duration(text) == MAX_DURATION


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty"), ("   ", "empty"), ("-5m", "negative"), (-1, "negative"), (float("-inf"), "negative"),
    ("10x", "expected"), ("m", "expected"), ("1h-30m", "expected"), ("1e5", "expected"),
    ("ten minutes", "expected"), ("5m x", "expected"), (True, "expected"), (float("nan"), "expected"),
])
def test_bad_durations_quote_the_input_and_show_the_grammar(text: object, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)  # type: ignore[arg-type]
    message = str(caught.value)
    assert why in message
    if isinstance(text, str) and text:
        assert repr(text) in message
    if why == "expected":
        assert "'1h30m'" in message and "bare number means seconds" in message


def test_an_absurdly_long_input_is_shown_cut_short() -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration("x" * 10_000)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (45, "45s"), (600, "10m"), (5400, "1h30m"), (86400, "1d"), (604800, "1w"),
    (90061, "1d1h1m1s"), (0.5, "0.5s"), (90.25, "1m30.25s"),
])
def test_format_duration_gives_the_shortest_form(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_format_duration_refuses_negative() -> None:
    with pytest.raises(ValueError):
        format_duration(-1)


@pytest.mark.parametrize(("text", "expected"), [
    ("1d", NOW - timedelta(days=1)),
    ("90m", NOW - timedelta(minutes=90)),
    ("0", NOW),
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T10:00", datetime(2026, 11, 1, 10, 0, tzinfo=UTC)),
    ("2026-11-01T10:00:30Z", datetime(2026, 11, 1, 10, 0, 30, tzinfo=UTC)),
    ("2026-11-01T10:00+02:00", datetime(2026, 11, 1, 8, 0, tzinfo=UTC)),
    (" 2026-11-01 ", datetime(2026, 11, 1, tzinfo=UTC)),
])
def test_parse_since_takes_a_duration_ago_or_an_iso_time(text: str, expected: datetime) -> None:
    since = parse_since(text, NOW)
    assert since == expected
    assert since.tzinfo is UTC


def test_parse_since_clamps_a_huge_duration() -> None:
    assert parse_since("99999999999w", NOW) == NOW - timedelta(seconds=MAX_DURATION)


def test_parse_since_treats_a_naive_now_as_utc() -> None:
    assert parse_since("1h", NOW.replace(tzinfo=None)) == NOW - timedelta(hours=1)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "-1d", ""])
def test_parse_since_explains_both_forms(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_since(text, NOW)
    assert repr(text) in str(caught.value)
    assert "'2026-11-01'" in str(caught.value) and "'10m'" in str(caught.value)
