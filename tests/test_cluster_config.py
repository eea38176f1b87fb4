"""One config for the whole cluster: `monitor config push` stores the folder as a version in
PostgreSQL, workers LISTEN and reload within seconds, an edit reaches every worker, and a
bad push is refused while the workers keep the version they run (real subprocesses)."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from monitor.config.load import folder_version
from monitor.store.postgres import connect
from support.daemon import DaemonProcess, WorkerProcess, wait_until
from support.feeds import Item, rss
from support.feedserver import static
from support.watch import CHINA_DRONES_WATCH
from test_cli import monitor


def feeds_toml(feed_server, names: list[str]) -> str:
    return "".join(f'[[feed]]\nname = "{name}"\nurl = "{feed_server.url(f"/{name}.xml")}"\ninterval = "1h"\n\n'
                   for name in names)


@pytest.fixture
def pushed_env(env: dict[str, str], feed_server, postgres_url: str) -> dict[str, str]:
    env = {**env, "MONITOR_DB": postgres_url}
    config = Path(env["MONITOR_CONFIG"])
    monitor("init", str(config), "--no-feeds", env=env, check=True)
    (config / "watch.toml").write_text(CHINA_DRONES_WATCH, encoding="utf-8")
    for name in ("one", "two", "three"):
        feed_server.routes[f"/{name}.xml"] = static(rss([Item(f"{name}-1", f"Story of {name}")]))
    (config / "feeds.toml").write_text(feeds_toml(feed_server, ["one", "two"]), encoding="utf-8")
    return env


def workers_running(env: dict[str, str]) -> dict[str, str]:
    """Each live worker's config version, as `monitor status` shows it (none before the first
    worker has made the tables)."""
    shown = monitor("status", "--json", env=env).stdout
    if not shown:
        return {}
    view = json.loads(shown)
    return {node["name"]: node["config_version"] for node in view.get("cluster", {}).get("workers", [])
            if node["alive"]}


def test_a_push_reaches_every_worker_an_edit_is_pushed_and_a_bad_push_is_refused(
        pushed_env: dict[str, str], feed_server, postgres_url: str, tmp_path: Path) -> None:
    env = pushed_env
    config = Path(env["MONITOR_CONFIG"])
    first = monitor("config", "push", env=env, check=True)
    assert "as config version 1" in first.stdout
    v1 = folder_version(config)

    # the second worker's own folder says something else: the pushed version wins
    other = tmp_path / "other-config"
    shutil.copytree(config, other)
    (other / "feeds.toml").write_text("", encoding="utf-8")
    workers = [WorkerProcess(env, "--name", "w1").start(),
               WorkerProcess({**env, "MONITOR_CONFIG": str(other)}, "--name", "w2").start()]
    try:
        assert wait_until(lambda: workers_running(env) == {"w1": v1, "w2": v1}, 60), workers[1].output()

        # an edit through the CLI is pushed, and every worker runs it within seconds
        added = monitor("feeds", "add", feed_server.url("/three.xml"), "--name", "three", env=env, check=True)
        assert "pushed as config version 2" in added.stdout
        v2 = folder_version(config)
        assert wait_until(lambda: workers_running(env) == {"w1": v2, "w2": v2}, 30)
        assert wait_until(lambda: _polled(postgres_url, "three"), 30)

        # a bad push is refused with its file and line; the workers keep version 2
        broken = tmp_path / "broken"
        shutil.copytree(config, broken)
        (broken / "watch.toml").write_text('[rule.x]\nquery = "@nobody"\n', encoding="utf-8")
        refused = monitor("config", "push", str(broken), env=env)
        assert refused.returncode == 2 and "watch.toml:2" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        assert _latest_version(postgres_url) == 2
        assert workers_running(env) == {"w1": v2, "w2": v2}
        unchanged = monitor("config", "push", env=env, check=True)
        assert "unchanged: config version 2" in unchanged.stdout
    finally:
        for worker in workers:
            worker.stop(timeout=60)
            worker.ensure_dead()


def test_a_push_to_a_sqlite_file_is_a_usage_error(env: dict[str, str]) -> None:
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    result = monitor("config", "push", env=env)
    assert result.returncode == 2 and "PostgreSQL database" in result.stderr


def _polled(url: str, feed: str) -> bool:
    db = connect(url)
    try:
        return db.execute("SELECT count(*) FROM fetch_log l JOIN feeds f ON f.id = l.feed_id WHERE f.name = ?",
                          [feed]).fetchone()[0] > 0
    finally:
        db.close()


def _latest_version(url: str) -> int:
    db = connect(url)
    try:
        return db.execute("SELECT max(version) FROM config_versions").fetchone()[0]
    finally:
        db.close()


def test_a_worker_reloads_its_own_folder_on_sighup(pushed_env: dict[str, str], feed_server,
                                                    postgres_url: str) -> None:
    """Without a pushed config a worker runs its folder; SIGHUP reloads it, as for the daemon."""
    env = pushed_env
    config = Path(env["MONITOR_CONFIG"])
    worker = WorkerProcess(env, "--name", "w1").start()
    try:
        assert wait_until(lambda: workers_running(env) == {"w1": folder_version(config)}, 60), worker.output()
        (config / "feeds.toml").write_text(feeds_toml(feed_server, ["one", "two", "three"]), encoding="utf-8")
        worker.signal(signal.SIGHUP)
        assert wait_until(lambda: workers_running(env) == {"w1": folder_version(config)}, 30), worker.output()
        assert wait_until(lambda: _polled(postgres_url, "three"), 30)
        assert worker.proc.poll() is None  # SIGHUP reloads; it does not stop the worker
    finally:
        worker.stop(timeout=60)
        worker.ensure_dead()


def test_workers_and_a_daemon_never_share_a_database(pushed_env: dict[str, str]) -> None:
    env = pushed_env
    daemon = DaemonProcess(env).start()
    try:
        assert wait_until(lambda: "daemon started" in daemon.output(), 60), daemon.output()
        refused = monitor("worker", env=env, timeout=60)
        assert refused.returncode == 1 and "a `monitor run` daemon polls postgresql://" in refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        daemon.stop(timeout=30)
        daemon.ensure_dead()
    worker = WorkerProcess(env, "--name", "w1").start()
    try:
        assert wait_until(lambda: workers_running(env) == {"w1": folder_version(Path(env["MONITOR_CONFIG"]))}, 60)
        refused = monitor("run", "--once", env=env, timeout=60)
        assert refused.returncode == 1 and "monitor worker(s) poll postgresql://" in refused.stderr
    finally:
        worker.stop(timeout=60)
        worker.ensure_dead()
