"""What a person at a terminal sees: the CLI on a real pty (not a pipe, where click strips
ESC[ sequences and commands print plain text), as a subprocess against real files."""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest

from support.feeds import Item, rss
from support.feedserver import static
from support.terminal import Terminal, run_in_terminal
from test_cli import monitor

# A title that tries every trick: OSC 52 (write the clipboard), ESC[2J (clear the screen),
# an 8-bit CSI (U+009B), DEL, BEL and a carriage return that would overwrite the line.
HOSTILE = "\x1b]52;c;SGVsbG8=\x07\x1b[2J\x9b2J\x7f\rEvil"
OUR_STYLES = re.compile(rb"\x1b\[[0-9;]*m")  # the colours and bold the CLI itself writes


def _raw_controls(output: bytes) -> list[bytes]:
    """Controls in OUTPUT that the CLI did not write itself: anything but our SGR styles,
    newlines and tabs (the pty turns \\n into \\r\\n)."""
    rest = OUR_STYLES.sub(b"", output).replace(b"\r\n", b"\n")
    found = re.findall(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]", rest)
    return found


@pytest.fixture
def hostile_setup(env, feed_server, tmp_path):
    """A local feed whose stored story carries terminal controls in every text field, a
    match of the shipped watch on it (alerted to the console), and a feed whose last
    error and redirected URL carry them too."""
    monitor("init", env["MONITOR_CONFIG"], env=env, check=True)  # the shipped watch
    (Path(env["MONITOR_CONFIG"]) / "feeds.toml").write_text("")
    now = datetime.now(UTC)
    feed_server.routes["/feed.xml"] = static(rss([Item(
        "g1", "Chinese drone parts keep flowing to Russia", "Beijing ships drone parts to Russia",
        published=now)]))
    monitor("feeds", "add", feed_server.url("/feed.xml"), "--name", "wire", "--no-discover",
            env=env, check=True)
    monitor("run", "--once", env=env, check=True)
    db = Path(env["MONITOR_DB"])
    with sqlite3.connect(db) as conn:  # what a hostile feed would have stored, field by field
        conn.execute("UPDATE entries SET title = title || ?, summary = summary || ?, url = ?",
                     [HOSTILE, HOSTILE, "https://example.org/a" + HOSTILE])
        conn.execute("UPDATE matches SET snippet = snippet || ?", [HOSTILE])
        conn.execute("UPDATE alerts SET payload = json_set(payload, '$.title', ?), last_error = ?",
                     ["Evil title" + HOSTILE, "refused" + HOSTILE])
        conn.execute("UPDATE feeds SET last_error = ?, url = ?",
                     ["HTTP 500" + HOSTILE, feed_server.url("/moved") + HOSTILE])
    story_id = sqlite3.connect(db).execute("SELECT id FROM entries").fetchone()[0]
    return env, story_id


@pytest.mark.parametrize("command", [
    ["stories"], ["search", "drone"], ["matches"], ["show", "{id}"], ["feeds", "list"],
    ["alerts", "list"], ["status"], ["report"], ["stories", "--json"], ["matches", "--json"],
])
def test_feed_text_cannot_drive_the_terminal(hostile_setup, command):
    env, story_id = hostile_setup
    result = run_in_terminal(*[part.format(id=story_id) for part in command], env=env)
    assert b"Traceback" not in result.output
    assert _raw_controls(result.output) == [], result.output
    if command[0] in ("stories", "matches", "show", "feeds", "alerts", "search"):
        # escaped where it was, visible: \x1b in text output, \u001b in JSON
        assert "\\x1b" in result.text or "\\u001b" in result.text, result.text


def test_piped_output_escapes_controls_too(hostile_setup):
    env, story_id = hostile_setup
    for args in (["show", str(story_id)], ["feeds", "list"], ["matches"], ["alerts", "list"]):
        result = monitor(*args, env=env)
        assert re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", result.stdout) is None, (args, result.stdout)
        assert "\\x1b]52" in result.stdout, args
    json_line = monitor("matches", "--json", env=env).stdout
    assert "\x9b" not in json_line and "\\u009b" in json_line and "\\u001b" in json_line


def test_alerts_add_asks_for_the_url_and_hides_it(env):
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    terminal = Terminal("alerts", "add", "-", "--name", "desk", env=env)
    terminal.expect("Paste the apprise URL")
    terminal.wait_for_hidden_input()
    terminal.send("json://hook:S3cretPW@127.0.0.1:9/alerts\n")
    result = terminal.wait()
    assert result.returncode == 0, result.text
    assert "S3cretPW" not in result.text  # neither echoed as typed nor printed back
    assert "added destination desk" in result.text
    assert "S3cretPW" in (Path(env["MONITOR_CONFIG"]) / "alerts.toml").read_text()


def test_alerts_add_reads_a_piped_url_without_a_prompt(env):
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    result = monitor("alerts", "add", "-", "--name", "desk", env=env,
                     input="json://hook:S3cretPW@127.0.0.1:9/alerts\n")
    assert result.returncode == 0, result.stderr
    assert "Paste" not in result.stdout + result.stderr and "S3cretPW" not in result.stdout


def _width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def test_listings_fit_a_100_column_terminal(env, feed_server):
    monitor("init", env["MONITOR_CONFIG"], env=env, check=True)
    config = Path(env["MONITOR_CONFIG"])
    (config / "feeds.toml").write_text("")
    now = datetime.now(UTC)
    long_title = ("Chinese drone parts keep flowing to Russia through a long chain of intermediaries "
                  "in Central Asia, investigators say")
    feed_server.routes["/a-very-long-path/that/keeps/going/and/going/feed.xml"] = static(rss(
        [Item(f"g{n}", f"{long_title} {n}", "Beijing ships drone parts to Russia", published=now)
         for n in range(3)]))
    monitor("feeds", "add", feed_server.url("/a-very-long-path/that/keeps/going/and/going/feed.xml"),
            "--name", "wire", env=env, check=True)
    monitor("feeds", "add", feed_server.url("/missing-feed-with-a-long-name.xml"), "--force",
            "--name", "broken", "--no-discover", env=env, check=True)
    monitor("alerts", "add", "json://127.0.0.1:9/a/very/long/path/for/the/hook/that/goes/on/and/on",
            "--name", "hook", "--tag", "drones", "--tag", "admin", env=env, check=True)
    monitor("run", "--once", env=env)
    for command in (["feeds", "list"], ["rules", "list"], ["alerts", "list"], ["stories"],
                    ["matches"], ["alerts", "destinations"], ["search", "drone"]):
        result = run_in_terminal(*command, env=env, columns=100)
        assert result.returncode in (0, 1) and b"Traceback" not in result.output, result.text
        text = OUR_STYLES.sub(b"", result.output).decode()
        lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
        assert lines, command
        too_wide = [line for line in lines if _width(line) > 100]
        assert too_wide == [], (command, too_wide)
    # piped, the same listing keeps whole values on one line each (scripts parse it)
    piped = monitor("feeds", "list", env=env, check=True).stdout
    assert "/a-very-long-path/that/keeps/going/and/going/feed.xml" in piped


def test_hits_are_coloured_on_a_terminal_and_marked_plainly_when_piped(hostile_setup):
    env, story_id = hostile_setup
    on_terminal = run_in_terminal("matches", env=env)
    assert b"\x1b[1;33m" in on_terminal.output and b"[[" not in on_terminal.output
    piped = monitor("matches", env=env).stdout
    assert "[[" in piped and "]]" in piped and "«" not in piped and "\x1b" not in piped
