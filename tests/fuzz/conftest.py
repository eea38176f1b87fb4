"""Hypothesis profiles for the fuzz tests.

"ci" (the default) runs a bounded, derandomised number of examples so the
folder is deterministic and quick; "full" (HYPOTHESIS_PROFILE=full) runs many
random examples for a long hunt, keeping failures in the example database so
a rerun replays them first.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

# Generating whole TOML files and mutated feeds is slow by Hypothesis' standards; that is the point.
_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=5),
    suppress_health_check=_SLOW_DATA,
    print_blob=False,
)
settings.register_profile(
    "full",
    max_examples=5_000,
    deadline=timedelta(seconds=5),
    suppress_health_check=_SLOW_DATA,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
