"""https:// feeds are fetched with the certificate verified, plain http:// ones without loading
any certificate store (monitor/ingest/proxy.py: _DirectTransport makes the verifying transport
at the first https:// request). The server is a FeedServer with a certificate from trustme's CA.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from monitor.ingest.fetch import Fetcher
from monitor.models import FetchOutcome, FetchRequest, FetchResult
from support.feedserver import FeedServer, static
from test_fetch import FEED, NOW, SETTINGS


@pytest.fixture
def ca_file(tmp_path: Path) -> Iterator[tuple[trustme.CA, Path]]:
    ca = trustme.CA()
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    yield ca, path


@pytest.fixture
def https_server(ca_file: tuple[trustme.CA, Path]) -> Iterator[FeedServer]:
    ca, _ = ca_file
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with FeedServer(tls=context, routes={"/feed.xml": static(FEED)}) as server:
        yield server


@pytest.fixture(autouse=True)
def system_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default trust store (certifi's), whatever the machine's environment says."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def fetch_all(*urls: str) -> list[FetchResult]:
    """Fetch each URL in turn with one Fetcher, made now so it reads the environment as set."""

    async def run() -> list[FetchResult]:
        async with Fetcher(SETTINGS) as fetcher:
            return [await fetcher.fetch(FetchRequest(feed="test", url=url), NOW) for url in urls]

    return asyncio.run(run())


def test_an_https_feed_with_an_untrusted_certificate_is_a_tls_error(https_server: FeedServer) -> None:
    [result] = fetch_all(https_server.url("/feed.xml"))
    assert (result.outcome, result.error_kind) == (FetchOutcome.ERROR, "tls")
    assert "certificate" in result.error.lower()
    assert https_server.requests_to("/feed.xml") == []  # nothing was sent over the unverified link


def test_an_https_feed_is_fetched_once_its_ca_is_trusted(
        https_server: FeedServer, ca_file: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file[1]))  # read by httpx, as before the lazy transport
    [result] = fetch_all(https_server.url("/feed.xml"))
    assert result.outcome is FetchOutcome.OK and result.body == FEED


def test_one_fetcher_serves_plain_feeds_before_and_https_feeds_after(
        https_server: FeedServer, ca_file: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain transport, made first, must never carry an https:// request: its context trusts
    nothing, so the https fetch succeeds only on the verifying transport made for it."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file[1]))
    with FeedServer(routes={"/plain.xml": static(FEED)}) as plain:
        results = fetch_all(plain.url("/plain.xml"), https_server.url("/feed.xml"), plain.url("/plain.xml"))
    assert [r.outcome for r in results] == [FetchOutcome.OK] * 3
