"""Proxies from the environment, and NO_PROXY with CIDR entries, which httpx ignores.

The proxy is a FeedServer too: a proxied request arrives with the absolute URL
as its path, so the server's request log is the list of what went through it.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from monitor.ingest.fetch import Fetcher
from monitor.ingest.proxy import NoProxy
from monitor.models import FetchOutcome, FetchRequest, FetchResult
from support.feedserver import FeedServer, redirect, static
from test_fetch import FEED, NOW, SETTINGS


def fetch(url: str) -> FetchResult:
    """One fetch by a Fetcher made now, so it reads the environment as set by the test."""

    async def run() -> FetchResult:
        async with Fetcher(SETTINGS) as fetcher:
            return await fetcher.fetch(FetchRequest(feed="test", url=url), NOW)

    return asyncio.run(run())


# --- NoProxy: the pure matching ------------------------------------------------------------


@pytest.mark.parametrize("no_proxy, url, bypassed", [
    ("10.0.0.0/8", "http://10.1.2.3/feed", True),
    ("10.0.0.0/8", "https://10.255.255.255:8443/feed", True),
    ("10.0.0.0/8", "http://11.0.0.1/feed", False),
    ("192.168.0.0/16", "http://192.169.0.1/", False),
    ("10.1.2.3/8", "http://10.9.9.9/", True),  # host bits set: still the network 10/8
    ("127.0.0.0/8", "http://localhost/", False),  # names are never resolved
    ("10.0.0.0/8", "http://10.example.com/", False),
    ("fd00::/8", "http://[fd12::1]/feed", True),
    ("fd00::/8", "http://[fe80::1]/feed", False),
    ("fd00::/8", "http://10.1.2.3/", False),
    ("10.0.0.0/8", "http://[::ffff:10.1.2.3]/", False),
    ("::1", "http://[::1]:8080/", True),
    ("10.1.2.3", "http://10.1.2.3/", True),
    ("10.1.2.3", "http://10.1.2.4/", False),
    ("example.com", "http://example.com/", True),
    ("example.com", "https://www.EXAMPLE.com/", True),
    ("example.com", "http://notexample.com/", False),
    (".example.com", "http://example.com/", False),
    (".example.com", "http://a.example.com/", True),
    ("*.example.com", "http://a.b.example.com/", True),
    ("*.example.com", "http://example.com/", False),
    ("1.2.3", "http://10.1.2.3/", False),  # a name never matches a literal IP
    ("localhost", "http://localhost:9000/", True),
    ("https://example.com", "https://example.com/", True),
    ("https://example.com", "http://example.com/", False),
    ("*", "http://anything.example/", True),
    ("example.org, *", "http://10.1.2.3/", True),
    ("", "http://10.1.2.3/", False),
    # with a port, an entry holds for that port only
    ("example.com:8080", "http://example.com:8080/", True),
    ("example.com:8080", "http://example.com/", False),
    ("example.com:80", "http://example.com/", True),  # the scheme's default port counts
    ("10.1.2.3:443", "https://10.1.2.3/", True),
    ("10.1.2.3:443", "http://10.1.2.3/", False),
    ("[::1]:8080", "http://[::1]:8080/", True),
    ("[::1]:8080", "http://[::1]:8081/", False),
    ("10.0.0.0/8:8080", "http://10.1.2.3:8080/", True),
    ("10.0.0.0/8:8080", "http://10.1.2.3/", False),
])
def test_no_proxy_entries(no_proxy: str, url: str, bypassed: bool) -> None:
    assert NoProxy.parse(no_proxy).bypasses(url) is bypassed


def test_no_proxy_entries_are_split_on_commas_and_whitespace() -> None:
    no_proxy = NoProxy.parse("  10.0.0.0/8 ,example.com,,\n\t192.168.0.0/16 fd00::/8 ")

    assert [no_proxy.bypasses(url) for url in (
        "http://10.1.2.3/", "http://www.example.com/", "http://192.168.4.5/",
        "http://[fd00::1]/", "http://172.16.0.1/")] == [True, True, True, True, False]
    assert no_proxy.invalid == ()


def test_invalid_entries_are_listed_and_skipped_while_the_rest_still_apply() -> None:
    bad = ["10.0.0.0/33", "300.1.2.3/8", "fd00::/129", "example.com/8", "example.com:http",
           "example.com:99999", "[::1", "[::1]8080", "exa*mple.com", "ex@mple.com"]
    no_proxy = NoProxy.parse(",".join([*bad, "10.0.0.0/8"]))

    assert list(no_proxy.invalid) == bad
    assert no_proxy.bypasses("http://10.1.2.3/")
    assert not no_proxy.bypasses("http://300.1.2.3/")


@pytest.mark.parametrize("url", ["http://[::1/", "http://example.com:port/", "not a url", ""])
def test_an_unparsable_url_is_not_bypassed_and_does_not_raise(url: str) -> None:
    assert NoProxy.parse("10.0.0.0/8,example.com").bypasses(url) is False


# --- end to end: a real Fetcher, a real proxy, a real feed server -----------------------------


def test_a_feed_inside_a_no_proxy_cidr_is_fetched_directly(
        monkeypatch: pytest.MonkeyPatch, proxied: FeedServer, feed_server: FeedServer) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
    feed_server.routes["/feed"] = static(FEED)

    result = fetch(feed_server.url("/feed"))

    assert result.outcome is FetchOutcome.OK and result.body == FEED
    assert [r.path for r in feed_server.requests] == ["/feed"]
    assert proxied.requests == []


@pytest.mark.parametrize("no_proxy", ["", "10.0.0.0/8", "::1/128", "localhost"])
def test_a_feed_outside_every_no_proxy_entry_goes_through_the_proxy(
        monkeypatch: pytest.MonkeyPatch, proxied: FeedServer, feed_server: FeedServer,
        no_proxy: str) -> None:
    monkeypatch.setenv("NO_PROXY", no_proxy)
    url = feed_server.url("/feed")
    feed_server.routes["/feed"] = static(FEED)
    proxied.routes[url] = static(b"proxy says no", "text/plain", status=502)

    result = fetch(url)

    assert result.outcome is FetchOutcome.ERROR and result.status == 502
    assert [(r.method, r.path) for r in proxied.requests] == [("GET", url)]
    assert feed_server.requests == []


def test_an_ipv6_cidr_in_no_proxy_does_not_break_the_fetcher(
        monkeypatch: pytest.MonkeyPatch, proxied: FeedServer, feed_server: FeedServer) -> None:
    """httpx 0.28 raises InvalidURL building a client when NO_PROXY holds `fd00::/8`."""
    monkeypatch.setenv("NO_PROXY", "fd00::/8, 127.0.0.0/8")
    feed_server.routes["/feed"] = static(FEED)

    assert fetch(feed_server.url("/feed")).outcome is FetchOutcome.OK
    assert proxied.requests == []


def test_each_redirect_hop_is_routed_on_its_own_url(
        monkeypatch: pytest.MonkeyPatch, proxied: FeedServer, feed_server: FeedServer) -> None:
    """Proxied to a name, then direct to a literal IP in the CIDR, then proxied to a name again."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
    by_name = f"http://localhost:{feed_server.port}"
    proxied.routes[f"{by_name}/old"] = redirect(feed_server.url("/moved"))
    feed_server.routes["/moved"] = redirect(f"{by_name}/new")
    proxied.routes[f"{by_name}/new"] = static(FEED)

    result = fetch(f"{by_name}/old")

    assert result.outcome is FetchOutcome.OK and result.body == FEED
    assert [r.path for r in proxied.requests] == [f"{by_name}/old", f"{by_name}/new"]
    assert [r.path for r in feed_server.requests] == ["/moved"]


def test_an_invalid_no_proxy_entry_is_named_in_a_warning_and_the_rest_still_apply(
        monkeypatch: pytest.MonkeyPatch, proxied: FeedServer, feed_server: FeedServer,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NO_PROXY", "10.0.0.0/33,127.0.0.0/8")
    feed_server.routes["/feed"] = static(FEED)

    with caplog.at_level(logging.WARNING, logger="monitor.ingest.proxy"):
        result = fetch(feed_server.url("/feed"))

    assert result.outcome is FetchOutcome.OK
    assert proxied.requests == []
    assert [record.getMessage() for record in caplog.records] == [
        "NO_PROXY entry '10.0.0.0/33' is not a host name, IP address or network: ignored"]
