"""The shipped systemd unit and sysusers file, and `monitor systemd-unit`."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from monitor.cli.systemd_cmd import installed_command, render_unit, sandbox_warnings, shipped_unit_path, systemd_word

CHECKOUT = Path(__file__).resolve().parents[1]
UNIT = CHECKOUT / "systemd" / "monitor.service"
SYSUSERS = CHECKOUT / "systemd" / "monitor.sysusers"
MAX_EXPOSURE = 2.0


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value in order (systemd keys may repeat, unlike configparser's)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        sections[section][key.strip()].append(value.strip())
    return sections


def run_monitor(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "monitor", *args], env=env, text=True,
                          capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))["Service"]


REQUIRED = {
    "Type": "notify",
    "NotifyAccess": "main",
    "ExecStart": "/opt/monitor/bin/monitor run --watch-config",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "Restart": "on-failure",
    "RestartSec": "5",
    "WatchdogSec": "60",
    "TimeoutStopSec": "15",
    "User": "monitor",
    "Group": "monitor",
    "StateDirectory": "monitor",
    "StateDirectoryMode": "0700",
    "ConfigurationDirectory": "monitor",
    "ConfigurationDirectoryMode": "0700",
    "UMask": "0077",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "MemoryDenyWriteExecute": "yes",
    "MemoryMax": "1G",
    "LimitNOFILE": "8192",
    "SystemCallArchitectures": "native",
}


@pytest.mark.parametrize(("key", "value"), REQUIRED.items())
def test_unit_has_the_required_directive(service, key, value):
    assert service[key] == [value]


def test_syscalls_are_limited_to_a_system_service_without_privileged_ones(service):
    assert service["SystemCallFilter"][0] == "@system-service"
    assert {"@privileged", "@resources"} <= set(service["SystemCallFilter"][1].lstrip("~").split())


def test_the_network_stays_reachable_and_no_secret_is_in_the_environment(service):
    assert "PrivateNetwork" not in service and "IPAddressAllow" not in service
    assert service.get("IPAddressDeny", []) == ["link-local"]  # no metadata service, all else open
    for assignment in service.get("Environment", []):
        assert not re.search(r"(?i)pass|secret|token|key", assignment), assignment


def test_the_shipped_unit_is_the_one_the_command_reads():
    assert shipped_unit_path().resolve() == UNIT.resolve()


def test_sysusers_declares_the_service_user_with_its_state_home():
    lines = [line for line in SYSUSERS.read_text().splitlines() if line and not line.startswith("#")]
    assert [shlex.split(line) for line in lines] == [["u", "monitor", "-", "news-feed monitor", "/var/lib/monitor"]]


@pytest.mark.skipif(not shutil.which("systemd-sysusers"), reason="systemd-sysusers is not installed")
def test_sysusers_file_is_accepted_by_systemd_sysusers():
    result = subprocess.run(["systemd-sysusers", "--dry-run", str(SYSUSERS)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Failed" not in result.stderr and "Failed" not in result.stdout


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed (CI installs it)")
def test_sandbox_exposure_is_at_most_two():
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def systemd_verify(unit: Path) -> list[str]:
    """What `systemd-analyze verify` says about UNIT (lines about the host's own units are noise)."""
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, timeout=60)
    problems = [line for line in result.stderr.splitlines() if unit.name in line]
    if result.returncode != 0:
        problems.append(f"exit {result.returncode}: {result.stderr}")
    return problems


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed (CI installs it)")
def test_every_directive_is_known_to_systemd(tmp_path):
    runnable = tmp_path / "monitor.service"
    runnable.write_text(render_unit(UNIT.read_text(), ["/bin/true"]))
    assert systemd_verify(runnable) == []


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed (CI installs it)")
def test_systemd_finds_a_program_whose_path_has_spaces_percent_and_dollar(tmp_path):
    program = tmp_path / "my apps" / "100%" / "$HOME" / "monitor"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    unit = tmp_path / "monitor.service"
    unit.write_text(render_unit(UNIT.read_text(), [str(program)]))
    assert systemd_verify(unit) == []
    missing = tmp_path / "missing.service"
    missing.write_text(render_unit(UNIT.read_text(), [str(program) + "-missing"]))
    assert systemd_verify(missing), "verify reports a missing program, so the check above is real"


def exec_start(unit_text: str) -> list[str]:
    [line] = parse_unit(unit_text)["Service"]["ExecStart"]
    return shlex.split(line)


def test_systemd_unit_command_points_execstart_at_an_existing_executable():
    result = run_monitor("systemd-unit")
    assert result.returncode == 0, result.stderr
    words = exec_start(result.stdout)
    program = Path(words[0])
    assert program.is_absolute() and program.is_file() and os.access(program, os.X_OK)
    assert words[-2:] == ["run", "--watch-config"]
    shipped = UNIT.read_text().splitlines()
    printed = result.stdout.splitlines()
    changed = [(old, new) for old, new in zip(shipped, printed, strict=False) if old != new]
    assert len(printed) == len(shipped) and [old for old, _ in changed] == [
        "ExecStart=/opt/monitor/bin/monitor run --watch-config"]


@pytest.mark.skipif((Path(sys.executable).parent / "monitor").is_file(),
                    reason="this interpreter has its own monitor command, which wins over PATH")
def test_systemd_unit_command_finds_the_monitor_command_on_path(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "monitor"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    result = run_monitor("systemd-unit", path=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    assert result.returncode == 0, result.stderr
    assert exec_start(result.stdout) == [str(script), "run", "--watch-config"]


def test_a_program_the_sandbox_hides_is_warned_about():
    [home] = sandbox_warnings(["/home/alice/venv/bin/monitor"])
    assert "/home" in home and "/opt/monitor" in home
    assert sandbox_warnings(["/opt/monitor/bin/monitor"]) == []
    module_fallback = sandbox_warnings(["/usr/bin/python3", "-m", "monitor"])
    assert len(module_fallback) == 1 and "/usr/bin/python3 -m monitor" in module_fallback[0]


def test_the_console_script_beside_the_interpreter_wins(tmp_path):
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    python = tmp_path / "venv" / "bin" / "python"
    beside = tmp_path / "venv" / "bin" / "monitor"
    on_path = tmp_path / "other"
    on_path.mkdir()
    for script in (beside, on_path / "monitor"):
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    assert installed_command(python, str(on_path)) == [str(beside)]
    beside.unlink()
    assert installed_command(python, str(on_path)) == [str(on_path / "monitor")]
    assert installed_command(python, str(tmp_path / "empty")) == [str(python), "-m", "monitor"]


def test_paths_with_spaces_percent_and_dollar_survive_systemd_parsing():
    text = "[Service]\nExecStart=/opt/monitor/bin/monitor run --watch-config\nExecReload=/bin/kill -HUP $MAINPID\n"
    rendered = render_unit(text, ["/srv/my apps/100%/$HOME/monitor"])
    assert rendered.splitlines()[1] == 'ExecStart="/srv/my apps/100%%/$HOME/monitor" run --watch-config'
    with_arguments = render_unit(text, ["/usr/bin/python3", "-m", "$monitor"])
    assert with_arguments.splitlines()[1] == 'ExecStart=/usr/bin/python3 -m "$$monitor" run --watch-config'
    assert rendered.splitlines()[2] == "ExecReload=/bin/kill -HUP $MAINPID"
    assert systemd_word("/opt/monitor/bin/monitor") == "/opt/monitor/bin/monitor"
