"""The fetcher against a real HTTP server on 127.0.0.1 that behaves well and badly."""

from __future__ import annotations

import asyncio
import base64
import gzip
import queue
import random
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.ingest.fetch import Fetcher, body_hash, parse_retry_after, redact_url
from monitor.models import FetchOutcome, FetchRequest, FetchResult, FetchSettings
from support.feedserver import FeedServer, drip, fixture_bytes, redirect, static
from support.hostile_routes import closed_port, compressed, gated, gzip_bomb, reset_mid_body, unsized

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FEED = fixture_bytes("other_rss-parser_guardian.rss")
SETTINGS = FetchSettings(connect_timeout=5.0, read_timeout=5.0, deadline=10.0)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FeedServer, FeedServer]]:
    """Two servers (two host:port pairs) shared by the module: stopping one takes 0.5 s."""
    with FeedServer() as first, FeedServer() as second:
        yield first, second


def _fresh(server: FeedServer) -> FeedServer:
    server.routes.clear()
    server.requests.clear()
    return server


@pytest.fixture
def server(servers: tuple[FeedServer, FeedServer]) -> FeedServer:
    return _fresh(servers[0])


@pytest.fixture
def other_server(servers: tuple[FeedServer, FeedServer]) -> FeedServer:
    return _fresh(servers[1])


def fetch_all(settings: FetchSettings, *requests: FetchRequest) -> list[FetchResult]:
    """Fetch REQUESTS one after the other with one Fetcher, as a poll cycle would."""

    async def run() -> list[FetchResult]:
        async with Fetcher(settings) as fetcher:
            return [await fetcher.fetch(request, NOW) for request in requests]

    return asyncio.run(run())


def fetch(url: str, settings: FetchSettings = SETTINGS, **fields: object) -> FetchResult:
    return fetch_all(settings, FetchRequest(feed="test", url=url, **fields))[0]


# --- conditional GET and unchanged bodies ----------------------------------------------


def test_etag_round_trip_gives_not_modified(server: FeedServer) -> None:
    server.routes["/feed"] = static(FEED, last_modified=False)
    first = fetch(server.url("/feed"))
    assert first.outcome is FetchOutcome.OK and first.body == FEED
    assert first.etag and first.body_hash == body_hash(FEED)

    second = fetch(server.url("/feed"), etag=first.etag)

    assert second.outcome is FetchOutcome.NOT_MODIFIED and second.status == 304
    assert second.body is None and second.etag == first.etag
    assert server.requests_to("/feed")[1].headers["If-None-Match"] == first.etag


def test_last_modified_round_trip_gives_not_modified(server: FeedServer) -> None:
    server.routes["/feed"] = static(FEED, etag=False)
    first = fetch(server.url("/feed"))
    assert first.last_modified and first.etag is None

    second = fetch(server.url("/feed"), last_modified=first.last_modified)

    assert second.outcome is FetchOutcome.NOT_MODIFIED
    assert second.last_modified == first.last_modified
    sent = server.requests_to("/feed")[1].headers
    assert sent["If-Modified-Since"] == first.last_modified and "If-None-Match" not in sent


def test_same_body_with_200_is_unchanged(server: FeedServer) -> None:
    server.routes["/feed"] = static(FEED, etag=False, last_modified=False)
    result = fetch(server.url("/feed"), body_hash=body_hash(FEED))
    assert result.outcome is FetchOutcome.UNCHANGED and result.body is None
    assert result.body_hash == body_hash(FEED)


def test_changed_body_with_200_is_ok(server: FeedServer) -> None:
    server.routes["/feed"] = static(FEED, etag=False, last_modified=False)
    result = fetch(server.url("/feed"), body_hash=body_hash(b"last time"))
    assert result.outcome is FetchOutcome.OK and result.body == FEED
    assert result.bytes_read == len(FEED) and result.duration > 0


# --- request headers -------------------------------------------------------------------


def test_request_headers_name_the_project_and_prefer_feeds(server: FeedServer) -> None:
    server.routes["/feed"] = static(FEED)
    token = "Basic " + base64.b64encode(b"reader:hunter2").decode()
    fetch(server.url("/feed"), headers={"Authorization": token})
    sent = server.requests_to("/feed")[0].headers
    assert sent["User-Agent"] == SETTINGS.user_agent and "monitor" in sent["User-Agent"]
    assert sent["Accept-Encoding"] == "gzip, deflate"
    assert sent["Accept"].startswith("application/rss+xml, application/atom+xml")
    assert sent["Authorization"] == token


