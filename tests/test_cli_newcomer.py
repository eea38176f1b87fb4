"""A newcomer's first day, command by command: no traceback for a situation, results that
say when they are empty, one truth in status, advice that runs as printed. Each test runs
the CLI as a subprocess against real files and a local feed server."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli.context import message_fields
from monitor.cli.status import summary_lines
from monitor.read.status import gather_status
from monitor.store.database import Store
from monitor.store.lock import DaemonLock
from support.daemon import DaemonProcess, wait_until
from support.feeds import Item, rss
from support.feedserver import static
from test_cli import monitor

NOW = datetime.now(UTC)
LOWER_CASE_RULE = """
[rule.lower_ops]
query = 'Beijing or Moscow and drones'
"""


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single `monitor: error:` line a situation deserves, and nothing like a traceback."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("monitor: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture
def local(env, feed_server):
    """init --no-feeds plus one local feed whose story the shipped watch matches."""
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    feed_server.routes["/feed.xml"] = static(rss([
        Item("g1", "Chinese drone parts keep flowing to Russia", "Beijing ships drone parts", published=NOW),
        Item("g2", "Harvest festival opens in Lviv", "Crowds and music", published=NOW)],
        title="Wire Service"))
    monitor("feeds", "add", feed_server.url("/feed.xml"), env=env, check=True)
    return env


# --------------------------------------------------------------------------
# 1 and issue 13 item 8: no traceback for a user's situation
# --------------------------------------------------------------------------


def test_a_port_in_use_is_one_line_and_exit_2(local):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = monitor("run", "--http", f"127.0.0.1:{port}", env=local, timeout=60)
    assert result.returncode == 2
    assert one_error_line(result) == f"monitor: error: cannot listen on 127.0.0.1:{port}: address already in use"
    assert "CancelledError" not in result.stderr and "scheduler" not in result.stderr.lower()


@pytest.mark.parametrize("command", [["stories"], ["search", "drone"], ["matches"], ["status"],
                                     ["feeds", "list"], ["alerts", "list"], ["run", "--once"],
                                     ["show", "1"], ["report"]])
def test_a_corrupt_database_is_one_line_naming_it_and_exit_1(local, command):
    db = Path(local["MONITOR_DB"])
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"this is not a database, it is a grocery list\n" * 200)
    result = monitor(*command, env=local)
    assert result.returncode == 1, result.stderr
    assert str(db) in one_error_line(result)


def test_a_database_folder_that_is_a_file_is_one_line_and_exit_1(local, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be")
    result = monitor("--db", str(blocker / "monitor.db"), "run", "--once", env=local)
    assert result.returncode == 1
    assert str(blocker) in one_error_line(result)


def test_reading_commands_without_a_database_are_situations_not_usage_errors(local):
    for command in (["stories"], ["matches"], ["show", "1"], ["search", "drone"]):
        result = monitor(*command, env=local)
        assert result.returncode == 1, (command, result.stderr)
        assert "run `monitor run --once` first" in one_error_line(result)


# --------------------------------------------------------------------------
# 5: one truth in status
# --------------------------------------------------------------------------


def test_a_config_folder_that_does_not_exist_is_an_error(local, tmp_path):
    result = monitor("--config", str(tmp_path / "typo"), "status", env=local)
    assert result.returncode == 2
    assert f"--config {tmp_path / 'typo'} does not exist" in one_error_line(result)


def test_status_counts_feeds_as_feeds_list_does_and_names_what_it_read(env, feed_server):
    monitor("init", env["MONITOR_CONFIG"], env=env, check=True)  # the shipped feeds, never polled
    listed = monitor("feeds", "list", "--json", env=env, check=True).stdout.splitlines()
    status = json.loads(monitor("status", "--json", env=env).stdout)
    assert status["feeds"]["total"] == len(listed) == status["feeds"]["new"] > 0
    feed_server.routes["/feed.xml"] = static(rss([Item("g1", "A story", published=NOW)]))
    monitor("feeds", "add", feed_server.url("/feed.xml"), "--name", "local", env=env, check=True)
    monitor("feeds", "pause", "local", env=env, check=True)  # writes the database
    listed = [json.loads(line) for line in monitor("feeds", "list", "--json", env=env).stdout.splitlines()]
    status = json.loads(monitor("status", "--json", env=env).stdout)
    assert status["feeds"]["total"] == len(listed)
    assert status["feeds"]["paused"] == sum(1 for row in listed if row["status"] == "paused") == 1
    text = monitor("status", env=env).stdout
    assert f"config folder {env['MONITOR_CONFIG']}, database {env['MONITOR_DB']}" in text
    assert f"feeds:   {len(listed)} total" in text


def test_status_says_the_first_cycle_is_under_way_during_the_first_minute(tmp_path):
    db = tmp_path / "monitor.db"
    store = Store.open(db)
    try:
        store.set_meta("daemon_started", (NOW - timedelta(seconds=20)).isoformat())
        store.set_meta("heartbeat", NOW.isoformat())
    finally:
        store.close()
    with DaemonLock(db):
        early = gather_status(db, None, NOW)
        late = gather_status(db, None, NOW + timedelta(minutes=2))
    assert any("first cycle under way" in line for line in summary_lines({**early, "config_folder": "x"}))
    assert not any("first cycle under way" in line for line in summary_lines({**late, "config_folder": "x"}))
    assert any("last cycle never" in line for line in summary_lines({**late, "config_folder": "x"}))


# --------------------------------------------------------------------------
# 6: empty results say so
# --------------------------------------------------------------------------


def test_empty_results_say_so_and_json_stays_clean(local, tmp_path):
    monitor("run", "--once", env=local, check=True)
    nothing = monitor("search", "zeppelin", env=local)
    assert nothing.returncode == 1 and nothing.stdout == ""
    assert "no matches (2 stories searched)" in nothing.stderr
    as_json = monitor("search", "zeppelin", "--json", env=local)
    assert as_json.stdout == "" and as_json.stderr == ""

    typo = monitor("matches", "--rule", "china_sanctoins", env=local)
    assert typo.returncode == 2
    line = one_error_line(typo)
    assert "no rule named 'china_sanctoins'" in line and "china_sanctions" in line

    quiet = monitor("matches", "--since", "1d", "--feed", "nosuchfeed", env=local)
    assert quiet.returncode == 1 and "no matches since" in quiet.stderr

    items = tmp_path / "items.jsonl"
    items.write_text('{"title": "Harvest festival"}\n{"title": "Weather"}\n')
    matched_none = monitor("match", str(items), env=local, check=True)
    assert matched_none.stdout == "" and "no matches (2 items read)" in matched_none.stderr
    assert monitor("match", str(items), "--json", env=local, check=True).stderr == ""


# --------------------------------------------------------------------------
# 4: lower-case operators warn, with their position
# --------------------------------------------------------------------------


def test_lower_case_operators_warn_in_rules_check_config_check_and_the_daemon(local):
    watch = Path(local["MONITOR_CONFIG"]) / "watch.toml"
    watch.write_text(watch.read_text() + LOWER_CASE_RULE)
    line = len(watch.read_text().splitlines())
    checked = monitor("rules", "check", env=local, check=True)
    assert "with 2 warnings" in checked.stdout
    assert (f"warning: {watch}:{line}:18: rule 'lower_ops': 'or' is read as a word, not the operator OR: "
            "write OR for the operator, or quote the word") in checked.stderr
    assert f"{watch}:{line}:28: rule 'lower_ops': 'and'" in checked.stderr
    config = monitor("config", "check", env=local, check=True)
    assert config.stderr.count("is read as a word") == 2  # once each, not logged twice

    daemon = DaemonProcess(local).start()
    try:
        assert wait_until(lambda: "daemon started" in daemon.output(), 30), daemon.output()
        assert f"{watch}:{line}:18: rule 'lower_ops'" in daemon.output()
        daemon.lines.clear()
        daemon.signal(signal.SIGHUP)
        assert wait_until(lambda: "reloaded" in daemon.output(), 30), daemon.output()
        assert "'or' is read as a word" in daemon.output()
    finally:
        daemon.stop()
        daemon.ensure_dead()


# --------------------------------------------------------------------------
# 3: the demo's advice runs as printed
# --------------------------------------------------------------------------


def test_the_demos_next_steps_run_as_printed(env, tmp_path):
    from monitor.demo.run import NEXT_STEPS

    shell_env = {k: v for k, v in env.items() if k not in ("MONITOR_CONFIG", "MONITOR_DB")}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "monitor").write_text(f"#!/bin/sh\nexec {sys.executable} -m monitor \"$@\"\n")
    (bin_dir / "monitor").chmod(0o755)
    shell_env["PATH"] = f"{bin_dir}:{shell_env['PATH']}"
    offline = [step for step in NEXT_STEPS if "feeds add" not in step and " run" not in step
               and "alerts test" not in step]  # those need the network; the rest runs here
    assert any("secrets.toml" in step for step in offline)
    for step in offline:
        result = subprocess.run(["bash", "-c", step], env=shell_env, text=True, capture_output=True,
                                timeout=60)
        assert result.returncode == 0, (step, result.stderr)
    home = Path(env["HOME"])
    assert stat.S_IMODE((home / "watch" / "secrets.toml").stat().st_mode) == 0o600
    listed = subprocess.run(["monitor", "--config", str(home / "watch"), "alerts", "destinations", "--json"],
                            env=shell_env, text=True, capture_output=True, timeout=60)
    assert json.loads(listed.stdout)["safe_url"].startswith("mailtos://me:")
    assert "your-password" not in listed.stdout


# --------------------------------------------------------------------------
# 10: logs that machines can read
# --------------------------------------------------------------------------


def test_json_logs_have_each_field_as_its_own_key(local):
    result = monitor("--log-format", "json", "run", "--once", env=local, check=True)
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    polls = [r for r in records if r.get("msg") == "poll"]
    assert polls, result.stderr
    assert polls[0]["feed"] == "wire-service" and polls[0]["outcome"] == "ok"
    assert isinstance(polls[0]["new"], int) and {"ts", "level", "logger"} <= set(polls[0])
    assert "feed=" not in polls[0]["msg"]


def test_message_fields_match_the_key_value_format():
    assert message_fields("poll feed=kyiv outcome=error status=None error='timed out: 30 s'") == {
        "msg": "poll", "feed": "kyiv", "outcome": "error", "status": "None", "error": "timed out: 30 s"}
    assert message_fields("daemon stopping") == {"msg": "daemon stopping"}
    assert message_fields("reloaded feeds=3 level=x") == {"msg": "reloaded", "feeds": 3, "field_level": "x"}


# --------------------------------------------------------------------------
# 11: consistency
# --------------------------------------------------------------------------


def test_one_wording_for_when_changes_apply(local):
    expected = "no daemon is running on this database; changes apply at its next reload or start"
    outputs = [
        monitor("feeds", "pause", "wire-service", env=local, check=True).stdout,
        monitor("terms", "add", "china", "Dong Jun", env=local, check=True).stdout,
        monitor("rules", "disable", "china_sanctions", env=local, check=True).stdout,
        monitor("alerts", "add", "json://127.0.0.1:9/hook", "--name", "hook", env=local, check=True).stdout,
        monitor("alerts", "remove", "hook", env=local, check=True).stdout,
    ]
    assert all(expected in output for output in outputs), outputs


def test_a_web_address_is_not_a_destination_and_the_message_says_what_is(local):
    result = monitor("alerts", "add", "https://hooks.example.org/monitor", env=local)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "plain web address" in line and "json://hooks.example.org/PATH" in line and "form://" in line
    assert "did you mean" not in line


def test_unmute_undoes_mute(local):
    monitor("run", "--once", env=local, check=True)
    story = json.loads(monitor("matches", "--json", env=local, check=True).stdout.splitlines()[0])["id"]
    monitor("mute", str(story), "--reason", "test", env=local, check=True)
    assert json.loads(monitor("matches", "--json", env=local).stdout.splitlines()[0])["muted"]
    undone = monitor("unmute", str(story), env=local, check=True)
    assert f"unmuted story {story}" in undone.stdout
    assert not json.loads(monitor("matches", "--json", env=local).stdout.splitlines()[0])["muted"]


def test_terms_list_shows_each_alias_once(local):
    rows = [json.loads(line) for line in monitor("terms", "list", "--json", env=local, check=True).stdout.splitlines()]
    for row in rows:
        assert len(row["aliases"]) == len(set(row["aliases"])), row["entity"]


def test_report_html_is_readable_by_the_group_and_the_period_is_never_backwards(local, tmp_path):
    monitor("run", "--once", env=local, check=True)
    page = tmp_path / "week.html"
    monitor("report", "--since", "7d", "--html", str(page), env=local, check=True)
    assert stat.S_IMODE(page.stat().st_mode) == 0o644
    future = (NOW + timedelta(days=3)).date().isoformat()
    backwards = monitor("report", "--since", future, env=local)
    assert backwards.returncode == 2 and "in the future" in one_error_line(backwards)
    html = page.read_text()
    days = [(NOW - timedelta(days=n)).astimezone(UTC).date().isoformat() for n in (1, 0)]
    assert html.index(f"<td>{days[0]}") < html.index(f"<td>{days[1]}")  # oldest first, as in text


def test_language_is_one_flag_name(local, feed_server):
    tested = monitor("rules", "test", "Китай постачає Росії компоненти для дронів", "--language", "uk",
                     env=local)
    assert tested.returncode == 0, tested.stderr
    feed_server.routes["/uk.xml"] = static(rss([Item("u1", "Новини", published=NOW)], language="uk"))
    monitor("feeds", "add", feed_server.url("/uk.xml"), "--name", "uk", "--language", "uk", env=local, check=True)
    assert 'language = "uk"' in (Path(local["MONITOR_CONFIG"]) / "feeds.toml").read_text()


def test_other_libraries_warnings_are_log_lines_in_our_format(capsys):
    """apprise logs a failed send's cause as a warning of its own logger: it must read as one
    of our log lines (ts=... level=warning logger=apprise ...), never a bare line."""
    import logging

    from monitor.cli.context import setup_logging

    touched = [logging.getLogger(name) for name in ("monitor", "apscheduler", "")]
    saved = [(log, list(log.handlers), log.propagate, log.level) for log in touched]
    try:
        setup_logging("info", "kv")
        setup_logging("info", "kv")  # a second call replaces our handler instead of adding one
        logging.getLogger("apprise").warning("A connection error occurred sending JSON notification.")
    finally:  # later tests' caplog needs the loggers as they were
        for log, handlers, propagate, level in saved:
            log.handlers[:] = handlers
            log.propagate, log.level = propagate, level
    lines = [line for line in capsys.readouterr().err.splitlines() if "connection error" in line]
    assert len(lines) == 1 and lines[0].startswith("ts=")
    assert "level=warning logger=apprise A connection error occurred" in lines[0]
