"""A short chaos run (the same code as `python -m bench.chaos.chaos`): 30 feeds, 3 cycles."""

from __future__ import annotations

from bench.chaos.chaos import ChaosSettings, run_chaos


def test_short_chaos_run_keeps_every_invariant(tmp_path):
    settings = ChaosSettings(feeds=30, hostile=0.3, cycles=3, seed=5, interval=2.0, alert_every=8)
    result = run_chaos(settings, tmp_path, log=lambda line: None)
    failed = [f"{check.name}: {check.detail}" for check in result.checks if not check.ok]
    assert not failed, result.report()
    assert result.figures["hostile answers"] > 0 and result.figures["alerts expected"] > 0
