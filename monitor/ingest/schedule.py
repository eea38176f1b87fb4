"""When to poll a feed next, and what one poll's outcome does to its health.

Everything here is a plain function of `now` and the feed's stored state:
APScheduler cannot take an injected clock, so the timing logic lives here
and the scheduler only fires jobs at the times these functions compute.

Rules, in the order they apply after a poll:
1. `410 Gone` marks the feed gone: it is no longer polled until reset.
2. An error (network, HTTP, not a feed) increments the consecutive-error
   count and backs off exponentially: interval x 2^(errors-1), capped at the
   slow-probe ceiling (`max_backoff`, default 6 h). A feed is never dropped.
3. A `Retry-After` (429/503) pushes the next poll to no earlier than that.
4. Success resets the error count; the next poll is one interval later,
   jittered so that feeds on one host do not fire in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.models import FeedState, FetchOutcome, FetchResult, PollSettings

MIN_DELAY = 1.0  # seconds: never schedule a poll in the past or right now


def jittered(interval: float, jitter: float, rng: random.Random) -> float:
    """Interval spread by +/- jitter (a fraction), so polls of many feeds spread out."""
    if jitter <= 0:
        return interval
    return interval * (1.0 + rng.uniform(-jitter, jitter))


def backoff_delay(consecutive_errors: int, interval: float, max_backoff: float) -> float:
    """Seconds to wait after the Nth consecutive error: doubling, capped at the slow probe."""
    if consecutive_errors <= 0:
        return interval
    ceiling = max(max_backoff, interval)
    exponent = min(consecutive_errors - 1, 30)  # 2**30 intervals is past any ceiling
    return min(ceiling, interval * (2 ** exponent))


def is_due(state: FeedState, now: datetime) -> bool:
    """Whether `run --once` may poll this feed now: honours gone, backoff and Retry-After."""
    if state.status in ("gone", "paused", "removed"):
        return False
    if state.retry_after is not None and state.retry_after > now:
        return False
    if state.consecutive_errors > 0 and state.next_poll is not None and state.next_poll > now:
        return False
    return True


def first_poll_time(state: FeedState | None, now: datetime) -> datetime:
    """When to poll a feed the scheduler has just picked up: its stored rhythm, else now."""
    if state is None or state.next_poll is None or state.next_poll <= now:
        return now
    return state.next_poll


@dataclass(frozen=True)
class PollUpdate:
    """The feed-state columns a poll changes, ready for the store."""

    columns: dict

    @property
    def next_poll(self) -> datetime | None:
        return self.columns.get("next_poll")


def after_poll(state: FeedState, result: FetchResult, now: datetime, *, interval: float,
               poll: PollSettings, rng: random.Random,
               parse_error: str | None = None) -> PollUpdate:
    """New feed-state columns after a fetch (and parse) finished at `now`.

    `parse_error` is set when the body arrived but was not a readable feed:
    that counts as an error of kind `not_a_feed`.
    """
    columns: dict = {"last_attempt": now}
    if result.permanent_url:
        columns["url"] = result.permanent_url

    if result.outcome is FetchOutcome.GONE:
        columns.update(status="gone", last_error="HTTP 410 Gone: the publisher removed this feed",
                       last_error_kind="gone", next_poll=None, retry_after=None)
        return PollUpdate(columns)

    failed = result.outcome is FetchOutcome.ERROR or parse_error is not None
    if failed:
        errors = state.consecutive_errors + 1
        delay = backoff_delay(errors, interval, poll.max_backoff)
        next_poll = now + timedelta(seconds=max(MIN_DELAY, delay))
        if result.retry_after is not None and result.retry_after > next_poll:
            next_poll = result.retry_after
        columns.update(
            status="error",
            consecutive_errors=errors,
            last_error=parse_error or result.error or "unknown error",
            last_error_kind="not_a_feed" if parse_error else (result.error_kind or "error"),
            retry_after=result.retry_after,
            next_poll=next_poll,
        )
        return PollUpdate(columns)

    columns.update(
        status="ok",
        consecutive_errors=0,
        last_success=now,
        last_error=None,
        last_error_kind=None,
        retry_after=None,
        next_poll=now + timedelta(seconds=max(MIN_DELAY, jittered(interval, poll.jitter, rng))),
    )
    if result.outcome is FetchOutcome.OK:
        columns.update(etag=result.etag, last_modified=result.last_modified,
                       body_hash=result.body_hash)
    elif result.outcome is FetchOutcome.NOT_MODIFIED:
        # A 304 may carry fresh validators; keep the old ones otherwise.
        if result.etag:
            columns["etag"] = result.etag
        if result.last_modified:
            columns["last_modified"] = result.last_modified
    return PollUpdate(columns)


def counts_as_new(published: datetime | None, now: datetime, *, baselined: bool,
                  backlog_window: float) -> bool:
    """Whether a story never seen before should alert.

    After a feed's first successful poll every new story alerts. During that
    first poll (the baseline) only stories published within the backlog window
    do; the rest of the backlog is recorded as seen. A story without a date
    cannot prove it is recent, so it does not alert in a baseline.
    """
    if baselined:
        return True
    if backlog_window <= 0 or published is None:
        return False
    return now - published <= timedelta(seconds=backlog_window)
