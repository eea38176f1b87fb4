"""A real HTTP server on 127.0.0.1 for tests: serves feed files and misbehaves on request.

Each path maps to a route: a callable that gets the request handler and writes
the whole response itself, so a route can drip bytes, reset the connection or
redirect. `static()` covers the ordinary case and honours conditional GET.
Every request is logged (path and headers) so tests can assert on what the
client sent.
"""

from __future__ import annotations

import email.utils
import hashlib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

Route = Callable[[BaseHTTPRequestHandler], None]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    """Bytes of tests/fixtures/feeds/NAME."""
    return (FIXTURES / "feeds" / name).read_bytes()


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"",
         headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    headers = dict(headers or {})
    headers.setdefault("Content-Length", str(len(body)))
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    if body and handler.command != "HEAD":
        handler.wfile.write(body)


def static(body: bytes, content_type: str = "application/rss+xml; charset=utf-8",
           status: int = 200, headers: dict[str, str] | None = None,
           etag: bool = True, last_modified: bool = True) -> Route:
    """Serve fixed bytes with ETag/Last-Modified, answering 304 to matching validators."""
    tag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
    modified = email.utils.formatdate(1_700_000_000, usegmt=True)

    def route(handler: BaseHTTPRequestHandler) -> None:
        out = {"Content-Type": content_type, **(headers or {})}
        if etag:
            out["ETag"] = tag
        if last_modified:
            out["Last-Modified"] = modified
        inm = handler.headers.get("If-None-Match")
        ims = handler.headers.get("If-Modified-Since")
        if (etag and inm == tag) or (not etag and last_modified and ims == modified):
            send(handler, 304, b"", {k: v for k, v in out.items() if k != "Content-Type"})
            return
        send(handler, status, body, out)

    return route


def redirect(location: str, status: int = 301) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        send(handler, status, b"", {"Location": location})

    return route


def drip(body: bytes, delay: float = 1.0, chunk: int = 1,
         stop: threading.Event | None = None) -> Route:
    """Send CHUNK bytes every DELAY seconds: a slow server that never finishes in time."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            for i in range(0, len(body), chunk):
                handler.wfile.write(body[i:i + chunk])
                handler.wfile.flush()
                if stop is not None and stop.wait(delay):
                    return
                if stop is None:
                    time.sleep(delay)
        except OSError:
            return

    return route


@dataclass
class FeedServer:
    """Threaded HTTP server on 127.0.0.1 with a mutable route table; HTTPS when given a TLS context."""

    host: str = "127.0.0.1"
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[LoggedRequest] = field(default_factory=list)
    tls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _dispatch(self) -> None:
                path = self.path
                server.requests.append(LoggedRequest(self.command, path, dict(self.headers.items())))
                route = server.routes.get(path) or server.routes.get(path.split("?", 1)[0])
                if route is None:
                    send(self, 404, b"not found", {"Content-Type": "text/plain"})
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = _dispatch
            do_HEAD = _dispatch

        class QuietServer(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients that hang up early are part of the tests

        self._httpd = QuietServer((self.host, 0), Handler)
        if self.tls is not None:  # a failed handshake is an OSError in accept(), which socketserver drops
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}{path}"

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def requests_to(self, path: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
