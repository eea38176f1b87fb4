"""`monitor` as a real subprocess on a PostgreSQL database (MONITOR_DB=postgresql://...):
the same commands as on the embedded SQLite file, against the machine's server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.daemon import DaemonProcess, wait_until
from support.feeds import Item, rss
from support.feedserver import static
from support.watch import CHINA_DRONES_WATCH
from test_cli import monitor

NOW = datetime.now(UTC)
STORIES = [
    Item("pg-1", "Chinese drone parts found in Russian Shahed wreckage", "Investigators traced the parts.",
         NOW - timedelta(minutes=5), "https://example.org/drones"),
    Item("pg-2", "Kyiv power grid repairs continue", "Crews worked overnight.",
         NOW - timedelta(minutes=4), "https://example.org/grid"),
]


@pytest.fixture
def on_postgres(env: dict[str, str], feed_server, postgres_url: str, tmp_path: Path) -> dict[str, str]:
    """A config folder with one local feed and the china_drones watch, its database in PostgreSQL."""
    env = {**env, "MONITOR_DB": postgres_url}
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    (Path(env["MONITOR_CONFIG"]) / "watch.toml").write_text(CHINA_DRONES_WATCH, encoding="utf-8")
    feed_server.routes["/news.xml"] = static(rss(STORIES))
    monitor("feeds", "add", feed_server.url("/news.xml"), "--name", "news", env=env, check=True)
    return env


def test_run_once_stores_each_story_once_and_the_commands_read_them(on_postgres: dict[str, str]) -> None:
    env = on_postgres
    first = monitor("run", "--once", env=env, check=True)
    assert "new=2" in first.stdout and "matched=1" in first.stdout
    again = monitor("run", "--once", env=env, check=True)
    assert "new=0" in again.stdout

    stories = [json.loads(line) for line in monitor("stories", "--json", env=env, check=True).stdout.splitlines()]
    assert sorted(story["guid"] for story in stories) == ["pg-1", "pg-2"]
    matches = [json.loads(line) for line in monitor("matches", "--json", env=env, check=True).stdout.splitlines()]
    assert [(m["rule"], m["title"]) for m in matches] == [("china_drones", STORIES[0].title)]
    found = monitor("search", "drone", "--json", env=env, check=True).stdout
    assert [json.loads(line)["title"] for line in found.splitlines()] == [STORIES[0].title]
    status = json.loads(monitor("status", "--json", env=env).stdout)  # exit 1: no daemon runs
    assert (status["stories_today"], status["matches_today"], status["feeds"]["ok"]) == (2, 1, 1)
    assert status["database"].startswith("postgresql://")


def test_the_password_of_the_database_url_is_never_shown(on_postgres: dict[str, str], postgres_url: str) -> None:
    secret = "Sup3rSecretPw"
    with_password = postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    env = {**on_postgres, "MONITOR_DB": with_password}  # trust authentication ignores the password
    outputs = [monitor("run", "--once", env=env), monitor("config", "check", env=env),
               monitor("status", env=env)]
    for result in outputs:
        assert result.returncode in (0, 1), result.stderr  # status: 1, no daemon runs
        assert "Traceback" not in result.stderr and secret not in result.stdout + result.stderr
    assert "postgres:***@" in outputs[1].stdout


def test_an_unreachable_server_is_one_clear_line(env: dict[str, str]) -> None:
    env = {**env, "MONITOR_DB": "postgresql://monitor:Pw0rd@127.0.0.1:9/monitor"}
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    result = monitor("stories", env=env)
    assert result.returncode == 1
    assert "cannot connect to the database at postgresql://monitor:***@127.0.0.1:9/monitor" in result.stderr
    assert "Traceback" not in result.stderr and "Pw0rd" not in result.stderr


def test_a_second_daemon_on_the_same_database_is_refused(on_postgres: dict[str, str]) -> None:
    env = on_postgres
    daemon = DaemonProcess(env).start()
    try:
        assert wait_until(lambda: "daemon started" in daemon.output(), 60), daemon.output()
        second = monitor("run", env=env, timeout=60)
        assert second.returncode == 1
        assert "another monitor daemon" in second.stderr and "is already using postgresql://" in second.stderr
        assert "Traceback" not in second.stderr
        assert daemon.stop() == 0
    finally:
        daemon.ensure_dead()


def test_every_reading_and_editing_command_runs_on_postgres(on_postgres: dict[str, str], tmp_path: Path) -> None:
    env = on_postgres
    monitor("run", "--once", env=env, check=True)
    story = json.loads(monitor("stories", "--json", env=env, check=True).stdout.splitlines()[-1])["id"]
    commands = [
        ("feeds", "list"), ("feeds", "list", "--json"), ("alerts", "list"), ("alerts", "list", "--json"),
        ("report", "--since", "7d"), ("report", "--html", str(tmp_path / "report.html")),
        ("show", str(story)), ("rules", "backtest"), ("matches",), ("stories", "--since", "1d"),
        ("mute", str(story), "--reason", "not the war"), ("unmute", str(story)),
        ("feeds", "pause", "news"), ("feeds", "resume", "news"), ("feeds", "reset", "news"),
        ("alerts", "retry", "--all"), ("status",),
    ]
    for command in commands:
        result = monitor(*command, env=env)
        shown = f"monitor {' '.join(command)} (exit {result.returncode})\n{result.stdout}\n{result.stderr}"
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr, shown
        assert result.returncode == 0 or command == ("status",), shown  # status: 1, no daemon runs
