"""Every command's --help, and every documented example (README's Quick start, each
--help's Examples), run against a local setup: none may end in a traceback.

Examples are run as written, with three changes that keep them local and finite:
internet hosts become a closed port on 127.0.0.1 (nothing leaves the machine),
/etc/monitor becomes a folder under the test's tmp_path, and the parts after a
pipe or redirection are dropped. `monitor run` without --once, `monitor web` and
`monitor demo` run until stopped or for a minute: their own tests cover them.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from monitor.cli import COMMAND_MODULES, main
from support.feeds import Item, rss
from support.feedserver import static
from support.hostile_routes import closed_port
from test_cli import monitor

README = Path(__file__).resolve().parents[1] / "README.md"
_HOST = re.compile(r"(?<=://)(?:[^/\s'\"@]*@)?[A-Za-z0-9.-]+\.(?:org|com|ua|net|example)(?::\d+)?")
_LONG_RUNNING = re.compile(r"^monitor(?: --\S+ \S+)* (?:run(?!.*--once)|demo|web(?! passwd))\b")


def _all_commands() -> list[list[str]]:
    """Every command path: [group], [group, sub], ... as a user types them."""
    ctx = click.Context(main)
    paths: list[list[str]] = []
    for name in COMMAND_MODULES:
        command = main.get_command(ctx, name)
        assert command is not None, name
        paths.append([name])
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.list_commands(ctx)]
    return paths


def _help_examples(path: list[str]) -> list[str]:
    ctx = click.Context(main)
    command = main
    for name in path:
        command = command.get_command(ctx, name)
    lines = (command.help or "").splitlines()
    examples, inside = [], False
    for line in lines:
        if line.strip() in ("Examples:", "Example:"):
            inside = True
            continue
        if inside:
            if line.strip().startswith(("monitor", "cat ", "curl ")):
                examples.append(line.strip())
            elif line.strip():
                inside = False
    return examples


def _readme_quick_start() -> list[str]:
    text = README.read_text()
    block = text.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip().startswith("monitor")]


def _localised(example: str, port: int, tmp_path: Path, home: str) -> list[str] | None:
    """The example as arguments for the monitor CLI, kept on this machine; None to skip."""
    if not example.startswith("monitor") or _LONG_RUNNING.match(example):
        return None
    command = re.split(r"\s(?:\|\|?|<|>)\s", example)[0]
    command = _HOST.sub(f"127.0.0.1:{port}", command).replace("/etc/monitor", str(tmp_path / "etc-monitor"))
    return [re.sub(r"^~(?=/|$)", home, arg) for arg in shlex.split(command)[1:]]


def _documented_examples() -> list[str]:
    examples = _readme_quick_start()
    for path in _all_commands():
        examples += _help_examples(path)
    return examples


def test_every_group_and_command_has_examples_in_its_help():
    missing = [" ".join(path) for path in _all_commands() if not _help_examples(path)]
    assert missing == []


def test_every_help_runs_without_a_traceback(env):
    for path in [[]] + _all_commands():
        result = monitor(*path, "--help", env=env)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (path, result.stderr)
        assert "Usage: monitor" in result.stdout


def test_every_documented_example_runs_without_a_traceback(env, feed_server, tmp_path):
    monitor("init", env["MONITOR_CONFIG"], "--no-feeds", env=env, check=True)
    feed_server.routes["/feed.xml"] = static(rss([Item("g1", "Chinese drone parts keep flowing to Russia")]))
    monitor("feeds", "add", feed_server.url("/feed.xml"), "--name", "kyiv-independent", env=env, check=True)
    monitor("run", "--once", env=env, check=True)
    (tmp_path / "etc-monitor").mkdir()
    port = closed_port()
    examples = _documented_examples()
    assert len(examples) > 60  # the README's and every command's
    ran = 0
    for example in examples:
        args = _localised(example, port, tmp_path, env["HOME"])
        if args is None:
            continue
        result = subprocess.run([sys.executable, "-m", "monitor", *args], env=env, cwd=tmp_path, text=True,
                                capture_output=True, timeout=90, input="")
        ran += 1
        assert "Traceback" not in result.stdout + result.stderr, (example, result.stderr)
        assert result.returncode in (0, 1, 2), (example, result.returncode, result.stderr)
        if result.returncode:  # a failure says why, never silence
            assert (result.stdout + result.stderr).strip(), example
    assert ran > 50


@pytest.mark.parametrize("example", _readme_quick_start())
def test_readme_quick_start_lines_are_real_commands(example):
    assert example.startswith("monitor ")


def test_help_stays_light_no_table_library_nor_http_client():
    """`monitor --help` lists every command, so each command module loads: none may pull in
    httpx (whose import pulls in its own command line when click is installed) or apprise."""
    code = ("import sys\nfrom monitor.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'httpx', 'apprise'}))")
    result = subprocess.run([sys.executable, "-c", code], text=True, capture_output=True, timeout=60)
    assert result.stdout.splitlines()[-1] == "[]", result.stdout
