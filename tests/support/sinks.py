"""Real receivers for alerts: an SMTP server (aiosmtpd) and an HTTP webhook receiver.

Both listen on 127.0.0.1, record what arrives, and can be taken down and
brought back (SMTP) or told to fail (webhook) to test retries.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """aiosmtpd on 127.0.0.1:PORT collecting every message; stop() and start() again at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.arrived = threading.Condition()
        self._controller = None

    def url(self, to: str = "desk@example.org", sender: str = "monitor@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?from={sender}&to={to}"

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with sink.arrived:
                    sink.messages.append(message)
                    sink.arrived.notify_all()
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 20.0) -> bool:
        """Block until `count` messages have arrived (an event, not a sleep)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)


@dataclass
class Webhook:
    """A JSON webhook receiver (apprise json://) on 127.0.0.1."""

    status: int = 200
    posts: list[dict] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        hook = self
        self.arrived = threading.Condition()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if hook.status == 200:
                    with hook.arrived:
                        hook.posts.append(json.loads(body))
                        hook.auth.append(self.headers.get("Authorization"))
                        hook.arrived.notify_all()
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, userinfo: str = "") -> str:
        return f"json://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/hook"

    def start(self) -> Webhook:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 20.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.posts) >= count, timeout)
