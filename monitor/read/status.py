"""What `monitor status` shows: the daemon's health, read from its database.

The daemon writes meta keys as it runs ("daemon_started", "heartbeat" every
few seconds, "last_cycle", "config_error"); this module only reads them, with
a read-only connection, so status works from another process (or another
user) while the daemon writes. Everything returned is plain JSON-ready data:
times are ISO 8601 UTC strings with a Z.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.config.load import Config
from monitor.config.paths import DatabaseLocation
from monitor.errors import MonitorError
from monitor.ingest.schedule import is_due
from monitor.store import cluster, reads
from monitor.store.database import Store
from monitor.store.lock import daemon_lock
from monitor.store.outbox import counts as alert_counts

FIRST_CYCLE = timedelta(minutes=1)  # a first cycle not done within it is worth a look
HEARTBEAT_FRESH = timedelta(minutes=2)  # the daemon beats every ~10 s; 2 min is clearly stuck
WORKER_FRESH = timedelta(seconds=30)  # workers beat every 5 s: 30 s without one is a dead worker
FEED_STATUSES = ("ok", "error", "gone", "paused", "new")
ALERT_STATUSES = ("pending", "failed", "dead", "cancelled")  # one alert = one story to one destination


def gather_status(db_path: DatabaseLocation, config: Config | None, now: datetime) -> dict[str, Any]:
    """The daemon's state and today's counts; a missing database means nothing ran yet."""
    pid = _daemon_pid(db_path)
    storage_problem = daemon_lock(db_path).problem() if pid is not None else None
    feeds_not_stored = daemon_lock(db_path).feed_problems() if pid is not None else {}
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
            workers = cluster_view(store, now) if store.dialect == "postgresql" else None
        finally:
            store.close()
    else:
        workers = None
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
    problems = _problems(daemon, heartbeat, config_error, now, workers)
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
        **({"cluster": workers} if workers is not None else {}),
    }


def local_midnight(now: datetime, tz: str) -> datetime:
    """The start of NOW's day in the user's timezone: what "today" means to them."""
    local = now.astimezone(ZoneInfo(tz))
    return datetime.combine(local.date(), time(), tzinfo=local.tzinfo)


def _daemon_pid(db_path: DatabaseLocation) -> int | None:
    try:
        return daemon_lock(db_path).holder_pid()
    except OSError as exc:
        raise MonitorError(f"cannot check the daemon's lock beside {db_path}: {exc.strerror}") from None


def cluster_view(store: Store, now: datetime) -> dict[str, Any]:
    """The workers sharing this PostgreSQL database (alive: a heartbeat within WORKER_FRESH)
    and the job queue's depth."""
    nodes = []
    for node in cluster.nodes(store):
        age = (now - _moment(node["heartbeat"])).total_seconds()
        nodes.append({**node, "heartbeat_age": round(age, 1), "alive": age < WORKER_FRESH.total_seconds()})
    queue = cluster.job_queue(store)
    if queue is not None:
        oldest = queue.pop("oldest_waiting_since")
        queue["oldest_waiting_age"] = None if oldest is None else round((now - oldest).total_seconds(), 1)
    return {"workers": nodes, "workers_alive": sum(node["alive"] for node in nodes), "queue": queue}


def _problems(daemon: dict[str, Any], heartbeat: datetime | None, config_error: str | None,
              now: datetime, cluster_view: dict[str, Any] | None = None) -> list[str]:
    """Why the daemon (or the cluster's workers) is not healthy, in words; empty when it is."""
    alive = [node for node in (cluster_view or {}).get("workers", []) if node["alive"]]
    versions = sorted({node["config_version"] for node in alive})
    if not daemon["running"] and alive:
        problems = [] if len(versions) <= 1 else [f"workers run different configs ({', '.join(versions)})"]
    elif not daemon["running"]:
        problems = ["daemon not running" if not (cluster_view or {}).get("workers") else "no worker alive"]
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
    matches, matched_stories = reads.matches_since(store, midnight)
    return {"stories_today": reads.stories_since(store, midnight), "matched_stories_today": matched_stories,
            "matches_today": matches}


def _alert_counts(store: Store, midnight: datetime) -> dict[str, int]:
    by_status = alert_counts(store)
    return {**{status: by_status.get(status, 0) for status in ALERT_STATUSES},
            "sent_today": reads.sent_since(store, midnight),
            "stories_sent_today": _stories(reads.stories_sent_since(store, midnight))}


def _stories(items: list[tuple[str | None, str]]) -> int:
    """How many stories ITEMS (url, title) are, copies from other outlets counted once (the
    keys alerts and the Today page fold copies by): a destination that missed the first
    outlet's item is sent a copy, which is not another story."""
    from monitor.stories import story_keys

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
    stories: dict[tuple[str, str], dict[str, Any]] = {}
    # one row per destination: merge them per story
    for title, feed, reporters in reads.also_reported_since(store, midnight):
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
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
