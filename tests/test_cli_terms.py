"""`monitor terms list|add|remove|exclude` and `monitor rules enable|disable` as real subprocesses,
on the shipped watch.toml that `monitor init` copies, with a stand-in daemon for the reload."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from test_cli import monitor

FAKE_DAEMON = """
import signal, sys
from pathlib import Path
from monitor.store.lock import DaemonLock
from monitor.match import load_watch

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})  # no window in which SIGHUP would kill us
with DaemonLock(Path(sys.argv[1])):
    print("ready", flush=True)
    signal.sigwait({signal.SIGHUP})
    print("reloaded", load_watch(Path(sys.argv[2])).entities["china"].aliases[-1], flush=True)
"""


@pytest.fixture
def cfg(env):
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    return env


def watch_file(env: dict[str, str]) -> Path:
    return Path(env["MONITOR_CONFIG"]) / "watch.toml"


def entities(env: dict[str, str], *args: str) -> list[dict]:
    result = monitor("terms", "list", *args, "--json", env=env, check=True)
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_list_json_gives_one_line_per_entity_and_one_for_a_named_entity(cfg):
    rows = entities(cfg)
    assert [row["entity"] for row in rows] == ["china", "russia", "ukraine", "west"]
    assert set(rows[0]) == {"entity", "aliases", "exclude", "description"}
    assert "Китай" in rows[0]["aliases"] and "fine china" in rows[0]["exclude"]
    assert [row["entity"] for row in entities(cfg, "UKRAINE")] == ["ukraine"]


def test_list_table_wraps_between_whole_aliases(cfg):
    result = monitor("terms", "list", "china", env={**cfg, "COLUMNS": "80"}, check=True)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ENTITY", "ALIASES"] and lines[1].startswith("china   =China, Chinese,")
    assert len(lines) > 10 and all(len(line) <= 80 for line in lines if line.isascii())
    text = " ".join(line[len("china   "):].strip() for line in lines[1:])
    assert "People's Republic of China," in text and "Сі Цзіньпін," in text  # never split inside an alias
    assert any(line.strip().startswith("exclude: Chinese New Year,") for line in lines)


def test_add_remove_and_exclude_edit_the_file_and_say_no_daemon_runs(cfg):
    result = monitor("terms", "add", "China", "Dong Jun", "Дун Цзюнь", "=PRC", env=cfg, check=True)
    assert "added to China: Dong Jun, Дун Цзюнь" in result.stdout
    assert "already aliases of China: =PRC" in result.stdout
    assert "no daemon is running on this database; changes apply at its next reload or start" in result.stdout
    assert entities(cfg, "china")[0]["aliases"][-2:] == ["Dong Jun", "Дун Цзюнь"]

    result = monitor("terms", "remove", "china", "Peking", "Nowhere", env=cfg, check=True)
    assert "removed from china: Peking" in result.stdout and "not aliases of china: Nowhere" in result.stdout
    assert "Peking" not in entities(cfg, "china")[0]["aliases"]

    result = monitor("terms", "exclude", "ukraine", "Kyiv cake", env=cfg, check=True)
    assert "hits inside 'Kyiv cake' no longer count" in result.stdout
    assert entities(cfg, "ukraine")[0]["exclude"] == ["Kyiv cake"]
    again = monitor("terms", "exclude", "ukraine", "Kyiv cake", env=cfg, check=True)
    assert "already excludes" in again.stdout and "daemon" not in again.stdout

    assert "ok" in monitor("rules", "check", env=cfg, check=True).stdout
    assert "# capital C: lower-case \"china\" is porcelain" in watch_file(cfg).read_text(encoding="utf-8")


@pytest.mark.parametrize(("args", "message"), [
    (("terms", "add", "china", "*"), "no letters or digits"),
    (("terms", "add", "chna", "PRC"), "no entity 'chna'"),
    (("terms", "remove", "china", "china"), "did you mean '=China'?"),
    (("terms", "exclude", "drones", "drone racing"), "is a term group"),
    (("rules", "disable", "no_such_rule"), "no rule 'no_such_rule'"),
    (("terms", "list", "nowhere"), "no entity 'nowhere'"),
])
def test_mistakes_exit_2_with_a_message_and_leave_the_file_alone(cfg, args, message):
    before = watch_file(cfg).read_bytes()
    result = monitor(*args, env=cfg)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert watch_file(cfg).read_bytes() == before


def test_rules_disable_and_enable(cfg):
    def enabled() -> bool:
        listed = monitor("rules", "list", "--json", env=cfg, check=True).stdout
        rules = [json.loads(line) for line in listed.splitlines()]
        return next(rule["enabled"] for rule in rules if rule["name"] == "china_sanctions")

    result = monitor("rules", "disable", "China_Sanctions", env=cfg, check=True)
    assert "rule China_Sanctions disabled" in result.stdout and "no daemon is running" in result.stdout
    assert enabled() is False
    assert "already disabled" in monitor("rules", "disable", "china_sanctions", env=cfg, check=True).stdout
    monitor("rules", "enable", "china_sanctions", env=cfg, check=True)
    assert enabled() is True
    assert "already enabled" in monitor("rules", "enable", "china_sanctions", env=cfg, check=True).stdout


def test_editing_without_a_watch_file_is_a_usage_error(cfg):
    watch_file(cfg).unlink()
    result = monitor("terms", "add", "china", "PRC", env=cfg)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert not watch_file(cfg).exists()
    listing = monitor("terms", "list", env=cfg, check=True)
    assert listing.stdout == "" and "no entities" in listing.stderr


@pytest.mark.parametrize("command", [("terms",), ("terms", "list"), ("terms", "add"), ("terms", "remove"),
                                     ("terms", "exclude"), ("rules", "enable"), ("rules", "disable")])
def test_every_command_has_help_with_examples(env, command):
    result = monitor(*command, "--help", env=env, check=True)
    assert "Example" in result.stdout and f"monitor {' '.join(command)}" in result.stdout


def test_an_edit_makes_the_running_daemon_reload_the_new_watch(cfg):
    daemon = subprocess.Popen([sys.executable, "-c", FAKE_DAEMON, cfg["MONITOR_DB"], str(watch_file(cfg))],
                              env=cfg, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout.readline() == "ready\n"
        result = monitor("terms", "add", "china", "Dong Jun", env=cfg, check=True)
        assert f"told the running daemon (pid {daemon.pid}) to reload" in result.stdout
        out, err = daemon.communicate(timeout=20)
    finally:
        daemon.kill()
        daemon.wait()
    assert out == "reloaded Dong Jun\n", err  # the file was written before the signal was sent
