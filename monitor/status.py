"""What `monitor status` shows: the daemon's health, read from its database.

The daemon writes meta keys as it runs ("daemon_started", "heartbeat" every
few seconds, "last_cycle", "config_error"); this module only reads them, with
a read-only connection, so status works from another process (or another
user) while the daemon writes. Everything returned is plain JSON-ready data:
times are ISO 8601 UTC strings with a Z.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from monitor.alert.outbox import counts as alert_counts
from monitor.config import Config
from monitor.errors import MonitorError
from monitor.lock import DaemonLock
from monitor.schedule import is_due
from monitor.store import Store, to_text

FIRST_CYCLE = timedelta(minutes=1)  # a first cycle not done within it is worth a look
HEARTBEAT_FRESH = timedelta(minutes=2)  # the daemon beats every ~10 s; 2 min is clearly stuck
FEED_STATUSES = ("ok", "error", "gone", "paused", "new")
ALERT_STATUSES = ("pending", "failed", "dead", "cancelled")  # one alert = one story to one destination


def gather_status(db_path: Path, config: Config | None, now: datetime) -> dict[str, Any]:
    """The daemon's state and today's counts; a missing database means nothing ran yet."""
    pid = _daemon_pid(db_path)
    storage_problem = DaemonLock(db_path).problem() if pid is not None else None
    feeds_not_stored = DaemonLock(db_path).feed_problems() if pid is not None else {}
    midnight = local_midnight(now, config.timezone if config else "UTC")
    if db_path.exists():
        store = Store.open(db_path, readonly=True)
        try:
            meta = {key: store.get_meta(key) for key in
                    ("daemon_started", "heartbeat", "last_cycle", "config_error")}
            feeds = _feed_counts(store.feed_states(), config, now)
            today = _today_counts(store, midnight)
            alerts = _alert_counts(store, midnight)
            copies = _also_reported(store, midnight)
        finally:
            store.close()
    else:
        meta = {}
        feeds = _feed_counts([], config, now)
        today = {"stories_today": 0, "matched_stories_today": 0, "matches_today": 0}
        alerts = dict.fromkeys((*ALERT_STATUSES, "sent_today", "stories_sent_today"), 0)
        copies = []
    heartbeat = _moment(meta.get("heartbeat"))
    daemon = {
        "running": pid is not None,
        "pid": pid,
        "since": _iso(_moment(meta.get("daemon_started"))),
        "last_heartbeat": _iso(heartbeat),
        "heartbeat_age": None if heartbeat is None else round((now - heartbeat).total_seconds(), 1),
        "last_cycle": _iso(_moment(meta.get("last_cycle"))),
    }
    started = _moment(meta.get("daemon_started"))
    daemon["first_cycle_under_way"] = bool(pid is not None and daemon["last_cycle"] is None
                                           and started is not None and now - started < FIRST_CYCLE)
    config_error = meta.get("config_error") or None
    problems = _problems(daemon, heartbeat, config_error, now)
    if storage_problem:
        problems.insert(0, f"the daemon {storage_problem}")
    if feeds_not_stored:
        problems.insert(1 if storage_problem else 0,
                        "polls not stored for " + ", ".join(sorted(feeds_not_stored)))
    return {
        "healthy": not problems,
        "problems": problems,
        "checked_at": _iso(now),
        "database": str(db_path),
        "config_folder": str(config.dir) if config is not None else None,
        "daemon": daemon,
        "feeds": feeds,
        **today,
        "alerts": alerts,
        "also_reported_today": copies,
        "config_error": config_error,
        "storage_problem": storage_problem,
        "feeds_not_stored": feeds_not_stored,
    }


def local_midnight(now: datetime, tz: str) -> datetime:
    """The start of NOW's day in the user's timezone: what "today" means to them."""
    local = now.astimezone(ZoneInfo(tz))
    return datetime.combine(local.date(), time(), tzinfo=local.tzinfo)


def _daemon_pid(db_path: Path) -> int | None:
    try:
        return DaemonLock(db_path).holder_pid()
    except OSError as exc:
        raise MonitorError(f"cannot check the daemon's lock beside {db_path}: {exc.strerror}") from None


def _problems(daemon: dict[str, Any], heartbeat: datetime | None, config_error: str | None,
              now: datetime) -> list[str]:
    """Why the daemon is not healthy, in words; empty when it is."""
    if not daemon["running"]:
        problems = ["daemon not running"]
    elif heartbeat is None:
        problems = ["daemon running but no heartbeat recorded"]
    elif now - heartbeat >= HEARTBEAT_FRESH:
        problems = [f"no heartbeat for {int((now - heartbeat).total_seconds())} s"]
    else:
        problems = []
    if config_error:
        problems.append("the daemon refused an invalid config")
    return problems


def _feed_counts(states: list, config: Config | None, now: datetime) -> dict[str, int]:
    """Feeds by status, counted as `feeds list` shows them: the configured feeds, each
    with its stored state or "new" when the daemon has not seen it yet (without a
    readable config, the stored feeds). backing_off overlaps: erroring feeds that
    wait out a backoff or a Retry-After before their next poll."""
    if config is not None:
        by_name = {state.name: state for state in states}
        configured = [by_name.get(feed.name) for feed in config.feeds]
        states = [state for state in configured if state is not None]
        unseen = len(configured) - len(states)
    else:
        unseen = 0
    counts = {"total": len(states) + unseen, **dict.fromkeys(FEED_STATUSES, 0), "backing_off": 0}
    counts["new"] += unseen
    for state in states:
        if state.status in counts:
            counts[state.status] += 1
        if state.status not in ("gone", "paused") and not is_due(state, now):
            counts["backing_off"] += 1
    return counts


def _today_counts(store: Store, midnight: datetime) -> dict[str, int]:
    since = to_text(midnight)
    stories = store.db.execute("SELECT COUNT(*) FROM entries WHERE first_seen >= ?", [since])
    matches = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT entry_id) FROM matches "
                               "WHERE created >= ?", [since]).fetchone()
    return {"stories_today": stories.fetchone()[0], "matched_stories_today": matches[1],
            "matches_today": matches[0]}


def _alert_counts(store: Store, midnight: datetime) -> dict[str, int]:
    by_status = alert_counts(store)
    sent_today = store.db.execute(
        "SELECT COUNT(*) FROM alerts WHERE status = 'sent' AND sent_at >= ?",
        [to_text(midnight)]).fetchone()[0]
    alerted = store.db.execute(
        "SELECT DISTINCT e.url, e.title FROM alerts a JOIN entries e ON e.id = a.entry_id "
        "WHERE a.status = 'sent' AND a.sent_at >= ?", [to_text(midnight)]).fetchall()
    return {**{status: by_status.get(status, 0) for status in ALERT_STATUSES},
            "sent_today": sent_today, "stories_sent_today": _stories(alerted)}


def _stories(items: list[tuple[str | None, str]]) -> int:
    """How many stories ITEMS (url, title) are, copies from other outlets counted once (the
    keys alerts and the Today page fold copies by): a destination that missed the first
    outlet's item is sent a copy, which is not another story."""
    from monitor.alert.route import story_keys

    owner: dict[str, int] = {}
    stories = 0
    for url, title in items:
        keys = story_keys(url, title or "")
        if not any(key in owner for key in keys):
            stories += 1
        for key in keys:
            owner.setdefault(key, stories)
    return stories


def _also_reported(store: Store, midnight: datetime, limit: int = 5) -> list[dict[str, Any]]:
    """Today's alerted stories that other outlets carried too, newest first: each alerted
    once, its copies recorded on the alert as "also reported by" instead of sent."""
    rows = store.db.execute(
        "SELECT json_extract(payload, '$.title'), json_extract(payload, '$.feed'), "
        "json_extract(payload, '$.also_reported_by') FROM alerts "
        "WHERE kind IN ('match', 'update') AND created >= ? "
        "AND json_array_length(payload, '$.also_reported_by') > 0 ORDER BY id DESC",
        [to_text(midnight)]).fetchall()
    stories: dict[tuple[str, str], dict[str, Any]] = {}
    for title, feed, reporters in rows:  # one row per destination: merge them per story
        story = stories.setdefault((feed, title), {"title": title, "feed": feed, "also_reported_by": []})
        story["also_reported_by"] += [r for r in json.loads(reporters) if r not in story["also_reported_by"]]
        if len(stories) > limit:
            stories.pop((feed, title))
            break
    return list(stories.values())


def _moment(text: str | None) -> datetime | None:
    """A meta time as the daemon wrote it (isoformat, maybe naive UTC); None if unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
