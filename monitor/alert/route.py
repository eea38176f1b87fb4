"""Who gets an alert, when it goes out, and when a failed send is retried (copies of one story: monitor.stories).

Everything here is a plain function of an injected `now` (aware datetimes;
results are aware UTC), so digests, quiet hours and retries are tested with
fixed clocks. Wall-clock settings (`digest_at`, `quiet_hours`, digest slots)
are read in the configured time zone and turned into UTC instants DST-safely:
a wall time that does not exist (the spring-forward gap) means the first
valid instant after it; one that happens twice (fall-back) means the first,
except that a quiet period ends at whichever occurrence comes next.

Routing (the project's own; apprise's tag filter skips untagged URLs):
- a destination receives a rule's alert when they share any tag, compared
  case-insensitively;
- a destination without tags receives every rule's alerts;
- the tag `admin` is for feed-health alerts only: it never routes a rule's
  alert, so a destination tagged only `admin` receives none of them.

Delivery plan of one alert (one story) for one destination, first rule that
applies wins; `severity` is the story's top severity among the rules routed
to the destination, so one critical rule is enough to break through:
1. Rate limit: when `rate_limit` is set and `recent_count` (stories already
   planned as immediate alerts for this destination within `rate_window`,
   however many rules each matched) has reached it, the alert folds into a
   digest instead of being dropped.
   It is due at the destination's next digest time if it has a digest
   schedule, else at the next `rate_window` slot since local midnight, so a
   whole burst shares one due time and goes out as one message. This holds
   for critical alerts too: a storm of critical stories must not flood.
2. Severity `critical` goes out at once (due now, no grouping delay), breaking
   through digest mode and quiet hours alike.
3. A digest destination: due at its next digest time.
4. Quiet hours active now (or when the grouping delay ends): held as a digest
   due when the quiet period ends.
5. Otherwise immediate, due after the grouping delay (0 = now), so copies of a
   story arriving together can be merged.
A digest due time (rules 1 and 3) that falls inside quiet hours moves to the
end of the quiet period: quiet hours hold digests too.

Digest times: `digest_at` "HH:MM" is the next occurrence of that local time
strictly after the given instant. `digest_every` N seconds gives aligned
slots: multiples of N since local midnight (N = 6 h gives 00:00, 06:00, 12:00,
18:00 local every day, DST or not; a slot length that does not divide the day
restarts at midnight); N of a day or more counts whole multiples from local
midnight of 1970-01-01. `digest_at` wins when both are set; a digest
destination with neither gets a daily digest at local midnight.

Retries double from `retry_base` up to `retry_cap`; an alert whose first
attempt is `max_age` old is dead. Feed health alerts fire on the transition
into failing and out of it, never on every poll.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.models import AlertSettings, Destination

ADMIN_TAG = "admin"
DAY = 86400.0
DEFAULT_DIGEST_EVERY = DAY  # a digest destination without a schedule: daily at local midnight
_EPOCH_WALL = datetime(1970, 1, 1)  # naive: local midnight that multi-day digest slots count from
_MAX_DOUBLINGS = 40  # 2**40 retry_base is past any cap; keeps the power finite


# --------------------------------------------------------------------------
# routing
# --------------------------------------------------------------------------


def recipients(rule_tags: Sequence[str], destinations: Sequence[Destination]) -> list[Destination]:
    """The destinations that receive a rule's alerts, in configuration order.

    A story's alert to a destination names the story's rules routed there."""
    wanted = _folded(rule_tags) - {ADMIN_TAG}  # so `admin` on both sides never matches
    return [destination for destination in destinations
            if not destination.tags or _folded(destination.tags) & wanted]


def admin_recipients(destinations: Sequence[Destination]) -> list[Destination]:
    """The destinations that receive feed-health alerts: those tagged `admin`."""
    return [destination for destination in destinations if ADMIN_TAG in _folded(destination.tags)]


def _folded(tags: Sequence[str]) -> set[str]:
    return {tag.strip().casefold() for tag in tags}


# --------------------------------------------------------------------------
# delivery plan
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How and when the dispatcher sends one alert to one destination, and why."""

    delivery: str  # "immediate" | "digest"
    due_at: datetime  # aware UTC
    reason: str  # immediate, grouping delay, digest, quiet hours, rate limit, critical


def plan_delivery(destination: Destination, severity: str, now: datetime, tz: str, *,
                  recent_count: int, settings: AlertSettings) -> Plan:
    """The plan for one new alert; the rules and their order are in the module docstring."""
    now = now.astimezone(UTC)
    if destination.rate_limit is not None and recent_count >= destination.rate_limit:
        if has_digest_schedule(destination):
            due = next_digest_time(destination, now, tz)
        else:
            due = _next_slot(now, destination.rate_window, ZoneInfo(tz))
        return _held(destination, due, "rate limit", tz)
    if severity == "critical":
        return Plan("immediate", now, "critical")
    if destination.mode == "digest":
        return _held(destination, next_digest_time(destination, now, tz), "digest", tz)
    due = now + timedelta(seconds=settings.grouping_delay)
    quiet_end = quiet_until(destination, now, tz) or quiet_until(destination, due, tz)
    if quiet_end is not None:
        return Plan("digest", quiet_end, "quiet hours")
    return Plan("immediate", due, "grouping delay" if settings.grouping_delay > 0 else "immediate")


def _held(destination: Destination, due: datetime, reason: str, tz: str) -> Plan:
    """A digest plan, moved to the end of quiet hours when its due time falls inside them."""
    quiet_end = quiet_until(destination, due, tz)
    if quiet_end is not None:
        return Plan("digest", quiet_end, "quiet hours")
    return Plan("digest", due, reason)


