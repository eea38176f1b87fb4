"""Shared fixtures: a real local feed server, temporary config folders and databases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.feedserver import FeedServer  # noqa: E402


@pytest.fixture
def feed_server():
    """A real HTTP server on 127.0.0.1 with an empty route table."""
    with FeedServer() as server:
        yield server


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on 127.0.0.1 collecting messages."""
    from support.sinks import SmtpSink

    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def webhook():
    """A real HTTP receiver for apprise json:// posts on 127.0.0.1."""
    from support.sinks import Webhook

    hook = Webhook().start()
    yield hook
    hook.stop()


@pytest.fixture(autouse=True)
def _loggers_as_python_leaves_them():
    """A test that runs the CLI in this process (CliRunner, main([...])) gets its log
    setup: the "monitor" logger stops propagating and the root logger gains our handler.
    Undo that after each test, so a later test's caplog still sees monitor's records."""
    import logging

    yield
    for name in ("monitor", "apscheduler"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "monitor_handler", False)]
