"""Next-poll, backoff, Retry-After and baseline logic as plain functions of `now`."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from monitor.ingest.schedule import after_poll, backoff_delay, counts_as_new, first_poll_time, is_due, jittered
from monitor.models import FeedState, FetchOutcome, FetchResult, PollSettings

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
POLL = PollSettings(jitter=0.0, max_backoff=6 * 3600)


def state(**kw) -> FeedState:
    base = dict(id=1, name="f", url="http://127.0.0.1/f", status="ok")
    base.update(kw)
    return FeedState(**base)


def result(outcome: FetchOutcome, **kw) -> FetchResult:
    return FetchResult(outcome=outcome, url="http://127.0.0.1/f", final_url="http://127.0.0.1/f", **kw)


def test_backoff_doubles_and_caps_at_the_slow_probe():
    delays = [backoff_delay(n, 600, 6 * 3600) for n in range(1, 8)]
    assert delays == [600, 1200, 2400, 4800, 9600, 19200, 21600]
    assert backoff_delay(10_000, 600, 6 * 3600) == 21600  # no overflow
    assert backoff_delay(3, 86400, 6 * 3600) == 86400  # an interval above the ceiling wins


def test_success_schedules_one_interval_later_and_resets_errors():
    update = after_poll(state(consecutive_errors=3, last_error="x"), result(FetchOutcome.OK, etag='"e"', body_hash="h"),
                        NOW, interval=600, poll=POLL, rng=random.Random(0))
    cols = update.columns
    assert cols["next_poll"] == NOW + timedelta(seconds=600)
    assert cols["consecutive_errors"] == 0 and cols["last_error"] is None
    assert cols["status"] == "ok" and cols["etag"] == '"e"' and cols["body_hash"] == "h"


def test_jitter_stays_within_the_fraction():
    rng = random.Random(42)
    values = [jittered(600, 0.1, rng) for _ in range(200)]
    assert min(values) >= 540 and max(values) <= 660 and len(set(values)) > 100


def test_error_backs_off_and_retry_after_wins_when_later():
    later = NOW + timedelta(hours=2)
    update = after_poll(state(consecutive_errors=1), result(FetchOutcome.ERROR, status=429, error="HTTP 429",
                                                            error_kind="http", retry_after=later),
                        NOW, interval=600, poll=POLL, rng=random.Random(0))
    assert update.columns["consecutive_errors"] == 2
    assert update.columns["next_poll"] == later
    early = after_poll(state(), result(FetchOutcome.ERROR, error="HTTP 503", error_kind="http",
                                       retry_after=NOW + timedelta(seconds=5)),
                       NOW, interval=600, poll=POLL, rng=random.Random(0))
    assert early.columns["next_poll"] == NOW + timedelta(seconds=600)


def test_gone_stops_polling_and_parse_error_counts_as_error():
    gone = after_poll(state(), result(FetchOutcome.GONE, status=410), NOW, interval=600, poll=POLL,
                      rng=random.Random(0))
    assert gone.columns["status"] == "gone" and gone.columns["next_poll"] is None
    bad = after_poll(state(), result(FetchOutcome.OK, status=200), NOW, interval=600, poll=POLL,
                     rng=random.Random(0), parse_error="not a feed: HTML page")
    assert bad.columns["last_error_kind"] == "not_a_feed" and bad.columns["consecutive_errors"] == 1


def test_permanent_redirect_updates_url_only_when_reported():
    moved = after_poll(state(), result(FetchOutcome.NOT_MODIFIED, permanent_url="http://127.0.0.1/new"),
                       NOW, interval=600, poll=POLL, rng=random.Random(0))
    assert moved.columns["url"] == "http://127.0.0.1/new"
    stayed = after_poll(state(), result(FetchOutcome.NOT_MODIFIED), NOW, interval=600, poll=POLL,
                        rng=random.Random(0))
    assert "url" not in stayed.columns


def test_is_due_honours_gone_backoff_and_retry_after():
    assert is_due(state(), NOW)
    assert not is_due(state(status="gone"), NOW)
    assert not is_due(state(status="error", consecutive_errors=2, next_poll=NOW + timedelta(minutes=5)), NOW)
    assert is_due(state(status="error", consecutive_errors=2, next_poll=NOW - timedelta(seconds=1)), NOW)
    assert not is_due(state(retry_after=NOW + timedelta(minutes=1)), NOW)
    # a healthy feed whose next poll is later is still due for --once (interval ignored)
    assert is_due(state(next_poll=NOW + timedelta(minutes=9)), NOW)


def test_restart_resumes_the_stored_rhythm():
    assert first_poll_time(None, NOW) == NOW
    assert first_poll_time(state(next_poll=NOW + timedelta(minutes=4)), NOW) == NOW + timedelta(minutes=4)
    assert first_poll_time(state(next_poll=NOW - timedelta(hours=1)), NOW) == NOW


def test_baseline_counts_only_recent_dated_stories_as_new():
    window = 24 * 3600
    assert counts_as_new(NOW - timedelta(hours=23), NOW, baselined=False, backlog_window=window)
    assert not counts_as_new(NOW - timedelta(hours=25), NOW, baselined=False, backlog_window=window)
    assert not counts_as_new(None, NOW, baselined=False, backlog_window=window)
    assert not counts_as_new(NOW, NOW, baselined=False, backlog_window=0)
    assert counts_as_new(NOW - timedelta(days=30), NOW, baselined=True, backlog_window=window)
