"""The daemon's HTTP endpoint and metrics: a real server on a loopback port, real
HTTP requests (httpx and raw sockets), a real SQLite database behind /matches.atom."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Awaitable, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import monitor.http
from monitor.errors import UsageError
from monitor.http import HealthServer, matches_atom, parse_listen
from monitor.metrics import Metrics
from monitor.models import Entry, FeedConfig, Hit, Match
from monitor.store import Store, StoreThread

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)
ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE = '<script>alert("x")</script> & \x0bDrones \uffff'


# --------------------------------------------------------------------------
# parse_listen
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    (":8080", ("127.0.0.1", 8080)),
    ("[::1]:9100", ("::1", 9100)),
    ("[0:0:0:0:0:0:0:1]:9100", ("::1", 9100)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("localhost:8080", ("localhost", 8080)),
    ("monitor.internal:0", ("monitor.internal", 0)),
])
def test_parse_listen_accepts_host_port_and_defaults_to_loopback(text, expected) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("8080", "expected HOST:PORT"),
    ("127.0.0.1", "expected HOST:PORT"),
    ("127.0.0.1:", "port must be a number"),
    ("127.0.0.1:http", "port must be a number"),
    ("127.0.0.1:65536", "port must be a number"),
    ("127.0.0.1:-1", "port must be a number"),
    ("::1:8080", "IPv6 address in brackets"),
    ("[::zz]:8080", "not an IPv6 address"),
    ("999.1.1.1:80", "not an IP address or host name"),
    ("bad_host!:80", "not an IP address or host name"),
])
def test_parse_listen_rejects_bad_text_with_a_usage_error(text, why) -> None:
    with pytest.raises(UsageError, match=why) as caught:
        parse_listen(text)
    assert repr(text) in str(caught.value)


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_what_the_daemon_observes() -> None:
    metrics = Metrics()
    metrics.observe_poll("ok", None, 0.3, new=4, updated=1)
    metrics.observe_poll("error", "timeout", 12.0, new=0, updated=0)
    metrics.observe_poll("error", "timeout", 0.01, new=0, updated=0)
    metrics.observe_matches(["drones", "drones", "energy"])
    metrics.observe_alerts(sent=3, failed=1, dead=0)
    metrics.set_loop_lag(0.25)
    metrics.set_alerts_pending(7)
    metrics.set_feed_statuses({"ok": 5, "error": 2})
    metrics.set_feed_statuses({"ok": 6, "paused": 1})  # the erroring feeds recovered
    found = samples(metrics)

    assert found[("monitor_polls_total", (("outcome", "ok"),))] == 1
    assert found[("monitor_polls_total", (("outcome", "error"),))] == 2
    assert found[("monitor_fetch_errors_total", (("kind", "timeout"),))] == 2
    assert found[("monitor_entries_total", (("kind", "new"),))] == 4
    assert found[("monitor_entries_total", (("kind", "updated"),))] == 1
    assert found[("monitor_matches_total", (("rule", "drones"),))] == 2
    assert found[("monitor_matches_total", (("rule", "energy"),))] == 1
    assert found[("monitor_alerts_total", (("result", "sent"),))] == 3
    assert found[("monitor_alerts_total", (("result", "failed"),))] == 1
    assert found[("monitor_alerts_total", (("result", "dead"),))] == 0
    assert found[("monitor_fetch_duration_seconds_count", ())] == 3
    assert found[("monitor_fetch_duration_seconds_bucket", (("le", "0.05"),))] == 1
    assert found[("monitor_fetch_duration_seconds_bucket", (("le", "10.0"),))] == 2
    assert found[("monitor_loop_lag_seconds", ())] == 0.25
    assert found[("monitor_alerts_pending", ())] == 7
    assert found[("monitor_feeds", (("status", "ok"),))] == 6
    assert found[("monitor_feeds", (("status", "error"),))] == 0
    assert found[("monitor_feeds", (("status", "paused"),))] == 1


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()  # the global registry would refuse the second
    first.observe_alerts(sent=1, failed=0, dead=0)
    assert samples(first)[("monitor_alerts_total", (("result", "sent"),))] == 1
    assert samples(second)[("monitor_alerts_total", (("result", "sent"),))] == 0


def test_the_cli_and_the_metrics_module_do_not_import_prometheus_client() -> None:
    code = ("import sys, monitor.cli, monitor.metrics, monitor.http; "
            "sys.exit('prometheus_client' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------


async def empty_feed() -> bytes:
    return b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>'


def serve(test: Callable[[HealthServer, httpx.AsyncClient], Awaitable[None]], *,
          healthy: Callable[[], bool] = lambda: True, metrics: Metrics | None = None,
          atom: Callable[[], Awaitable[bytes]] = empty_feed) -> None:
    """Run TEST against a started server on a free loopback port, then stop it."""
    async def run() -> None:
        server = HealthServer("127.0.0.1", 0, healthy=healthy, metrics=metrics or Metrics(),
                              atom=atom)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                         trust_env=False, timeout=10) as client:
                await test(server, client)
        finally:
            await server.stop()

    asyncio.run(run())


async def raw(server: HealthServer, request: bytes) -> bytes:
    """Send REQUEST bytes as they are and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def test_healthz_follows_the_health_check() -> None:
    state = {"healthy": True}

    async def check(server: HealthServer, client: httpx.AsyncClient) -> None:
        assert server.port != 0
        ok = await client.get("/healthz")
        assert (ok.status_code, ok.text) == (200, "ok\n")
        assert ok.headers["connection"] == "close"
        state["healthy"] = False
        down = await client.get("/healthz")
        assert down.status_code == 503
        state["healthy"] = True
        assert (await client.get("/healthz?probe=1")).status_code == 200

    serve(check, healthy=lambda: state["healthy"])


