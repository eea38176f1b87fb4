"""The web interface on a real socket: uvicorn in the daemon's loop, connection
shedding, the CLI's one-line errors, and the daemon serving its pages."""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import monitor.web.server as web_server
from monitor.config.listen import bind
from monitor.web.app import create_app
from monitor.web.server import MAX_CONNECTIONS, WebServer
from support.daemon import DaemonProcess, db_rows, wait_until
from support.feeds import Item, rss
from support.feedserver import static
from support.sinks import free_port
from web_support import make_context

ROOT = Path(__file__).resolve().parents[1]


def serve(tmp_path: Path, test) -> None:
    context = make_context(tmp_path)

    async def main() -> None:
        server = WebServer(create_app(context), bind("127.0.0.1", 0))
        await server.start()
        try:
            await test(server)
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    finally:
        context.store.close()


async def raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def test_a_malformed_path_is_a_400_not_an_unhandled_error(tmp_path, caplog) -> None:
    async def test(server: WebServer) -> None:
        answer = await raw(server.port, b"GET //[x/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
        garbage = await raw(server.port, b"HELLO\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400 ")
        huge = await raw(server.port, b"GET /healthz HTTP/1.1\r\n" + b"X-Pad: " + b"b" * 40_000 + b"\r\n\r\n")
        assert huge.startswith(b"HTTP/1.1 4")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", trust_env=False) as client:
            assert (await client.get("/healthz")).status_code == 200

    with caplog.at_level(logging.INFO):
        serve(tmp_path, test)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


def test_half_sent_requests_are_shed_at_once_and_timed_out(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(web_server, "HEAD_TIMEOUT", 1.0)

    async def test(server: WebServer) -> None:
        stalled = []
        for _ in range(MAX_CONNECTIONS + 40):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never ends the head
            stalled.append((reader, writer))
        await asyncio.sleep(0)
        started = time.monotonic()
        shed = await asyncio.wait_for(stalled[-1][0].read(), 5)  # over the cap: answered at once
        assert shed.startswith(b"HTTP/1.1 503 ") and time.monotonic() - started < 1.0
        # the stalled ones are closed by the head deadline, and a new client is served again
        first = await asyncio.wait_for(stalled[0][0].read(), 5)
        assert first == b""
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", trust_env=False) as client:
            assert (await client.get("/healthz")).status_code == 200
        for _, writer in stalled:
            writer.close()

    with caplog.at_level(logging.INFO):
        serve(tmp_path, test)
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


# --------------------------------------------------------------------------
# the CLI and the daemon
# --------------------------------------------------------------------------


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """conftest's clean environment, with a config folder made by `monitor init --no-feeds`."""
    subprocess.run([sys.executable, "-m", "monitor", "init", env["MONITOR_CONFIG"], "--no-feeds"],
                   env=env, check=True, capture_output=True, timeout=60)
    return env


def monitor(env, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", *args], env=env, text=True, input=input,
                          capture_output=True, timeout=60)


def test_run_on_a_port_in_use_is_one_error_line_and_exit_2(env) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = monitor(env, "run", "--http", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"monitor: error: cannot listen on 127.0.0.1:{port}: address already in use"], result.stderr


def test_a_non_loopback_address_without_a_password_refuses_to_start(env) -> None:
    for command in (["run", "--http", "0.0.0.0:0"], ["web", "--http", "0.0.0.0:0"],
                    ["web", "--http", "[::]:0"]):
        result = monitor(env, *command)
        assert result.returncode == 2, command
        assert "without a password: set one with `monitor web passwd`" in result.stderr
        assert "Traceback" not in result.stderr


def test_web_passwd_stores_only_a_hash_and_then_a_public_address_may_start(env, tmp_path) -> None:
    from monitor.web.auth import guard_for

    short = monitor(env, "web", "passwd", input="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    done = monitor(env, "web", "passwd", input="correct horse battery\n")
    assert done.returncode == 0, done.stderr
    stored = Path(env["MONITOR_CONFIG"]) / "web-password"
    assert "correct horse" not in stored.read_text() and stored.stat().st_mode & 0o777 == 0o600
    guard = guard_for("0.0.0.0", 8080, Path(env["MONITOR_CONFIG"]))
    assert guard.needs_login and guard.check_password("correct horse battery")


def test_http_in_monitor_toml_is_checked_like_the_flag(env) -> None:
    config = Path(env["MONITOR_CONFIG"]) / "monitor.toml"
    config.write_text(config.read_text().replace('# listen = "127.0.0.1:8080"', 'listen = "nowhere"'))
    result = monitor(env, "config", "check")
    assert result.returncode == 2 and "http.listen" in result.stderr and "HOST:PORT" in result.stderr


def _feed_config(env, feed_server, interval: str = "1s") -> None:
    feed_server.routes["/feed.xml"] = static(rss([Item("g1", "Quiet day")]))
    (Path(env["MONITOR_CONFIG"]) / "feeds.toml").write_text(
        f'[[feed]]\nname = "local"\nurl = "{feed_server.url("/feed.xml")}"\ninterval = "{interval}"\n')


def test_the_daemon_serves_the_pages_and_metrics_from_start_up(env, feed_server) -> None:
    _feed_config(env, feed_server, interval="1h")
    port = free_port()
    config = Path(env["MONITOR_CONFIG"]) / "monitor.toml"
    config.write_text(config.read_text().replace('# listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{port}"'))
    daemon = DaemonProcess(env).start()
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _get(base + "/healthz") == 200, 30), daemon.output()
        with httpx.Client(base_url=base, trust_env=False) as client:
            metrics = client.get("/metrics").text
            assert "monitor_feeds{" in metrics  # before the first heartbeat (10 s)
            assert "process_open_fds" in metrics
            page = client.get("/today")
            assert page.status_code == 200 and "<h1>Today" in page.text
    finally:
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.output()


def _get(url: str) -> int | None:
    try:
        return httpx.get(url, trust_env=False, timeout=2).status_code
    except httpx.HTTPError:
        return None


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_a_flood_of_half_sent_requests_does_not_stop_the_polls(env, feed_server, tmp_path) -> None:
    """About 1,200 half-sent requests used to exhaust the daemon's descriptors (issue 13)."""
    _feed_config(env, feed_server)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--http", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_low_fd_limit)
    db = Path(env["MONITOR_DB"])
    stalled: list[socket.socket] = []
    try:
        assert wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, 30)
        for _ in range(400):  # well over the 256 descriptors the daemon may hold
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                break
            sock.sendall(b"GET /today HTTP/1.1\r\nHost: x\r\n")
            stalled.append(sock)
        def last_poll() -> int:
            return (db_rows(db, "SELECT MAX(id) FROM fetch_log") or [(0,)])[0][0] or 0

        polls = last_poll()
        assert wait_until(lambda: last_poll() >= polls + 3, 30)
        errors = db_rows(db, "SELECT error FROM fetch_log WHERE error IS NOT NULL")
        assert not errors, errors
    finally:
        for sock in stalled:
            sock.close()
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert "Traceback" not in output and "Too many open files" not in output, output[-3000:]


def test_running_out_of_descriptors_while_accepting_is_one_warning_line(caplog) -> None:
    """asyncio reports each refused accept with a traceback; the server logs one line per minute."""
    loop = asyncio.new_event_loop()
    others: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: others.append(context))
    try:
        web_server._quiet_accept_errors(loop)
        with caplog.at_level(logging.WARNING, logger="monitor.web"):
            for _ in range(3):
                loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                             "exception": OSError(24, "Too many open files")})
            loop.call_exception_handler({"message": "Task exception was never retrieved",
                                         "exception": ValueError("x")})
    finally:
        loop.close()
    accepts = [r for r in caplog.records if r.name == "monitor.web"]
    assert len(accepts) == 1 and accepts[0].exc_info is None
    assert "paused accepting" in accepts[0].getMessage()
    assert [c["message"] for c in others] == ["Task exception was never retrieved"]


def test_monitor_web_alone_serves_the_pages_and_current_gauges(env, tmp_path) -> None:
    from support.daemon import DaemonProcess  # noqa: F401 (same environment as the daemon tests)
    from web_support import build_matches_db

    Path(env["MONITOR_DB"]).parent.mkdir()
    build_matches_db(Path(env["MONITOR_DB"]))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "web", "--http", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, 30)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            assert 'monitor_feeds{status="ok"} 2.0' in client.get("/metrics").text
            assert client.get("/today?period=all").text.count('class="story"') == 2
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0 and "Traceback" not in output, output
