"""A new PostgreSQL database per test, on the machine's server, dropped afterwards.

The server is the one the machine runs (127.0.0.1:5432, trust authentication;
`MONITOR_TEST_POSTGRES_URL` points elsewhere). Where it cannot be reached the
tests that need it are skipped with the reason shown, unless
`MONITOR_TEST_POSTGRES=required` (set by CI), where they fail instead: CI must
never pass by skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

ADMIN_URL = os.environ.get("MONITOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _unreachable(reason: str) -> None:
    if os.environ.get("MONITOR_TEST_POSTGRES") == "required":
        pytest.fail(f"PostgreSQL is required here (MONITOR_TEST_POSTGRES=required): {reason}")
    pytest.skip(f"PostgreSQL not reachable at {ADMIN_URL}: {reason}")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin():  # a psycopg connection; psycopg is imported only here
    try:
        import psycopg
    except ImportError as exc:
        _unreachable(f"psycopg is not installed ({exc})")
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        _unreachable(str(exc).strip())


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new, empty database, dropped (with its connections) after the test."""
    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