def test_metrics_route_serves_prometheus_text() -> None:
    from prometheus_client import CONTENT_TYPE_LATEST

    metrics = Metrics()
    metrics.observe_poll("not_modified", None, 0.2, new=0, updated=0)

    async def check(server: HealthServer, client: httpx.AsyncClient) -> None:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"] == CONTENT_TYPE_LATEST
        assert 'monitor_polls_total{outcome="not_modified"} 1.0' in response.text
        metrics.observe_poll("not_modified", None, 0.2, new=0, updated=0)
        again = await client.get("/metrics")
        assert 'monitor_polls_total{outcome="not_modified"} 2.0' in again.text

    serve(check, metrics=metrics)


def test_unknown_paths_and_other_methods_are_refused() -> None:
    async def check(server: HealthServer, client: httpx.AsyncClient) -> None:
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/healthz/")).status_code == 404
        posted = await client.post("/healthz", content=b"x")
        assert posted.status_code == 405 and posted.headers["allow"] == "GET"
        garbage = await raw(server, b"HELLO\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400 ")

    serve(check)


def test_oversized_request_line_and_headers_are_rejected() -> None:
    async def check(server: HealthServer, client: httpx.AsyncClient) -> None:
        long_line = b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n"
        assert (await raw(server, long_line)).startswith(b"HTTP/1.1 414 ")
        padding = b"X-Pad: " + b"b" * 4000 + b"\r\n"  # each line fits; together too much
        many_headers = b"GET /healthz HTTP/1.1\r\n" + padding * 5 + b"\r\n"
        assert (await raw(server, many_headers)).startswith(b"HTTP/1.1 431 ")
        # The server is still there for the next well-behaved client.
        assert (await client.get("/healthz")).status_code == 200

    serve(check)


def test_a_client_that_stalls_is_timed_out(monkeypatch) -> None:
    monkeypatch.setattr(monitor.http, "READ_TIMEOUT", 0.2)

    async def check(server: HealthServer, client: httpx.AsyncClient) -> None:
        answer = await raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never ends the head
        assert answer.startswith(b"HTTP/1.1 408 ")

    serve(check)


def test_a_failing_route_is_a_500_and_the_server_keeps_serving() -> None:
    async def broken() -> bytes:
        raise RuntimeError("database is gone")

    async def check(server: HealthServer, client: httpx.AsyncClient) -> None:
        failed = await client.get("/matches.atom")
        assert failed.status_code == 500 and "database" not in failed.text
        assert (await client.get("/healthz")).status_code == 200

    serve(check, atom=broken)


def test_stop_closes_the_port() -> None:
    async def run() -> int:
        server = HealthServer("127.0.0.1", 0, healthy=lambda: True, metrics=Metrics(),
                              atom=empty_feed)
        await server.start()
        port = server.port
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        await server.stop()  # an idle connection does not hold the stop up
        assert await asyncio.wait_for(idle_reader.read(), 5) == b""
        idle_writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        return port

    assert asyncio.run(run()) > 0


