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
