"""The hostile feed server of bench/chaos, for tests of the real fetcher, parser and daemon."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.chaos.hostile import HostileServer  # noqa: E402


@pytest.fixture(scope="module")
def hostile():
    """One hostile server on two loopback addresses (the 301 case moves between them)."""
    with HostileServer(("127.0.0.2", "127.0.0.3"), seed=11, drip_every=0.1) as server:
        yield server
