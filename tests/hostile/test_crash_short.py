"""Short crash runs (the same code as `python -m bench.chaos.crash`): 5 kills, and each outage."""

from __future__ import annotations

import pytest

from bench.chaos.crash import CrashSettings, run_crash

SHORT = dict(seed=5, feeds=6, interval=2.0, alert_every=4, max_delay=3.0)


def run(tmp_path, scenario: str, **changes):
    settings = CrashSettings(**{**SHORT, **changes, "scenarios": (scenario,)})
    [result] = run_crash(settings, tmp_path, log=lambda line: None)
    if result.skipped:
        pytest.skip(result.skipped)
    failed = [f"{check.name}: {check.detail}" for check in result.checks if not check.ok]
    return result, failed


def test_sigkill_loses_no_alert_and_duplicates_at_most_one_per_kill(tmp_path):
    result, failed = run(tmp_path, "kills", kills=5)
    assert not failed, failed
    assert result.figures["kills"] == 5 and result.figures["lost"] == 0


def test_mail_server_down_then_back_delivers_everything_once(tmp_path):
    result, failed = run(tmp_path, "smtp_down", smtp_down=4.0)
    assert not failed, failed