def test_credentials_are_not_sent_to_another_host_after_redirect(
        server: FeedServer, other_server: FeedServer) -> None:
    other_server.routes["/feed"] = static(FEED)
    server.routes["/feed"] = redirect(other_server.url("/feed"), 301)
    server.routes["/same-host"] = redirect("/elsewhere", 302)
    server.routes["/elsewhere"] = static(FEED)
    auth = {"Authorization": "Bearer s3cret"}

    assert fetch(server.url("/feed"), headers=auth).outcome is FetchOutcome.OK
    assert fetch(server.url("/same-host"), headers=auth).outcome is FetchOutcome.OK

    assert server.requests_to("/feed")[0].headers["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in other_server.requests_to("/feed")[0].headers
    assert server.requests_to("/elsewhere")[0].headers["Authorization"] == "Bearer s3cret"


# --- redirects -------------------------------------------------------------------------


def chain(server: FeedServer, *statuses: int) -> str:
    """/r0 -> /r1 -> ... -> /end with the given redirect statuses; returns the first URL."""
    for i, status in enumerate(statuses):
        target = f"/r{i + 1}" if i + 1 < len(statuses) else "/end"
        server.routes[f"/r{i}"] = redirect(target, status)
    server.routes["/end"] = static(FEED)
    return server.url("/r0")


@pytest.mark.parametrize("statuses, permanent", [
    ((301,), "/end"),
    ((308,), "/end"),
    ((301, 308), "/end"),
    ((302,), None),
    ((307,), None),
    ((301, 301, 302), "/r2"),
    ((302, 301), None),
    ((308, 307, 301), "/r1"),
])
def test_only_a_leading_run_of_permanent_redirects_moves_the_feed(
        server: FeedServer, statuses: tuple[int, ...], permanent: str | None) -> None:
    result = fetch(chain(server, *statuses))
    assert result.outcome is FetchOutcome.OK and result.body == FEED
    assert result.final_url == server.url("/end")
    assert result.permanent_url == (server.url(permanent) if permanent else None)


def test_relative_location_is_resolved_against_the_current_url(
        server: FeedServer) -> None:
    server.routes["/old/feed"] = redirect("../new/feed.xml", 301)
    server.routes["/new/feed.xml"] = static(FEED)
    result = fetch(server.url("/old/feed"))
    assert result.outcome is FetchOutcome.OK
    assert result.permanent_url == result.final_url == server.url("/new/feed.xml")


def test_redirect_loop_is_an_error(server: FeedServer) -> None:
    server.routes["/a"] = redirect("/b", 302)
    server.routes["/b"] = redirect("/a", 302)
    result = fetch(server.url("/a"))
    assert (result.outcome, result.error_kind) == (FetchOutcome.ERROR, "redirect")
    assert "loop" in result.error
    assert len(server.requests) == 2


def test_too_many_redirects_is_an_error(server: FeedServer) -> None:
    url = chain(server, 302, 302, 302)
    result = fetch(url, replace(SETTINGS, max_redirects=2))
    assert result.error_kind == "redirect" and "more than 2 redirects" in result.error
    assert not server.requests_to("/end")
    assert fetch(url, replace(SETTINGS, max_redirects=3)).outcome is FetchOutcome.OK


# --- status codes ----------------------------------------------------------------------


def test_410_is_gone(server: FeedServer) -> None:
    server.routes["/feed"] = static(b"gone", status=410)
    result = fetch(server.url("/feed"))
    assert result.outcome is FetchOutcome.GONE and result.status == 410


def test_429_with_retry_after_seconds(server: FeedServer) -> None:
    server.routes["/feed"] = static(b"", status=429, headers={"Retry-After": "120"})
    result = fetch(server.url("/feed"))
    assert (result.outcome, result.error_kind, result.status) == (FetchOutcome.ERROR, "http", 429)
    assert result.retry_after == NOW + timedelta(seconds=120)


def test_429_with_retry_after_http_date(server: FeedServer) -> None:
    server.routes["/feed"] = static(
        b"", status=429, headers={"Retry-After": "Wed, 01 May 2024 13:30:00 GMT"})
    result = fetch(server.url("/feed"))
    assert result.retry_after == datetime(2024, 5, 1, 13, 30, tzinfo=UTC)


def test_503_with_retry_after(server: FeedServer) -> None:
    server.routes["/feed"] = static(b"", status=503, headers={"Retry-After": "3600"})
    result = fetch(server.url("/feed"))
    assert (result.error_kind, result.status) == ("http", 503)
    assert result.retry_after == NOW + timedelta(hours=1)


def test_500_is_an_http_error_with_its_reason(server: FeedServer) -> None:
    server.routes["/feed"] = static(b"oops", status=500, headers={"Retry-After": "60"})
    result = fetch(server.url("/feed"))
    assert (result.outcome, result.error_kind, result.status) == (FetchOutcome.ERROR, "http", 500)
    assert result.error.startswith("HTTP 500 Internal Server Error")
    assert result.retry_after is None


@pytest.mark.parametrize("value, expected", [
    ("0", NOW),
    (" 90 ", NOW + timedelta(seconds=90)),
    ("Wed, 01 May 2024 12:05:00 GMT", NOW + timedelta(minutes=5)),
    ("Tue, 30 Apr 2024 12:00:00 GMT", NOW),  # in the past: retry now
    ("99999999999999999999", NOW + timedelta(days=7)),
    ("Fri, 01 May 2099 12:00:00 GMT", NOW + timedelta(days=7)),
    ("-5", None),
    ("soon", None),
    ("", None),
    (None, None),
])
def test_parse_retry_after(value: str | None, expected: datetime | None) -> None:
    assert parse_retry_after(value, NOW) == expected


# --- deadlines and sizes ---------------------------------------------------------------


@pytest.fixture
def stop_drip() -> Iterator[threading.Event]:
    stop = threading.Event()
    yield stop
    stop.set()


def test_dripping_server_hits_the_overall_deadline(
        server: FeedServer, stop_drip: threading.Event) -> None:
    body = FEED[:100]  # would take 5 s without the deadline
    server.routes["/feed"] = drip(body, delay=0.05, stop=stop_drip)
    started = time.monotonic()
    result = fetch(server.url("/feed"), replace(SETTINGS, deadline=1.0))
    assert (result.outcome, result.error_kind) == (FetchOutcome.ERROR, "timeout")
    assert "1 s deadline" in result.error
    assert 0 < result.bytes_read < len(body)
    assert time.monotonic() - started < 3


def test_stalled_body_hits_the_read_timeout(server: FeedServer,
                                           stop_drip: threading.Event) -> None:
    server.routes["/feed"] = drip(FEED[:100], delay=5.0, stop=stop_drip)
    result = fetch(server.url("/feed"), replace(SETTINGS, read_timeout=0.3))
    assert result.error_kind == "timeout" and result.error.startswith("timed out waiting for data")
    assert result.bytes_read == 1


def test_declared_oversize_body_is_too_large(server: FeedServer) -> None:
    server.routes["/feed"] = static(FEED)
    result = fetch(server.url("/feed"), replace(SETTINGS, max_body_bytes=1000))
    assert result.error_kind == "too_large" and "exceeds 1000 bytes limit" in result.error


def test_undeclared_oversize_body_is_cut_off(server: FeedServer) -> None:
    server.routes["/feed"] = unsized(bytes(5000))
    result = fetch(server.url("/feed"), replace(SETTINGS, max_body_bytes=1000))
    assert result.error_kind == "too_large" and result.body is None


def test_raw_bytes_are_capped_even_when_the_decoded_body_would_fit(server: FeedServer) -> None:
    noise = random.Random(0).randbytes(2000)  # incompressible: gzip makes it bigger
    packed = gzip.compress(noise)
    assert len(packed) > len(noise)
    server.routes["/feed"] = unsized(packed, {"Content-Encoding": "gzip"})
    result = fetch(server.url("/feed"), replace(SETTINGS, max_body_bytes=len(noise)))
    assert result.error_kind == "too_large" and result.body is None


def test_body_without_length_up_to_the_cap_is_read_whole(server: FeedServer) -> None:
    server.routes["/feed"] = unsized(FEED)
    result = fetch(server.url("/feed"), replace(SETTINGS, max_body_bytes=len(FEED)))
    assert result.outcome is FetchOutcome.OK and result.body == FEED


def test_gzip_bomb_is_refused_without_inflating_it(server: FeedServer) -> None:
    bomb = gzip_bomb(100 * 1024 * 1024)
    assert len(bomb) < 200_000
    server.routes["/feed"] = compressed(bomb, "gzip")
    tracemalloc.start()
    try:
        result = fetch(server.url("/feed"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.error_kind == "too_large"
    assert result.error.startswith("body exceeds 10 MB limit")
    assert peak < 40 * 1024 * 1024


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize("encoding, pack", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", _raw_deflate),
], ids=["gzip", "deflate-zlib", "deflate-raw"])
def test_compressed_body_is_decoded(server: FeedServer, encoding: str,
                                    pack: Callable[[bytes], bytes]) -> None:
    packed = pack(FEED)
    server.routes["/feed"] = compressed(packed, encoding)
    result = fetch(server.url("/feed"))
    assert result.outcome is FetchOutcome.OK and result.body == FEED
    assert result.body_hash == body_hash(FEED)
    assert result.bytes_read == len(packed)
    assert "content-encoding" not in result.headers
    assert result.headers["content-type"] == "application/rss+xml"


@pytest.mark.parametrize("body", [b"this is not gzip at all", gzip.compress(FEED)[:-200]],
                         ids=["garbage", "truncated"])
def test_corrupt_compressed_body_is_a_decode_error(server: FeedServer, body: bytes) -> None:
    server.routes["/feed"] = compressed(body, "gzip")
    result = fetch(server.url("/feed"))
    assert (result.outcome, result.error_kind) == (FetchOutcome.ERROR, "decode")


def test_unsupported_content_encoding_is_a_decode_error(server: FeedServer) -> None:
    server.routes["/feed"] = compressed(b"\x8b\x00", "br")
    assert fetch(server.url("/feed")).error_kind == "decode"


# --- network failures ------------------------------------------------------------------


def test_refused_connection_is_connect_error() -> None:
    result = fetch(f"http://127.0.0.1:{closed_port()}/feed")
    assert (result.outcome, result.error_kind) == (FetchOutcome.ERROR, "connect")
    assert "Connection refused" in result.error


def test_reset_mid_body_is_protocol_error(server: FeedServer) -> None:
    server.routes["/feed"] = reset_mid_body
    result = fetch(server.url("/feed"))
    assert result.error_kind == "protocol"
    assert "connection lost while reading the body" in result.error


def test_unresolvable_host_is_dns_error() -> None:
    result = fetch("http://nonexistent.invalid/feed")
    assert result.error_kind == "dns" and "nonexistent.invalid" in result.error


def test_tls_to_a_plain_http_server_is_tls_error(server: FeedServer) -> None:
    result = fetch(server.url("/feed").replace("http://", "https://"))
    assert result.error_kind == "tls" and result.error.startswith("TLS error")


def test_errors_never_reveal_credentials(server: FeedServer) -> None:
    server.routes["/boom"] = static(b"", status=500)
    server.routes["/moved"] = redirect("/moved", 302)
    secret = "Bearer top-secret-token"
    urls = [server.url("/boom"), server.url("/moved"),
            f"http://127.0.0.1:{closed_port()}/feed", "http://nonexistent.invalid/"]
    for url in urls:
        with_userinfo = url.replace("http://", "http://user:secret@")
        result = fetch(with_userinfo, headers={"Authorization": secret})
        assert result.outcome is FetchOutcome.ERROR
        assert "secret" not in result.error and "user" not in result.error
        assert redact_url(with_userinfo) in result.error
        assert "Traceback" not in result.error


def test_redact_url_strips_only_userinfo() -> None:
    assert redact_url("https://u:p@ex.org:8443/a?b=1") == "https://ex.org:8443/a?b=1"
    assert redact_url("https://ex.org/@handle") == "https://ex.org/@handle"


# --- concurrency -----------------------------------------------------------------------


def test_per_host_limit_queues_the_third_fetch_but_not_other_hosts(
        server: FeedServer, other_server: FeedServer) -> None:
    arrivals: queue.Queue[str] = queue.Queue()
    gate = threading.Event()
    server.routes["/slow"] = gated(arrivals, gate)
    other_server.routes["/feed"] = static(FEED)
    settings = replace(SETTINGS, per_host_limit=2)

    async def run() -> list[FetchResult]:
        async with Fetcher(settings) as fetcher:
            slow = [asyncio.create_task(fetcher.fetch(
                FetchRequest("slow", server.url(f"/slow?{i}")), NOW)) for i in range(3)]
            for _ in range(2):
                await asyncio.to_thread(arrivals.get, timeout=5)
            other_host = await fetcher.fetch(FetchRequest("other", other_server.url("/feed")), NOW)
            assert other_host.outcome is FetchOutcome.OK
            assert arrivals.empty() and len(server.requests) == 2
            gate.set()
            return await asyncio.gather(*slow)

    try:
        results = asyncio.run(run())
    finally:
        gate.set()
    assert [r.outcome for r in results] == [FetchOutcome.OK] * 3
    assert len(server.requests) == 3


def test_global_limit_holds_fetches_to_any_host(
        server: FeedServer, other_server: FeedServer) -> None:
    arrivals: queue.Queue[str] = queue.Queue()
    gate = threading.Event()
    server.routes["/slow"] = gated(arrivals, gate)
    other_server.routes["/feed"] = static(FEED)
    settings = replace(SETTINGS, global_limit=1)

    async def run() -> FetchResult:
        async with Fetcher(settings) as fetcher:
            slow = asyncio.create_task(
                fetcher.fetch(FetchRequest("slow", server.url("/slow")), NOW))
            await asyncio.to_thread(arrivals.get, timeout=5)
            waiting = asyncio.create_task(
                fetcher.fetch(FetchRequest("other", other_server.url("/feed")), NOW))
            done, _ = await asyncio.wait({waiting}, timeout=0.3)  # proof of absence only
            assert not done and not other_server.requests
            gate.set()
            await slow
            return await waiting

    try:
        assert asyncio.run(run()).outcome is FetchOutcome.OK
    finally:
        gate.set()