def has_digest_schedule(destination: Destination) -> bool:
    """Whether the destination names its own digest times (rate-limited alerts then wait for them)."""
    return destination.digest_at is not None or destination.digest_every is not None


# --------------------------------------------------------------------------
# digest times and quiet hours
# --------------------------------------------------------------------------


def next_digest_time(destination: Destination, after: datetime, tz: str) -> datetime:
    """When the destination's next digest is due, strictly after `after` (rules in the docstring)."""
    zone = ZoneInfo(tz)
    after = after.astimezone(UTC)
    if destination.digest_at is not None:
        return _next_daily(parse_clock(destination.digest_at), after, zone)
    return _next_slot(after, destination.digest_every or DEFAULT_DIGEST_EVERY, zone)


def quiet_until(destination: Destination, at: datetime, tz: str) -> datetime | None:
    """End of the quiet period `at` falls in (start inclusive, end exclusive), else None.

    The period may wrap midnight (22:00-07:00). Equal start and end mean no
    quiet hours at all.
    """
    if destination.quiet_hours is None:
        return None
    start, end = (parse_clock(text) for text in destination.quiet_hours)
    zone = ZoneInfo(tz)
    at = at.astimezone(UTC)
    local = at.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start <= end else (clock >= start or clock < end)
    if not inside:
        return None
    days = (local.date(), local.date() + timedelta(days=1))  # the end is today or tomorrow
    return next(instant for day in days for instant in _occurrences(datetime.combine(day, end), zone)
                if instant > at)


def parse_clock(text: str) -> time:
    """A wall-clock "HH:MM" setting as a time; ValueError quoting it otherwise."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"invalid time of day {text!r}: expected HH:MM such as '07:30'")
    return time(int(match[1]), int(match[2]))


def _next_daily(clock: time, after: datetime, zone: ZoneInfo) -> datetime:
    """The first occurrence of local `clock` strictly after `after`: today's, else tomorrow's."""
    today = after.astimezone(zone).date()
    candidate = _occurrences(datetime.combine(today, clock), zone)[0]
    if candidate > after:
        return candidate
    return _occurrences(datetime.combine(today + timedelta(days=1), clock), zone)[0]


def _next_slot(after: datetime, every: float, zone: ZoneInfo) -> datetime:
    """The first aligned wall-clock slot of `every` seconds strictly after `after`."""
    wall = after.astimezone(zone).replace(tzinfo=None)
    if every >= DAY:
        slots = _multi_day_slots(wall, every)
    else:
        slots = _daily_slots(wall, every)
    return next(instant for instant in (_occurrences(slot, zone)[0] for slot in slots)
                if instant > after)


def _daily_slots(wall: datetime, every: float) -> Iterator[datetime]:
    """Naive wall times midnight + k*every, restarting each midnight, from the slot holding `wall`."""
    day = wall.date()
    index = int((wall - datetime.combine(day, time())).total_seconds() // every)
    while True:
        offset = index * every
        if offset >= DAY:
            day, index, offset = day + timedelta(days=1), 0, 0.0
        yield datetime.combine(day, time()) + timedelta(seconds=offset)
        index += 1


def _multi_day_slots(wall: datetime, every: float) -> Iterator[datetime]:
    """Naive wall times 1970-01-01 00:00 + k*every, from the slot holding `wall`."""
    index = int((wall - _EPOCH_WALL).total_seconds() // every)
    while True:
        yield _EPOCH_WALL + timedelta(seconds=index * every)
        index += 1


def _occurrences(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants a naive local wall time names, earliest first.

    One normally, two in a fall-back overlap; in a spring-forward gap the
    time never shows, and the first valid instant after it stands in.
    """
    found: list[datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall and instant not in found:
            found.append(instant)
    return sorted(found) or [_gap_end(wall, zone)]


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant ending the gap `wall` falls in (found by bisection to the second)."""
    guesses = [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    before, after = min(guesses), max(guesses)  # before has the old offset, after the new one
    old_offset = before.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + timedelta(seconds=(after - before).total_seconds() // 2)
        if middle.astimezone(zone).utcoffset() == old_offset:
            before = middle
        else:
            after = middle
    return after


# --------------------------------------------------------------------------
# retries
# --------------------------------------------------------------------------


def retry_due(attempts: int, first_attempt_at: datetime, now: datetime,
              settings: AlertSettings) -> datetime | None:
    """When to try again after the Nth failed attempt, or None once the alert is too old to send."""
    if now - first_attempt_at >= timedelta(seconds=settings.max_age):
        return None
    doublings = min(max(attempts - 1, 0), _MAX_DOUBLINGS)
    delay = min(settings.retry_cap, settings.retry_base * 2 ** doublings)
    return now + timedelta(seconds=delay)


# --------------------------------------------------------------------------
# feed health
# --------------------------------------------------------------------------


def health_event(previous_errors: int, errors: int, threshold: int) -> str | None:
    """"failing" when the error run reaches `threshold`, "recovered" when a failing feed succeeds.

    Both fire on the transition only, so a feed failing for a hundred polls
    alerts once, and once more when it comes back. A threshold of 0 disables.
    """
    if threshold <= 0:
        return None
    if previous_errors < threshold <= errors:
        return "failing"
    if previous_errors >= threshold and errors == 0:
        return "recovered"
    return None


def is_silent(last_new_story_at: datetime | None, interval: float, factor: float,
              now: datetime) -> bool:
    """Whether a feed has gone `factor` x `interval` without a new story (factor 0 disables).

    A feed that never had a story has no rhythm to break, so it is not silent.
    """
    if factor <= 0 or last_new_story_at is None:
        return False
    return now - last_new_story_at >= timedelta(seconds=interval * factor)
