"""`monitor status`: health and today's counts read from a real database the daemon
would have written, and the command as a real subprocess with its exit codes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config.load import Config
from monitor.models import Entry, FeedConfig, FetchSettings, Hit, Match, PollSettings
from monitor.read.status import gather_status
from monitor.store.database import Store
from monitor.store.lock import DaemonLock
from monitor.store.values import to_text
from test_cli import monitor

NOW = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)  # 01:30 on Jan 16 in Kyiv (UTC+2)
YESTERDAY = datetime(2026, 1, 14, 12, 0, tzinfo=UTC)
UTC_TODAY_KYIV_YESTERDAY = datetime(2026, 1, 15, 21, 0, tzinfo=UTC)
TODAY_EVERYWHERE = datetime(2026, 1, 15, 22, 30, tzinfo=UTC)
FEEDS = ("okfeed", "backoff", "limited", "due-again", "gone", "paused", "fresh")


def feed_configs(names=FEEDS) -> list[FeedConfig]:
    return [FeedConfig(name, f"http://127.0.0.1/{name}.xml", 600.0) for name in names]


def story(guid: str) -> Entry:
    return Entry(feed="okfeed", guid=guid, url=f"https://news.example/{guid}", title=f"Story {guid}",
                 content_hash=guid)


def drones() -> Match:
    return Match("drones", 3.0, "warning", (), (Hit("title", 0, 5, "drone"),), "[[drone]] strike")


def poll_failed(store: Store, name: str, now: datetime, **state) -> None:
    store.record_poll(name, {"status": "error", "last_attempt": now, **state},
                      {"at": now, "outcome": "error"}, keep=10)


def add_alert(store: Store, status: str, sent_at: datetime | None = None) -> None:
    with store.transaction():
        store.db.table("alerts").insert({
            "kind": "match", "destination": "mail", "status": status, "delivery": "immediate",
            "due_at": to_text(NOW), "created": to_text(NOW), "sent_at": to_text(sent_at),
            "payload": "{}"})


def build_db(path: Path, *, now: datetime = NOW,
             heartbeat: datetime | None = NOW - timedelta(seconds=10)) -> None:
    """Feeds in every state (backoffs relative to NOW), stories on both sides of midnight
    on Jan 15, alerts in every status."""
    store = Store.open(path)
    try:
        store.sync_feeds(feed_configs(FEEDS + ("dropped",)), YESTERDAY)
        store.sync_feeds(feed_configs(), YESTERDAY)  # "dropped" is removed: not counted
        for when in (YESTERDAY, UTC_TODAY_KYIV_YESTERDAY, TODAY_EVERYWHERE):
            guid = when.isoformat()
            matches = [] if when == YESTERDAY else [drones()]
            store.save_poll("okfeed", [(story(guid), "new", True, matches)], when,
                            {"status": "ok"}, {"outcome": "ok"}, keep=10)
        poll_failed(store, "backoff", now, consecutive_errors=3, next_poll=now + timedelta(hours=1))
        poll_failed(store, "limited", now, consecutive_errors=1, retry_after=now + timedelta(minutes=5))
        poll_failed(store, "due-again", now, consecutive_errors=1, next_poll=now - timedelta(minutes=1))
        store.record_poll("gone", {"status": "gone"}, {"at": now, "outcome": "gone"}, keep=10)
        store.set_feed_status("paused", "paused")
        for status in ("pending", "pending", "failed", "dead", "duplicate"):
            add_alert(store, status)
        add_alert(store, "sent", sent_at=NOW - timedelta(minutes=30))
        add_alert(store, "sent", sent_at=YESTERDAY)
        store.set_meta("daemon_started", (NOW - timedelta(days=2)).isoformat())
        store.set_meta("last_cycle", (NOW - timedelta(minutes=1)).isoformat())
        if heartbeat is not None:
            store.set_meta("heartbeat", heartbeat.isoformat())
    finally:
        store.close()


def set_meta(path: Path, key: str, value: str) -> None:
    store = Store.open(path)
    try:
        store.set_meta(key, value)
    finally:
        store.close()


def kyiv_config(tmp_path: Path) -> Config:
    return Config(dir=tmp_path, fetch=FetchSettings(), poll=PollSettings(), feeds=(),
                  timezone="Europe/Kyiv", log_level="info")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "monitor.db"
    build_db(path)
    return path


def test_running_daemon_with_fresh_heartbeat_is_healthy_and_counted(db: Path) -> None:
    with DaemonLock(db):
        status = gather_status(db, None, NOW)
    assert status["healthy"] is True and status["problems"] == []
    assert status["daemon"] == {
        "running": True, "pid": os.getpid(), "since": "2026-01-13T23:30:00Z",
        "last_heartbeat": "2026-01-15T23:29:50Z", "heartbeat_age": 10.0,
        "last_cycle": "2026-01-15T23:29:00Z", "first_cycle_under_way": False}
    assert status["feeds"] == {"total": 7, "ok": 1, "error": 3, "gone": 1, "paused": 1, "new": 1,
                               "backing_off": 2}
    assert status["stories_today"] == 2 and status["matches_today"] == 2  # UTC day
    assert status["matched_stories_today"] == 2
    assert status["alerts"] == {"pending": 2, "failed": 1, "dead": 1, "cancelled": 0, "sent_today": 1,
                                "stories_sent_today": 0}  # these alerts have no story
    assert status["config_error"] is None
    json.dumps(status)  # plain data all the way down


def test_today_starts_at_midnight_in_the_configured_timezone(db: Path, tmp_path: Path) -> None:
    status = gather_status(db, kyiv_config(tmp_path), NOW)
    # 21:00 UTC was 23:00 the day before in Kyiv; only the 22:30 UTC story is "today".
    assert status["stories_today"] == 1 and status["matches_today"] == 1


def test_no_daemon_is_unhealthy_but_still_reports(db: Path) -> None:
    status = gather_status(db, None, NOW)
    assert status["healthy"] is False and status["problems"] == ["daemon not running"]
    assert status["daemon"]["running"] is False and status["daemon"]["pid"] is None
    assert status["daemon"]["since"] == "2026-01-13T23:30:00Z"
    assert status["feeds"]["total"] == 7


def test_stale_or_missing_heartbeat_is_unhealthy(tmp_path: Path) -> None:
    stale = tmp_path / "stale.db"
    build_db(stale, heartbeat=NOW - timedelta(minutes=3))
    silent = tmp_path / "silent.db"
    build_db(silent, heartbeat=None)
    with DaemonLock(stale), DaemonLock(silent):
        stale_status = gather_status(stale, None, NOW)
        silent_status = gather_status(silent, None, NOW)
    assert stale_status["healthy"] is False and stale_status["problems"] == ["no heartbeat for 180 s"]
    assert stale_status["daemon"]["running"] is True
    assert silent_status["healthy"] is False
    assert silent_status["daemon"]["last_heartbeat"] is None


def test_config_error_is_shown_and_unhealthy_until_cleared(db: Path) -> None:
    error = "/etc/monitor/watch.toml:3:9: rules.drones.any: expected a list"
    set_meta(db, "config_error", error)
    with DaemonLock(db):
        refused = gather_status(db, None, NOW)
        set_meta(db, "config_error", "")
        fixed = gather_status(db, None, NOW)
    assert refused["config_error"] == error and refused["healthy"] is False
    assert refused["problems"] == ["the daemon refused an invalid config"]
    assert fixed["config_error"] is None and fixed["healthy"] is True


def test_a_storage_problem_said_through_the_lock_file_is_shown_until_cleared(db: Path) -> None:
    problem = "cannot write to the database since 2026-01-15T23:29:00Z: database or disk is full"
    with DaemonLock(db) as lock:
        lock.note_problem(problem)
        full = gather_status(db, None, NOW)
        assert DaemonLock(db).holder_pid() == os.getpid()  # the pid line is intact
        lock.note_problem(None)
        cleared = gather_status(db, None, NOW)
    assert full["storage_problem"] == problem and full["healthy"] is False
    assert full["problems"] == [f"the daemon {problem}"]
    assert cleared["storage_problem"] is None and cleared["healthy"] is True
    assert os.path.getsize(str(db) + ".lock") == 1024  # rewritten in place, never grown
    assert DaemonLock(db).problem() is None  # no daemon holds the lock: no problem to tell


def test_missing_database_is_a_down_daemon_with_zero_counts(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "monitor.db"
    status = gather_status(path, None, NOW)
    assert status["healthy"] is False and status["daemon"]["running"] is False
    assert status["feeds"] == dict.fromkeys(("total", "ok", "error", "gone", "paused", "new",
                                             "backing_off"), 0)
    assert status["stories_today"] == status["matches_today"] == 0
    assert set(status["alerts"].values()) == {0}
    assert not path.parent.exists(), "status never creates the database"


def test_status_reads_while_the_daemon_holds_a_write_transaction(db: Path) -> None:
    writer = Store.open(db)
    try:
        writer.db.execute("BEGIN IMMEDIATE")
        writer.db.execute("UPDATE feeds SET status = 'ok' WHERE name = 'fresh'")
        status = gather_status(db, None, NOW)
        writer.db.rollback()
    finally:
        writer.close()
    assert status["feeds"]["new"] == 1, "the uncommitted write is not seen, and nothing blocks"


# --------------------------------------------------------------------------
# the command, as a real process
# --------------------------------------------------------------------------


def live_db(env: dict[str, str]) -> Path:
    path = Path(env["MONITOR_DB"])
    now = datetime.now(UTC)
    build_db(path, now=now, heartbeat=now)
    return path


def test_status_json_exit_codes_follow_health(env) -> None:
    path = live_db(env)
    with DaemonLock(path):
        healthy = monitor("status", "--json", env=env)
        set_meta(path, "config_error", "feeds.toml:3: feeds[0].url: not a URL")
        refused = monitor("status", "--json", env=env)
    down = monitor("status", "--json", env=env)

    assert healthy.returncode == 0, healthy.stderr
    assert len(healthy.stdout.splitlines()) == 1, "one JSON object"
    data = json.loads(healthy.stdout)
    assert data["healthy"] is True and data["daemon"]["running"] is True
    assert data["feeds"]["total"] == 7 and data["alerts"]["pending"] == 2

    assert refused.returncode == 1
    assert json.loads(refused.stdout)["config_error"] == "feeds.toml:3: feeds[0].url: not a URL"

    assert down.returncode == 1
    assert json.loads(down.stdout)["daemon"]["running"] is False
    assert "Traceback" not in down.stderr


def test_status_summary_is_one_line_per_section_without_colour_off_a_terminal(env) -> None:
    path = live_db(env)
    set_meta(path, "config_error", "watch.toml:7:1: rules.x: unknown key 'anyy'\n  anyy = [1]\n  ^")
    with DaemonLock(path):
        result = monitor("status", env=env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "status:  NOT healthy: the daemon refused an invalid config"
    assert lines[1].startswith("daemon:  running (pid ")
    assert "feeds:   7 total: 1 ok, 3 erroring, 2 backing off, 1 gone, 1 paused, 1 never polled" in lines
    assert ("alerts:  2 pending, 1 failed (retrying), 1 dead, 0 cancelled, 0 sent today "
            "(0 stories; one alert per story and destination)") in lines
    assert "config:  error: watch.toml:7:1: rules.x: unknown key 'anyy'" in lines
    assert "\x1b[" not in result.stdout


def test_status_of_a_fresh_install_says_the_daemon_is_down(env) -> None:
    result = monitor("status", env=env)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "status:  NOT healthy: daemon not running"
    assert not Path(env["MONITOR_DB"]).exists()


def test_status_help_documents_exit_codes_and_examples(env) -> None:
    text = monitor("status", "--help", env=env, check=True).stdout
    assert "Exit codes: 0 healthy" in text and "monitor status --json" in text
