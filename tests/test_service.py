"""The daemon as a real process: alerts within an interval, reload, refusal of a bad
config, SIGTERM, SIGKILL and restart, sd_notify and the watchdog."""

from __future__ import annotations

import random
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.daemon import DaemonProcess, NotifySocket, db_rows, wait_until
from support.feeds import Item, rss
from support.feedserver import send, static
from support.watch import CHINA_DRONES_WATCH
from test_cli import monitor

WATCH = CHINA_DRONES_WATCH

START = datetime.now(UTC) - timedelta(hours=1)


class Feed:
    """A feed whose items tests append to while the daemon polls it."""

    def __init__(self, server, path: str = "/feed") -> None:
        self.server, self.path, self.items = server, path, [Item("0", "Weather in Kyiv", published=START)]
        self._publish()

    def add(self, guid: str, title: str) -> None:
        self.items.append(Item(guid, title, published=datetime.now(UTC)))
        self._publish()

    def _publish(self) -> None:
        self.server.routes[self.path] = static(rss(list(self.items)))


def setup(env, feed_server, destination_url: str, *, interval: str = "1s") -> Feed:
    cfg = Path(env["MONITOR_CONFIG"])
    monitor("init", str(cfg), "--no-feeds", env=env, check=True)
    (cfg / "watch.toml").write_text(WATCH, encoding="utf-8")
    (cfg / "alerts.toml").write_text(f'[[destination]]\nname = "desk"\nurl = "{destination_url}"\n')
    (cfg / "monitor.toml").write_text('[poll]\njitter = 0\n[fetch]\ndeadline = "30s"\n')
    feed = Feed(feed_server)
    monitor("feeds", "add", feed_server.url("/feed"), "--name", "local", "--interval", interval,
            env=env, check=True)
    return feed


def test_alert_reload_refused_edit_and_clean_stop(env, feed_server, smtp):
    feed = setup(env, feed_server, smtp.url())
    cfg, db = Path(env["MONITOR_CONFIG"]), Path(env["MONITOR_DB"])
    daemon = DaemonProcess(env).start()
    try:
        assert wait_until(lambda: db_rows(db, "select count(*) from entries") == [(1,)], 20), daemon.output()

        feed.add("1", "Chinese drone parts reach Russia")
        assert smtp.wait_for(1, timeout=1 + 5 + 2), daemon.output()
        assert "Chinese drone parts" in smtp.messages[0]["subject"]

        (cfg / "watch.toml").write_text(WATCH.replace('"drone*"', '"drone*", "satellite*"'))
        daemon.signal(signal.SIGHUP)
        assert wait_until(lambda: "reloaded" in daemon.output(), 10), daemon.output()
        feed.add("2", "Chinese satellite images shared with Moscow")
        assert smtp.wait_for(2, timeout=8), daemon.output()

        (cfg / "watch.toml").write_text(WATCH.replace("NEAR/10 #drones", "NEAR/10 (#drones"))
        daemon.signal(signal.SIGHUP)
        assert wait_until(lambda: "reload refused" in daemon.output(), 10), daemon.output()
        error = db_rows(db, "select value from meta where key = 'config_error'")[0][0]
        assert "watch.toml" in error and "never closed" in error
        feed.add("3", "Beijing drone shipments grow")
        assert smtp.wait_for(3, timeout=8), "the old rules still alert"
        assert "satellite" not in smtp.messages[2]["subject"]

        assert daemon.stop(timeout=10) == 0
    finally:
        daemon.ensure_dead()
    assert len(smtp.messages) == 3


def test_sigkill_at_random_moments_loses_no_alert(env, feed_server, webhook):
    feed = setup(env, feed_server, webhook.url())
    rng = random.Random(20261129)
    kills = 4
    expected = set()
    daemon = DaemonProcess(env)
    try:
        for i in range(kills):
            daemon.start()
            title = f"Chinese drone batch {i} seized"
            feed.add(f"k{i}", title)
            expected.add(title)
            wait_until(lambda: False, rng.uniform(0.2, 2.5))  # a random moment of the cycle
            daemon.kill()
        daemon.start()
        assert wait_until(lambda: {p["title"].split("] ", 1)[1].split(" — ")[0] for p in webhook.posts}
                          >= expected, 30), daemon.output()
        assert wait_until(lambda: "daemon started" in daemon.output(), 10)
        assert daemon.stop() == 0
    finally:
        daemon.ensure_dead()
    titles = [p["title"] for p in webhook.posts]
    duplicates = len(titles) - len(set(titles))
    assert duplicates <= kills, titles


