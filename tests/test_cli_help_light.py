"""`monitor --help` lists the commands without importing their modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from monitor.cli import COMMAND_MODULES, COMMAND_SUMMARIES, main

ROOT = Path(__file__).resolve().parents[1]


def test_each_summary_is_the_commands_own_short_help():
    ctx = click.Context(main)
    assert sorted(COMMAND_SUMMARIES) == sorted(COMMAND_MODULES)
    for name in COMMAND_MODULES:
        command = main.get_command(ctx, name)
        assert COMMAND_SUMMARIES[name] == command.get_short_help_str(1000), name


def test_help_lists_the_commands_as_click_would():
    ctx = click.Context(main, info_name="monitor")
    ours = click.HelpFormatter(width=80)
    main.format_commands(ctx, ours)
    clicks = click.HelpFormatter(width=80)
    click.Group.format_commands(main, ctx, clicks)
    assert ours.getvalue() == clicks.getvalue()
    assert "run " in ours.getvalue()


def test_help_imports_no_command_module():
    code = ("import sys\nfrom monitor.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('monitor.cli.')"
            " and m not in ('monitor.cli.context', 'monitor.cli.output')"
            " or m in ('monitor.config.load', 'monitor.store.database', 'httpx', 'apprise')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    assert "Commands:" in done.stdout


def test_report_html_without_pygal_says_how_to_install_it(tmp_path):
    """pygal is the optional `report` extra: without it the HTML report names the install."""
    from monitor.store.database import Store

    Store.open(tmp_path / "m.db").close()
    (tmp_path / "cfg").mkdir()
    code = ("import sys\nsys.modules['pygal'] = None  # as if not installed\n"
            "from monitor.cli import main\nmain(sys.argv[1:])")
    done = subprocess.run([sys.executable, "-c", code, "--config", str(tmp_path / "cfg"),
                           "--db", str(tmp_path / "m.db"), "report", "--html", str(tmp_path / "r.html")],
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pip install 'monitor[report]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r.html").exists()
