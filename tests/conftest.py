"""Shared fixtures: a real local feed server, temporary config folders and databases."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.feedserver import FeedServer  # noqa: E402
from support.postgres import postgres_url  # noqa: E402, F401 (a fixture)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: HOME, XDG dirs, config and db all under tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("MONITOR_", "XDG_", "CONFIGURATION_DIRECTORY", "STATE_DIRECTORY"))}
    base.update(HOME=str(home), MONITOR_CONFIG=str(tmp_path / "cfg"),
                MONITOR_DB=str(tmp_path / "state" / "monitor.db"),
                PYTHONPATH=str(Path(__file__).resolve().parents[1]), NO_PROXY="127.0.0.1,localhost")
    return base


@pytest.fixture
def proxy() -> Iterator[FeedServer]:
    """A FeedServer used as an HTTP proxy: a proxied request arrives with the absolute URL as its path."""
    with FeedServer() as server:
        yield server


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch, proxy: FeedServer) -> FeedServer:
    """HTTP_PROXY set to `proxy`, every other proxy variable cleared (lowercase ones win)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    return proxy


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path):
    """Where a store lives, once per backend: a new SQLite file, then a new PostgreSQL
    database (the store's contract holds on both)."""
    if request.param == "sqlite":
        return tmp_path / "state" / "monitor.db"
    from monitor.config.paths import DatabaseURL

    return DatabaseURL(request.getfixturevalue("postgres_url"), tmp_path / "state")


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