def test_sd_notify_ready_reload_status_and_watchdog_stops_when_polls_stall(env, feed_server, tmp_path, smtp):
    setup(env, feed_server, smtp.url())
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {**env, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"}
    daemon = DaemonProcess(env).start()
    release = threading.Event()
    try:
        assert wait_until(lambda: notify.count("READY=1") >= 1, 20), daemon.output()
        assert wait_until(lambda: notify.count("WATCHDOG=1") >= 2, 10), notify.messages
        assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in notify.messages)

        daemon.signal(signal.SIGHUP)
        assert wait_until(lambda: notify.count("RELOADING=1") == 1 and notify.count("READY=1") >= 2, 10)
        reloading = next(m for m in notify.messages if "RELOADING=1" in m.split("\n"))
        assert any(line.startswith("MONOTONIC_USEC=") for line in reloading.split("\n"))

        def hang(handler):  # polls stall: the server never answers
            release.wait(60)
            send(handler, 503, b"")

        feed_server.routes["/feed"] = hang
        assert wait_until(lambda: "heartbeat unhealthy" in daemon.output(), 20), daemon.output()
        beats = notify.count("WATCHDOG=1")
        seen = daemon.output().count("heartbeat unhealthy")
        assert wait_until(lambda: daemon.output().count("heartbeat unhealthy") > seen + 1, 10)
        assert notify.count("WATCHDOG=1") == beats, "no watchdog ping while polls are stalled"
        assert daemon.stop(timeout=10) == 0
    finally:
        release.set()
        daemon.ensure_dead()
        notify.close()


def test_http_endpoint_serves_health_metrics_and_matches(env, feed_server, smtp):
    import httpx

    from support.sinks import free_port

    feed = setup(env, feed_server, smtp.url())
    feed.add("1", "Chinese drone parts reach Russia")
    port = free_port()
    daemon = DaemonProcess(env, "--http", f"127.0.0.1:{port}").start()
    try:
        assert smtp.wait_for(1, timeout=20), daemon.output()
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: "monitor_polls_total" in _get(f"{base}/metrics"), 15), daemon.output()
        assert httpx.get(f"{base}/healthz", trust_env=False).status_code == 200
        atom = httpx.get(f"{base}/matches.atom", trust_env=False)
        assert atom.headers["content-type"].startswith("application/atom+xml")
        assert "[china_drones] Chinese drone parts reach Russia" in atom.text
        assert daemon.stop() == 0
    finally:
        daemon.ensure_dead()


def _get(url: str) -> str:
    import httpx

    try:
        return httpx.get(url, trust_env=False, timeout=5).text
    except httpx.HTTPError:
        return ""


def test_watch_config_applies_an_added_feed_without_resetting_the_others(env, feed_server, smtp):
    setup(env, feed_server, smtp.url(), interval="1h")
    db = Path(env["MONITOR_DB"])
    daemon = DaemonProcess(env, "--watch-config").start()
    try:
        assert wait_until(lambda: db_rows(db, "select next_poll from feeds where name = 'local'") != [(None,)]
                          and db_rows(db, "select count(*) from entries") == [(1,)], 20), daemon.output()
        rhythm = db_rows(db, "select next_poll from feeds where name = 'local'")
        polls_of_first = len(feed_server.requests_to("/feed"))
        feed_server.routes["/second"] = static(rss([Item("s1", "Chinese drone factory expands",
                                                         published=datetime.now(UTC))]))
        with open(Path(env["MONITOR_CONFIG"]) / "feeds.toml", "a") as feeds:  # an edit by hand
            feeds.write(f'\n[[feed]]\nname = "second"\nurl = "{feed_server.url("/second")}"\n')
        assert smtp.wait_for(1, timeout=20), daemon.output()
        assert "Chinese drone factory" in smtp.messages[0]["subject"]
        assert db_rows(db, "select next_poll from feeds where name = 'local'") == rhythm
        assert len(feed_server.requests_to("/feed")) == polls_of_first, "the first feed was not polled again"
        assert daemon.stop() == 0
    finally:
        daemon.ensure_dead()


def _descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_parser_processes_do_not_outlive_a_killed_daemon(env, feed_server, smtp):
    setup(env, feed_server, smtp.url())
    db = Path(env["MONITOR_DB"])
    daemon = DaemonProcess(env).start()
    try:
        assert wait_until(lambda: db_rows(db, "select count(*) from entries") == [(1,)], 20), daemon.output()
        helpers = _descendants(daemon.proc.pid)
        assert helpers, "parsing runs in worker processes"
        daemon.kill()
        assert wait_until(lambda: not any(_running(p) for p in helpers), 10), \
            "parser workers and their forkserver exit once the daemon is gone"
    finally:
        daemon.ensure_dead()
