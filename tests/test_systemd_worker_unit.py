"""The shipped template unit of a cluster's workers, systemd/monitor-worker@.service.

Its sandbox is the daemon's (tests/test_systemd_unit.py checks that one): every
directive the two units share is compared here, so a hardening of one that the
other misses fails."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from monitor.cli.systemd_cmd import render_unit
from monitor.models import FetchSettings
from test_systemd_unit import MAX_EXPOSURE, UNIT, parse_unit, run_monitor, systemd_verify

WORKER_UNIT = UNIT.parent / "monitor-worker@.service"
# What only the daemon has or sets differently: sd_notify and its watchdog, reload on
# SIGHUP, its command and its stop timeout (a worker waits for its running jobs).
DAEMON_ONLY = {"Type", "NotifyAccess", "ExecStart", "ExecReload", "WatchdogSec", "TimeoutStopSec"}
needs_systemd_analyze = pytest.mark.skipif(not shutil.which("systemd-analyze"),
                                           reason="systemd-analyze is not installed (CI installs it)")


@pytest.fixture(scope="module")
def worker() -> dict[str, list[str]]:
    return parse_unit(WORKER_UNIT.read_text(encoding="utf-8"))["Service"]


@pytest.fixture(scope="module")
def daemon() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))["Service"]


def test_execstart_runs_monitor_worker_named_after_host_and_instance(worker):
    [line] = worker["ExecStart"]
    assert shlex.split(line) == ["/opt/monitor/bin/monitor", "worker", "--name", "%H-%i"]


def test_the_worker_command_and_its_name_option_exist():
    result = run_monitor("worker", "--help")
    assert result.returncode == 0, result.stderr
    assert "--name" in result.stdout and "--concurrency" in result.stdout


def test_a_plain_process_restarted_on_failure_and_stopped_gently(worker):
    assert worker["Type"] in (["exec"], ["simple"])  # no sd_notify in the worker
    assert "NotifyAccess" not in worker and "WatchdogSec" not in worker
    assert worker["Restart"] == ["on-failure"]
    assert worker["KillSignal"] == ["SIGTERM"]
    assert worker["KillMode"] == ["mixed"]  # its parser processes are stopped by the worker, in order


def test_stop_timeout_outlasts_a_running_poll(worker):
    [timeout] = worker["TimeoutStopSec"]
    settings = FetchSettings()
    assert int(timeout) >= settings.deadline + settings.parse_timeout, "a running poll would be killed mid-way"


def test_the_sandbox_is_the_daemons(worker, daemon):
    shared = {key: values for key, values in daemon.items() if key not in DAEMON_ONLY}
    assert {key: worker.get(key) for key in shared} == shared


def test_the_database_url_comes_from_an_optional_root_file_never_from_the_unit(worker):
    assert worker["EnvironmentFile"] == ["-/etc/monitor/worker.env"]
    text = WORKER_UNIT.read_text(encoding="utf-8")
    settings = [line for line in text.splitlines() if line and not line.startswith(("#", ";"))]
    assert not [line for line in settings if "postgresql://" in line or "MONITOR_DB" in line]
    for assignment in worker.get("Environment", []):
        assert not re.search(r"(?i)pass|secret|token|key", assignment), assignment


def test_the_template_is_shipped_beside_the_daemons_unit():
    force_included = (UNIT.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"systemd" = "monitor/systemd"' in force_included


def runnable_instance(folder: Path, program: str) -> Path:
    """An instance of the template (systemd names its messages after it) starting PROGRAM."""
    unit = folder / "monitor-worker@1.service"
    unit.write_text(render_unit(WORKER_UNIT.read_text(encoding="utf-8"), [program]), encoding="utf-8")
    return unit


@needs_systemd_analyze
def test_every_directive_is_known_to_systemd(tmp_path):
    assert systemd_verify(runnable_instance(tmp_path, "/bin/true")) == []
    (tmp_path / "missing").mkdir()
    missing = runnable_instance(tmp_path / "missing", "/nonexistent/monitor")
    assert systemd_verify(missing), "verify reports a missing program, so the check above is real"


def exposure(unit: Path) -> float:
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


@needs_systemd_analyze
def test_sandbox_exposure_is_at_most_the_daemons(tmp_path):
    worker = exposure(runnable_instance(tmp_path, "/opt/monitor/bin/monitor"))
    assert worker <= exposure(UNIT) and worker <= MAX_EXPOSURE
