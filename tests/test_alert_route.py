"""Routing, delivery plans, digest times, quiet hours, retries, story keys and feed health, on fixed clocks.

Europe/Kyiv in 2026: EET (UTC+2) until 2026-03-29 03:00 local jumps to 04:00
EEST (UTC+3); on 2026-10-25 04:00 EEST falls back to 03:00 EET.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.alert.route import (
    Plan,
    admin_recipients,
    health_event,
    is_silent,
    next_digest_time,
    parse_clock,
    plan_delivery,
    quiet_until,
    recipients,
    retry_due,
)
from monitor.models import AlertSettings, Destination
from monitor.stories import story_keys

KYIV = "Europe/Kyiv"
SETTINGS = AlertSettings()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def dest(name: str = "d", **kw) -> Destination:
    return Destination(name=name, url=f"json://127.0.0.1/{name}", **kw)


def names(destinations) -> list[str]:
    return [destination.name for destination in destinations]


# --------------------------------------------------------------------------
# routing
# --------------------------------------------------------------------------


def test_a_destination_gets_rules_it_shares_a_tag_with():
    war, sport = dest("war", tags=("war",)), dest("sport", tags=("sport",))
    both = dest("both", tags=("sport", "war"))
    assert names(recipients(("war", "energy"), [war, sport, both])) == ["war", "both"]
    assert names(recipients(("sport",), [war, sport, both])) == ["sport", "both"]
    assert recipients((), [war, sport]) == []  # an untagged rule reaches only untagged destinations


def test_an_untagged_destination_gets_every_rule():
    everything, war = dest("all"), dest("war", tags=("war",))
    assert names(recipients(("war",), [everything, war])) == ["all", "war"]
    assert names(recipients(("sport",), [everything, war])) == ["all"]
    assert names(recipients((), [everything, war])) == ["all"]


def test_admin_is_for_health_alerts_only():
    admin, ops = dest("admin", tags=("admin",)), dest("ops", tags=("Admin", "war"))
    assert names(recipients(("war",), [admin, ops])) == ["ops"]
    assert recipients(("admin",), [admin]) == []  # even a rule tagged admin does not reach it
    assert names(admin_recipients([admin, ops, dest("all"), dest("war", tags=("war",))])) == ["admin", "ops"]


def test_tags_compare_case_insensitively():
    assert names(recipients(("War",), [dest("w", tags=("WAR",))])) == ["w"]
    assert names(recipients(("straße",), [dest("s", tags=("STRASSE",))])) == ["s"]  # casefold, not lower


# --------------------------------------------------------------------------
# delivery plans
# --------------------------------------------------------------------------

NOON_KYIV = utc(2026, 6, 10, 9, 0)  # 12:00 EEST


def plan(destination: Destination, now: datetime = NOON_KYIV, severity: str = "info", *,
         recent: int = 0, settings: AlertSettings = SETTINGS, tz: str = KYIV) -> Plan:
    return plan_delivery(destination, severity, now, tz, recent_count=recent, settings=settings)


def test_immediate_goes_now_or_after_the_grouping_delay():
    assert plan(dest()) == Plan("immediate", NOON_KYIV, "immediate")
    grouped = plan(dest(), settings=replace(SETTINGS, grouping_delay=90))
    assert grouped == Plan("immediate", NOON_KYIV + timedelta(seconds=90), "grouping delay")


def test_a_digest_destination_waits_for_its_digest_time():
    daily = dest(mode="digest", digest_at="08:00")
    assert plan(daily) == Plan("digest", utc(2026, 6, 11, 5, 0), "digest")  # 08:00 EEST tomorrow


def test_critical_breaks_through_digest_mode_and_quiet_hours():
    daily = dest(mode="digest", digest_at="08:00")
    assert plan(daily, severity="critical") == Plan("immediate", NOON_KYIV, "critical")
    quiet = dest(quiet_hours=("22:00", "07:00"))
    night = utc(2026, 6, 10, 21, 0)  # 00:00 EEST
    assert plan(quiet, night, severity="critical") == Plan("immediate", night, "critical")
    grouped = plan(dest(), severity="critical", settings=replace(SETTINGS, grouping_delay=90))
    assert grouped.due_at == NOON_KYIV  # at once: no grouping delay either


def test_quiet_hours_hold_alerts_until_they_end():
    quiet = dest(quiet_hours=("22:00", "07:00"))
    late = utc(2026, 6, 10, 20, 30)  # 23:30 EEST
    assert plan(quiet, late) == Plan("digest", utc(2026, 6, 11, 4, 0), "quiet hours")
    assert plan(quiet, NOON_KYIV) == Plan("immediate", NOON_KYIV, "immediate")
    # A grouping delay that runs into quiet hours is held too.
    just_before = utc(2026, 6, 10, 18, 59, 30)  # 21:59:30 EEST
    held = plan(quiet, just_before, settings=replace(SETTINGS, grouping_delay=60))
    assert held == Plan("digest", utc(2026, 6, 11, 4, 0), "quiet hours")


def test_a_digest_due_inside_quiet_hours_waits_for_their_end():
    six_hourly = dest(mode="digest", digest_every=6 * 3600, quiet_hours=("22:00", "07:00"))
    evening = utc(2026, 6, 10, 19, 30)  # 22:30 EEST: the 00:00 and 06:00 digests fall in quiet hours
    assert plan(six_hourly, evening) == Plan("digest", utc(2026, 6, 11, 4, 0), "quiet hours")
    assert plan(six_hourly, NOON_KYIV) == Plan("digest", utc(2026, 6, 10, 15, 0), "digest")  # 18:00


def test_beyond_the_rate_limit_a_burst_folds_into_one_digest():
    limited = dest(rate_limit=3, rate_window=4 * 3600)
    assert plan(limited, recent=2).delivery == "immediate"
    # Slots of the 4 h window start at local midnight: 00, 04, 08, 12, 16, 20 EEST.
    burst = [plan(limited, NOON_KYIV + timedelta(minutes=17 * n), recent=3 + n) for n in range(8)]
    assert {p for p in burst} == {Plan("digest", utc(2026, 6, 10, 13, 0), "rate limit")}  # 16:00 EEST


def test_rate_limited_alerts_wait_for_the_destination_digest_and_apply_to_critical():
    limited = dest(rate_limit=1, digest_at="20:00")
    expected = Plan("digest", utc(2026, 6, 10, 17, 0), "rate limit")
    assert plan(limited, recent=1) == expected
    assert plan(limited, recent=1, severity="critical") == expected
    assert plan(limited, recent=0, severity="critical") == Plan("immediate", NOON_KYIV, "critical")


def test_a_rate_limited_digest_inside_quiet_hours_waits_for_their_end():
    limited = dest(rate_limit=1, rate_window=3600, quiet_hours=("12:30", "14:00"))
    at = utc(2026, 6, 10, 9, 40)  # 12:40 EEST: the 13:00 slot is quiet
    assert plan(limited, at, recent=5) == Plan("digest", utc(2026, 6, 10, 11, 0), "quiet hours")


# --------------------------------------------------------------------------
# digest times
# --------------------------------------------------------------------------


def digests(destination: Destination, start: datetime, count: int, tz: str = KYIV) -> list[datetime]:
    """The next `count` digest times after `start`, each computed from the one before."""
    times = []
    for _ in range(count):
        start = next_digest_time(destination, start, tz)
        times.append(start)
    return times


def test_digest_at_is_the_next_occurrence_strictly_after():
    daily = dest(mode="digest", digest_at="08:00")
    assert next_digest_time(daily, utc(2026, 6, 10, 7, 59), "UTC") == utc(2026, 6, 10, 8, 0)
    assert next_digest_time(daily, utc(2026, 6, 10, 8, 0), "UTC") == utc(2026, 6, 11, 8, 0)
    assert next_digest_time(daily, utc(2026, 12, 31, 23, 0), "UTC") == utc(2027, 1, 1, 8, 0)
    late = dest(mode="digest", digest_at="23:30")
    assert next_digest_time(late, utc(2026, 6, 10, 20, 31), KYIV) == utc(2026, 6, 11, 20, 30)


def test_digest_at_keeps_local_time_across_spring_forward():
    morning = dest(mode="digest", digest_at="09:00")
    assert digests(morning, utc(2026, 3, 27, 0, 0), 4) == [
        utc(2026, 3, 27, 7, 0), utc(2026, 3, 28, 7, 0),  # EET
        utc(2026, 3, 29, 6, 0), utc(2026, 3, 30, 6, 0),  # EEST
    ]


def test_a_digest_time_in_the_spring_gap_goes_out_when_the_gap_ends():
    in_gap = dest(mode="digest", digest_at="03:30")  # 03:30 does not exist on 2026-03-29
    assert digests(in_gap, utc(2026, 3, 27, 12, 0), 3) == [
        utc(2026, 3, 28, 1, 30),  # 03:30 EET
        utc(2026, 3, 29, 1, 0),  # 04:00 EEST, the first valid instant after the gap
        utc(2026, 3, 30, 0, 30),  # 03:30 EEST
    ]


def test_an_ambiguous_digest_time_goes_out_once_at_its_first_occurrence():
    twice = dest(mode="digest", digest_at="03:30")  # 03:30 happens twice on 2026-10-25
    assert digests(twice, utc(2026, 10, 24, 12, 0), 2) == [
        utc(2026, 10, 25, 0, 30),  # 03:30 EEST; the second, 01:30Z, is skipped
        utc(2026, 10, 26, 1, 30),  # 03:30 EET
    ]
    evening = dest(mode="digest", digest_at="18:00")
    assert digests(evening, utc(2026, 10, 24, 12, 0), 2) == [
        utc(2026, 10, 24, 15, 0), utc(2026, 10, 25, 16, 0)]  # 18:00 EEST, then 18:00 EET


def test_digest_every_gives_slots_aligned_to_local_midnight():
    six_hourly = dest(mode="digest", digest_every=6 * 3600)
    assert next_digest_time(six_hourly, utc(2026, 6, 10, 23, 0), "UTC") == utc(2026, 6, 11, 0, 0)
    assert next_digest_time(six_hourly, utc(2026, 6, 10, 6, 0), "UTC") == utc(2026, 6, 10, 12, 0)
    assert digests(six_hourly, utc(2026, 6, 10, 9, 0), 3) == [  # 12:00 EEST now
        utc(2026, 6, 10, 15, 0), utc(2026, 6, 10, 21, 0), utc(2026, 6, 11, 3, 0)]  # 18:00, 00:00, 06:00


def test_digest_every_keeps_wall_clock_slots_across_dst_changes():
    six_hourly = dest(mode="digest", digest_every=6 * 3600)
    assert digests(six_hourly, utc(2026, 3, 28, 21, 0), 5) == [
        utc(2026, 3, 28, 22, 0),  # 00:00 EET
        utc(2026, 3, 29, 3, 0), utc(2026, 3, 29, 9, 0), utc(2026, 3, 29, 15, 0),  # 06, 12, 18 EEST
        utc(2026, 3, 29, 21, 0),  # 00:00 EEST
    ]
    assert digests(six_hourly, utc(2026, 10, 24, 20, 0), 3) == [
        utc(2026, 10, 24, 21, 0),  # 00:00 EEST
        utc(2026, 10, 25, 4, 0), utc(2026, 10, 25, 10, 0),  # 06:00, 12:00 EET
    ]


def test_hourly_digests_through_the_dst_hours():
    hourly = dest(mode="digest", digest_every=3600)
    spring = digests(hourly, utc(2026, 3, 28, 23, 30), 4)  # 01:30 EET
    assert spring == [utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0),
                      utc(2026, 3, 29, 3, 0)]  # 02:00 EET, then 04:00, 05:00, 06:00 EEST
    autumn = digests(hourly, utc(2026, 10, 24, 23, 30), 3)  # 02:30 EEST
    assert autumn == [utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 2, 0), utc(2026, 10, 25, 3, 0)]
    # 03:00 EEST, then 04:00 and 05:00 EET: the repeated 03:00 hour does not get a second digest


def test_digest_every_that_does_not_divide_the_day_restarts_at_midnight():
    seven_hourly = dest(mode="digest", digest_every=7 * 3600)
    assert digests(seven_hourly, utc(2026, 6, 10, 0, 0), 4, "UTC") == [
        utc(2026, 6, 10, 7, 0), utc(2026, 6, 10, 14, 0), utc(2026, 6, 10, 21, 0), utc(2026, 6, 11, 0, 0)]


def test_multi_day_digests_fall_on_local_midnight_every_n_days():
    every_two_days = dest(mode="digest", digest_every=2 * 86400)
    first, second = digests(every_two_days, utc(2026, 6, 10, 12, 0), 2, "UTC")
    assert second - first == timedelta(days=2)
    assert first.time() == datetime.min.time() and first - utc(2026, 6, 10, 12, 0) <= timedelta(days=2)
    assert (first.date() - datetime(1970, 1, 1).date()).days % 2 == 0


def test_a_digest_destination_without_a_schedule_gets_a_daily_digest_at_local_midnight():
    unscheduled = dest(mode="digest")
    assert next_digest_time(unscheduled, NOON_KYIV, KYIV) == utc(2026, 6, 10, 21, 0)


# --------------------------------------------------------------------------
# quiet hours
# --------------------------------------------------------------------------


@pytest.mark.parametrize("at, expected", [
    (utc(2026, 6, 10, 21, 59, 59), None),
    (utc(2026, 6, 10, 22, 0), utc(2026, 6, 11, 7, 0)),  # start inclusive
    (utc(2026, 6, 10, 23, 30), utc(2026, 6, 11, 7, 0)),
    (utc(2026, 6, 11, 0, 0), utc(2026, 6, 11, 7, 0)),
    (utc(2026, 6, 11, 6, 59, 59), utc(2026, 6, 11, 7, 0)),
    (utc(2026, 6, 11, 7, 0), None),  # end exclusive
    (utc(2026, 6, 11, 12, 0), None),
])
def test_quiet_hours_wrapping_midnight(at, expected):
    assert quiet_until(dest(quiet_hours=("22:00", "07:00")), at, "UTC") == expected


@pytest.mark.parametrize("at, expected", [
    (utc(2026, 6, 10, 12, 59), None),
    (utc(2026, 6, 10, 13, 0), utc(2026, 6, 10, 15, 0)),
    (utc(2026, 6, 10, 14, 59, 59), utc(2026, 6, 10, 15, 0)),
    (utc(2026, 6, 10, 15, 0), None),
    (utc(2026, 6, 10, 23, 0), None),
])
def test_quiet_hours_within_a_day(at, expected):
    assert quiet_until(dest(quiet_hours=("13:00", "15:00")), at, "UTC") == expected


def test_quiet_hours_follow_local_time():
    night = dest(quiet_hours=("22:00", "07:00"))
    assert quiet_until(night, utc(2026, 6, 10, 19, 0), KYIV) == utc(2026, 6, 11, 4, 0)  # 22:00 EEST
    assert quiet_until(night, utc(2026, 6, 10, 4, 0), KYIV) is None  # 07:00 EEST
    # The night of the spring change: starts at 22:00 EET, ends at 07:00 EEST.
    assert quiet_until(night, utc(2026, 3, 28, 20, 0), KYIV) == utc(2026, 3, 29, 4, 0)


def test_a_quiet_period_ending_in_the_spring_gap_ends_when_the_gap_does():
    early = dest(quiet_hours=("01:00", "03:30"))
    # 02:30 EET: quiet until the gap ends at 04:00 EEST
    assert quiet_until(early, utc(2026, 3, 29, 0, 30), KYIV) == utc(2026, 3, 29, 1, 0)
    assert quiet_until(early, utc(2026, 3, 29, 1, 0), KYIV) is None  # 04:00 EEST


def test_a_quiet_period_ending_in_the_repeated_hour_ends_at_the_next_occurrence():
    early = dest(quiet_hours=("02:00", "03:30"))
    assert quiet_until(early, utc(2026, 10, 24, 23, 30), KYIV) == utc(2026, 10, 25, 0, 30)  # first 03:30
    assert quiet_until(early, utc(2026, 10, 25, 0, 45), KYIV) is None  # 03:45 EEST
    # 03:10 EET, the repeated hour: quiet again until the second 03:30.
    assert quiet_until(early, utc(2026, 10, 25, 1, 10), KYIV) == utc(2026, 10, 25, 1, 30)


def test_no_quiet_hours_and_empty_quiet_hours():
    assert quiet_until(dest(), NOON_KYIV, KYIV) is None
    assert quiet_until(dest(quiet_hours=("09:00", "09:00")), utc(2026, 6, 10, 9, 0), "UTC") is None


def test_clock_settings_are_checked():
    assert parse_clock("7:05").hour == 7 and parse_clock(" 23:59 ").minute == 59
    for bad in ("24:00", "12:60", "noon", "12"):
        with pytest.raises(ValueError, match="HH:MM"):
            parse_clock(bad)


# --------------------------------------------------------------------------
# retries
# --------------------------------------------------------------------------

RETRY = AlertSettings(retry_base=60, retry_cap=3600, max_age=24 * 3600)


def test_retries_double_then_cap():
    first = utc(2026, 6, 10, 9, 0)
    now = first + timedelta(minutes=5)
    delays = [(retry_due(n, first, now, RETRY) - now).total_seconds() for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_due(10_000, first, now, RETRY) == now + timedelta(hours=1)  # no overflow


def test_an_alert_is_dead_once_its_first_attempt_is_max_age_old():
    first = utc(2026, 6, 10, 9, 0)
    almost = first + timedelta(hours=24) - timedelta(seconds=1)
    assert retry_due(30, first, almost, RETRY) == almost + timedelta(hours=1)
    assert retry_due(30, first, first + timedelta(hours=24), RETRY) is None
    assert retry_due(2, first, first + timedelta(hours=3), replace(RETRY, max_age=3600)) is None


# --------------------------------------------------------------------------
# story keys
# --------------------------------------------------------------------------

HEADLINE = "Зеленський підписав закон про мобілізацію"


def shared(a: tuple[str, ...], b: tuple[str, ...]) -> set[str]:
    return set(a) & set(b)


def test_language_editions_of_112_ua_collide():
    ukrainian = story_keys("https://ua.112.ua/polityka/zakon-pro-mobilizaciyu-612345.html", HEADLINE)
    russian = story_keys("https://ru.112.ua/polityka/zakon-pro-mobilizaciyu-612345.html",
                         "Зеленский подписал закон о мобилизации")
    plain = story_keys("https://112.ua/polityka/zakon-pro-mobilizaciyu-612345.html", "x")
    expected = {"path:112.ua/polityka/zakon-pro-mobilizaciyu-612345.html"}
    assert shared(ukrainian, russian) == expected and shared(ukrainian, plain) == expected
    other = story_keys("https://ua.112.ua/polityka/inshyi-612346.html", "Інша новина про інші речі зовсім")
    assert not shared(ukrainian, other)


def test_language_path_segments_collide():
    ukr = story_keys("https://www.rbc.ua/ukr/news/zelenskiy-pidpisav-1750000000.html", "a")
    rus = story_keys("https://www.rbc.ua/rus/news/zelenskiy-pidpisav-1750000000.html", "b")
    en = story_keys("https://m.example.com/en/story/42", "c")
    assert shared(ukr, rus) == {"path:rbc.ua/news/zelenskiy-pidpisav-1750000000.html"}
    assert "path:example.com/story/42" in en


def test_tracking_parameters_scheme_and_www_do_not_split_a_story():
    tracked = story_keys("https://www.example.com/news/42?utm_source=telegram&id=7&fbclid=abc#comments", "t")
    clean = story_keys("https://www.example.com/news/42?id=7", "t")
    http = story_keys("http://example.com/news/42/?id=7", "t")
    assert tracked == clean
    assert "url:https://www.example.com/news/42?id=7" in tracked
    assert shared(tracked, http) == {"path:example.com/news/42?id=7"}
    assert not shared(tracked, story_keys("https://www.example.com/news/42?id=8", "t"))


def test_host_reduction_stops_at_the_registrable_domain():
    assert "path:bbc.co.uk/news/1" in story_keys("https://m.bbc.co.uk/news/1", "t")
    assert "path:ab.co.uk/news/1" in story_keys("https://ab.co.uk/news/1", "t")
    assert "path:nv.ua/news/1" in story_keys("https://www.nv.ua/news/1", "t")
    assert "path:127.0.0.1:8080/f/1" in story_keys("http://127.0.0.1:8080/f/1", "t")


def test_front_pages_and_missing_links_give_no_url_keys():
    assert story_keys("https://112.ua/", "short") == ()
    assert story_keys("https://ua.112.ua/ua/", "short") == ()
    assert story_keys(None, HEADLINE) == (f"title:{HEADLINE.casefold()}",)
    assert not any(key.startswith(("url:", "path:")) for key in story_keys("urn:uuid:1234-5678", "t"))


def test_secrets_in_a_link_stay_out_of_the_keys():
    keys = story_keys("https://user:hunter2@example.com/news/42", "t")
    assert keys == ("url:https://example.com/news/42", "path:example.com/news/42")


def test_short_titles_give_no_title_key():
    assert story_keys(None, "Breaking news") == ()
    assert story_keys(None, "Вибухи в Києві: що відомо") == ()  # 24 characters folded
    assert story_keys(None, "Вибухи у Києві: що відомо зараз") != ()


def test_title_variants_collide_but_different_numbers_do_not():
    a = story_keys(None, "«Зеленський підписав закон» про мобілізацію — ОФІЦІЙНО!")
    b = story_keys(None, '"Зеленський підписав закон" про\u00a0мобілізацію - офіційно')
    assert a == b == ("title:зеленський підписав закон про мобілізацію офіційно",)
    apostrophes = {story_keys(None, f"Обстріл Кривого Рогу: п{mark}ятеро загиблих")
                   for mark in ("'", "\u2019", "\u02bc", "`")}
    assert apostrophes == {("title:обстріл кривого рогу пятеро загиблих",)}
    assert story_keys(None, "ＮＡＴＯ summit opens in Vilnius today") == \
        story_keys(None, "NATO summit opens in Vilnius today")  # NFKC folds full-width letters
    assert story_keys(None, "Курс долара на 12 березня: 41,50 грн") != \
        story_keys(None, "Курс долара на 13 березня: 41,50 грн")


# --------------------------------------------------------------------------
# feed health
# --------------------------------------------------------------------------


def test_a_failing_feed_alerts_once_and_once_when_it_recovers():
    errors_per_poll = [0, 1, 2, 3, 4, 5, 6, 0, 0, 1, 2, 0, 1, 2, 3, 0]
    events = []
    previous = 0
    for poll, errors in enumerate(errors_per_poll):
        event = health_event(previous, errors, threshold=3)
        if event:
            events.append((poll, event))
        previous = errors
    assert events == [(3, "failing"), (7, "recovered"), (14, "failing"), (15, "recovered")]


def test_health_threshold_edge_cases():
    assert health_event(0, 1, threshold=1) == "failing"
    assert health_event(1, 2, threshold=1) is None
    assert health_event(2, 0, threshold=3) is None  # never reached the threshold: nothing to recover
    assert health_event(4, 5, threshold=0) is None and health_event(5, 0, threshold=0) is None


def test_is_silent():
    last = utc(2026, 6, 10, 9, 0)
    assert not is_silent(last, 600, 10, last + timedelta(seconds=5999))
    assert is_silent(last, 600, 10, last + timedelta(seconds=6000))
    assert not is_silent(last, 600, 0, last + timedelta(days=30))  # factor 0 disables
    assert not is_silent(None, 600, 10, last)  # no story yet: no rhythm to break
