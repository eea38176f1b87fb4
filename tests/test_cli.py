"""The `monitor` command as a real subprocess against a local feed server and real SQLite files."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.store.lock import DaemonLock
from support.feeds import Item, rss
from support.feedserver import fixture_bytes, static


def monitor(*args: str, env: dict[str, str], check: bool = False, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "monitor", *args], env=env, text=True,
                            capture_output=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result



@pytest.fixture
def configured(env, feed_server, tmp_path):
    """A config folder with no default feeds and one local feed."""
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    feed_server.routes["/kyiv.xml"] = static(fixture_bytes("made_ghost_kyivindependent.xml"))
    monitor("feeds", "add", feed_server.url("/kyiv.xml"), "--name", "kyiv", "--language", "en",
            env=env, check=True)
    return env


def test_version(env):
    result = monitor("--version", env=env, check=True)
    assert "monitor" in result.stdout and "0.1.0" in result.stdout


def test_init_refuses_non_empty_folder_unless_forced(env, tmp_path):
    target = tmp_path / "cfg"
    monitor("init", str(target), "--no-feeds", env=env, check=True)
    assert {p.name for p in target.iterdir()} >= {"monitor.toml", "feeds.toml"}
    again = monitor("init", str(target), env=env)
    assert again.returncode == 2
    assert "not empty" in again.stderr and "Traceback" not in again.stderr
    forced = monitor("init", str(target), "--force", env=env)
    assert forced.returncode == 0
    assert "kyivindependent.com" in (target / "feeds.toml").read_text()


def test_run_once_stores_each_story_once_and_lists_them(configured, feed_server):
    env = configured
    first = monitor("run", "--once", env=env, check=True)
    assert "new=" in first.stdout
    stories = [json.loads(line) for line in monitor("stories", "--json", env=env, check=True).stdout.splitlines()]
    assert stories, "the feed's stories were stored"
    assert {"id", "feed", "guid", "url", "title", "published", "first_seen"} <= set(stories[0])
    assert isinstance(stories[0]["id"], int) and stories[0]["feed"] == "kyiv"
    assert stories[0]["first_seen"].endswith("Z")

    second = monitor("run", "--once", env=env, check=True)
    assert "new=0" in second.stdout and "not_modified=1" in second.stdout
    again = monitor("stories", "--json", env=env, check=True).stdout.splitlines()
    assert len(again) == len(stories)
    conditional = feed_server.requests_to("/kyiv.xml")[-1]
    assert conditional.headers.get("If-None-Match"), "restart kept the ETag"

    health = [json.loads(line) for line in monitor("feeds", "list", "--json", env=env, check=True).stdout.splitlines()]
    assert health[0]["name"] == "kyiv" and health[0]["status"] == "ok"
    assert health[0]["entries"] == len(stories) and health[0]["consecutive_errors"] == 0


def test_feeds_list_shows_an_unreachable_feed_as_error_not_a_crash(configured, feed_server):
    env = configured
    monitor("feeds", "add", "http://127.0.0.1:9/rss/index.rss", "--name", "dead", "--force", env=env, check=True)
    result = monitor("run", "--once", env=env)
    assert result.returncode == 0, result.stderr
    assert "dead: error" in result.stdout
    health = {json.loads(line)["name"]: json.loads(line) for line in
              monitor("feeds", "list", "--json", env=env, check=True).stdout.splitlines()}
    assert health["dead"]["status"] == "error" and health["dead"]["last_error_kind"] == "connect"
    assert health["kyiv"]["status"] == "ok"


def test_bad_config_is_a_located_error_with_exit_2(env, tmp_path):
    cfg = tmp_path / "cfg"
    monitor("init", str(cfg), "--no-feeds", env=env, check=True)
    (cfg / "feeds.toml").write_text('[[feed]]\nname = "a"\nurl = "ftp://example.org/x"\n')
    result = monitor("config", "check", env=env)
    assert result.returncode == 2
    assert f"{cfg / 'feeds.toml'}:3" in result.stderr and "Traceback" not in result.stderr


def test_second_daemon_on_the_same_database_gets_a_clear_message(configured, tmp_path):
    lock = DaemonLock(Path(configured["MONITOR_DB"]))
    lock.acquire()
    try:
        result = monitor("run", "--once", env=configured)
    finally:
        lock.release()
    assert result.returncode == 1
    assert "another monitor daemon" in result.stderr and "Traceback" not in result.stderr


def test_stories_since_rejects_garbage(configured):
    monitor("run", "--once", env=configured, check=True)
    result = monitor("stories", "--since", "yesterdayish", env=configured)
    assert result.returncode == 2 and "--since" in result.stderr


def test_default_config_folder_is_created_on_first_use(env, tmp_path):
    del env["MONITOR_CONFIG"]
    result = monitor("config", "check", env=env, check=True)
    created = Path(env["HOME"]) / ".config" / "monitor"
    assert (created / "feeds.toml").exists()
    assert "created the default config folder" in result.stderr


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_daemon_polls_until_sigterm_then_exits_zero(env, feed_server, tmp_path):
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    items = [Item("a", "First story")]
    feed_server.routes["/feed"] = static(rss(items))
    monitor("feeds", "add", feed_server.url("/feed"), "--name", "local", "--interval", "1s",
            env=env, check=True)
    db = Path(env["MONITOR_DB"])
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def count() -> int:
            if not db.exists():
                return 0
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    return conn.execute("select count(*) from entries").fetchone()[0]
            except sqlite3.Error:
                return 0

        assert _wait_for(lambda: count() == 1, 20), "first story stored"
        feed_server.routes["/feed"] = static(rss(items + [Item("b", "Second story")]))
        assert _wait_for(lambda: count() == 2, 20), "the daemon kept polling"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_log_format_json_gives_one_json_object_per_line(configured):
    monitor("feeds", "add", "http://127.0.0.1:9/rss", "--name", "dead", "--force", env=configured, check=True)
    result = monitor("--log-format", "json", "run", "--once", env=configured, check=True)
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    assert any(line["level"] == "warning" and line.get("feed") == "dead" and line["msg"] == "poll"
               for line in lines)


def test_commands_that_send_nothing_stay_light(configured):
    """`feeds list` and `stories` must not load apprise or the language data."""
    code = ("import sys\nfrom monitor.cli import main\n"
            "for args in (['feeds', 'list'], ['stories'], ['status']):\n"
            "    try:\n        main(args, standalone_mode=False)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('apprise', 'pymorphy3', 'monitor.match.engine') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], env=configured, capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


def test_shell_completion_completes_commands(env):
    script = subprocess.run([sys.executable, "-m", "monitor"], env={**env, "_MONITOR_COMPLETE": "bash_source"},
                            capture_output=True, text=True, timeout=30).stdout
    assert "_monitor_completion" in script and "complete " in script
    words = subprocess.run([sys.executable, "-m", "monitor"],
                           env={**env, "_MONITOR_COMPLETE": "bash_complete", "COMP_WORDS": "monitor feeds p",
                                "COMP_CWORD": "2"}, capture_output=True, text=True, timeout=30).stdout
    assert "plain,pause" in words.splitlines()
