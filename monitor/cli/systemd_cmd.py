"""`monitor systemd-unit`: the shipped unit, with ExecStart pointing at this installation.

The unit is kept once, in `systemd/monitor.service` of the checkout; a wheel
ships it as `monitor/systemd/monitor.service`. Only the program of ExecStart
changes, so the sandbox and the options stay exactly as shipped and reviewed.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from monitor.errors import MonitorError

UNIT_NAME = "monitor.service"
SAFE_WORD = re.compile(r"[A-Za-z0-9/_.,+:=@-]+")
# Folders the shipped sandbox hides from the service (ProtectHome=yes, PrivateTmp=yes).
HIDDEN_FROM_SERVICE = (Path("/home"), Path("/root"), Path("/run/user"), Path("/tmp"), Path("/var/tmp"))


def shipped_unit_path() -> Path:
    """The unit: installed as monitor/systemd/, in a checkout <repo>/systemd/."""
    package_dir = Path(__file__).resolve().parents[1]
    installed = package_dir / "systemd" / UNIT_NAME
    if installed.is_file():
        return installed
    return package_dir.parent / "systemd" / UNIT_NAME


def installed_command(python: Path, search_path: str | None) -> list[str]:
    """How to start this installation: the console script beside PYTHON, else on PATH, else `python -m`."""
    beside = python.parent / "monitor"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("monitor", path=search_path)
    if found:
        return [str(Path(found).absolute())]
    return [str(python), "-m", "monitor"]


def systemd_word(word: str, *, program: bool = False) -> str:
    """WORD as one argument of a unit's command line.

    systemd expands % specifiers everywhere and $VARIABLES in the arguments,
    but takes the program's own path literally, so '$' is doubled only in an argument.
    """
    if SAFE_WORD.fullmatch(word):
        return word
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if not program:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"'


def render_unit(text: str, command: Sequence[str]) -> str:
    """TEXT with the program of every ExecStart= replaced by COMMAND; its options are kept."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("ExecStart="):
            body = line[len("ExecStart="):].rstrip("\n")
            options = body.split(None, 1)[1:] if body.strip() else []
            words = [systemd_word(command[0], program=True)] + [systemd_word(word) for word in command[1:]]
            line = "ExecStart=" + " ".join(words + options) + "\n"
        lines.append(line)
    return "".join(lines)


def sandbox_warnings(command: Sequence[str]) -> list[str]:
    """Why the service could not start this program: the sandbox hides where it lives."""
    program = Path(command[0])
    warnings = []
    for candidate in dict.fromkeys([program, program.resolve()]):
        for hidden in HIDDEN_FROM_SERVICE:
            if candidate.is_relative_to(hidden):
                warnings.append(f"{candidate} is under {hidden}, which the unit's sandbox hides from the "
                                "service; install monitor in a virtualenv under /opt/monitor")
                break
    if len(command) > 1:
        warnings.append(f"no `monitor` command found beside {command[0]} or on PATH; the unit runs "
                        f"`{' '.join(command)}`, which works only if monitor is installed for that Python")
    return warnings


@click.command("systemd-unit")
def systemd_unit_command() -> None:
    """Print the systemd unit for this installation (sandboxed, Type=notify, reload on SIGHUP).

    \b
    Examples:
      monitor systemd-unit > /etc/systemd/system/monitor.service
      systemctl daemon-reload && systemctl enable --now monitor
    """
    path = shipped_unit_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MonitorError(f"the systemd unit is missing from this installation ({path}: "
                           f"{error.strerror or error}): reinstall monitor") from None
    command = installed_command(Path(sys.executable), os.environ.get("PATH"))
    for warning in sandbox_warnings(command):
        click.echo(f"monitor: warning: {warning}", err=True)
    click.echo(render_unit(text, command), nl=False)


COMMANDS = [systemd_unit_command]