# --------------------------------------------------------------------------
# /matches.atom
# --------------------------------------------------------------------------


def build_matches_db(path: Path) -> None:
    store = Store.open(path)
    try:
        store.sync_feeds([FeedConfig("kyiv-news", "http://127.0.0.1/k.xml", 600.0)], NOW)
        hostile = Entry(feed="kyiv-news", guid="g1", url="https://news.example/a?b=1&c=2",
                        title=HOSTILE, published=NOW, content_hash="1")
        sneaky = Entry(feed="kyiv-news", guid="g2", url="javascript:alert(1)",
                       title="Energy grid attacked", content_hash="2")
        drones = Match("drones", 4.5, "critical", ("war",),
                       (Hit("title", 0, 6, "drone"), Hit("summary", 3, 9, "UAV")),
                       "swarm of [[drones]] <img src=x> and [[UAVs]]")
        energy = Match("energy", 2.0, "info", (), (Hit("title", 0, 6, "energy"),), "[[Energy]] grid")
        store.save_poll("kyiv-news", [(hostile, "new", True, [drones])], NOW,
                        {"status": "ok"}, {"outcome": "ok"}, keep=10)
        store.save_poll("kyiv-news", [(sneaky, "new", True, [energy])],
                        NOW.replace(hour=11), {"status": "ok"}, {"outcome": "ok"}, keep=10)
    finally:
        store.close()


def test_matches_atom_is_a_valid_feed_of_explained_matches(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    build_matches_db(db)
    store = StoreThread(db)

    async def check(server: HealthServer, client: httpx.AsyncClient) -> None:
        response = await client.get("/matches.atom")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
        body = response.content
        assert b"<script>" not in body and b"<img" not in body
        feed = ET.fromstring(body)  # well-formed despite control and non-characters in titles
        assert feed.tag == f"{ATOM}feed"
        assert feed.findtext(f"{ATOM}title") == "Matches & more"
        assert feed.findtext(f"{ATOM}updated") == "2026-11-29T11:00:00Z"
        newest, older = feed.findall(f"{ATOM}entry")

        assert newest.findtext(f"{ATOM}title") == "[energy] Energy grid attacked"
        assert newest.find(f"{ATOM}link") is None, "a javascript: URL is never a link"

        assert older.findtext(f"{ATOM}title") == '[drones] <script>alert("x")</script> & Drones'
        assert older.find(f"{ATOM}link").get("href") == "https://news.example/a?b=1&c=2"
        assert older.findtext(f"{ATOM}updated") == "2026-11-29T10:00:00Z"
        assert older.find(f"{ATOM}category").get("term") == "drones"
        assert older.findtext(f"{ATOM}id").startswith("urn:uuid:")
        content = older.find(f"{ATOM}content")
        assert content.get("type") == "html"
        html = content.text
        assert "&lt;script&gt;" in html and "<script>" not in html
        assert "&lt;img src=x&gt;" in html and ">drones</b>" in html
        assert "drones (critical, score 4.5): drone, UAV" in html
        assert "kyiv-news" in html

        again = ET.fromstring((await client.get("/matches.atom")).content)
        assert [e.findtext(f"{ATOM}id") for e in again.findall(f"{ATOM}entry")] == \
               [e.findtext(f"{ATOM}id") for e in (newest, older)], "ids are stable"

    try:
        serve(check, atom=lambda: matches_atom(store, title="Matches & more"))
    finally:
        store.close()


def test_matches_atom_limit_and_empty_database(tmp_path: Path) -> None:
    full, empty = tmp_path / "full.db", tmp_path / "empty.db"
    build_matches_db(full)
    Store.open(empty).close()

    async def read(path: Path, limit: int) -> ET.Element:
        store = StoreThread(path)
        try:
            return ET.fromstring(await matches_atom(store, title="m", limit=limit))
        finally:
            store.close()

    one = asyncio.run(read(full, 1))
    assert [e.findtext(f"{ATOM}title") for e in one.findall(f"{ATOM}entry")] == \
           ["[energy] Energy grid attacked"]
    none = asyncio.run(read(empty, 100))
    assert none.findall(f"{ATOM}entry") == [] and none.findtext(f"{ATOM}updated")
