"""uvicorn inside the daemon's own event loop, with bounded connections.

`WebServer` runs `uvicorn.Server.serve()` as a task of the running loop on a
socket we bound ourselves (so a port in use is a one-line error before anything
starts) and leaves signals to the daemon: uvicorn would otherwise take SIGTERM
and SIGINT for itself.

Connections are bounded, so a flood of half-sent requests cannot use up the
daemon's file descriptors (its polls need them): beyond MAX_CONNECTIONS a new
connection is answered 503 and closed at once, and a connection that has not
sent a whole request head within HEAD_TIMEOUT is closed. Should the process
still run out of descriptors, asyncio pauses accepting for a second; that is
logged as one warning line, not as asyncio's traceback per refused accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from monitor.config.listen import BACKLOG

log = logging.getLogger("monitor.web")

MAX_CONNECTIONS = 64  # open connections at once; the rest are shed
HEAD_TIMEOUT = 10.0  # seconds a connection may take to send a request head
KEEP_ALIVE = 5.0  # seconds an idle connection is kept after a response
MAX_HEAD = 16 * 1024  # bytes of request line and headers
STOP_GRACE = 2.0  # seconds running requests get on shutdown
ACCEPT_WARNING_EVERY = 60.0  # seconds between warnings that accepting paused
_SHED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
         b"content-length: 20\r\nretry-after: 5\r\nconnection: close\r\n\r\ntoo many connections")


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a cap on connections and a deadline for request heads."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > MAX_CONNECTIONS:
            transport.write(_SHED)
            transport.close()
            return
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        self.loop.call_later(HEAD_TIMEOUT, self._head_deadline)

    def _head_deadline(self) -> None:
        """Close a connection that is not serving a request (no head came, or it stalled)."""
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


class _QuietServer(uvicorn.Server):
    """uvicorn.Server that leaves signal handling to the daemon that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """Serves an ASGI app on an already-bound socket until stopped."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.sock = sock
        for name in ("uvicorn", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.WARNING)
        config = uvicorn.Config(
            app, http=BoundedH11Protocol, lifespan="off", log_config=None, access_log=False,
            limit_concurrency=MAX_CONNECTIONS, backlog=BACKLOG, timeout_keep_alive=int(KEEP_ALIVE),
            timeout_graceful_shutdown=int(STOP_GRACE), h11_max_incomplete_event_size=MAX_HEAD,
            server_header=False, proxy_headers=True, forwarded_allow_ips="127.0.0.1,::1")
        self._server = _QuietServer(config)
        self._task: asyncio.Task | None = None

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    async def start(self) -> None:
        """Start serving; returns once the socket accepts connections."""
        _quiet_accept_errors(asyncio.get_running_loop())
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[self.sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("the web server stopped while starting")
            await asyncio.sleep(0.01)
        host, port = self.sock.getsockname()[:2]
        log.info("http listening on %s port %d", host, port)

    async def serve_until_cancelled(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop listening; requests under way get STOP_GRACE seconds."""
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE + 3)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
        except Exception as exc:  # noqa: BLE001 - stopping must not fail the daemon's exit
            log.warning("http server stopped with error=%s", exc)
        self._task = None
        self.sock.close()


def _quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log asyncio's "accept() out of system resource" as one rate-limited warning line.

    asyncio reports it through the loop's exception handler with a traceback
    each time, though it is a situation (too many open connections), not a bug;
    every other report goes on to the handler that was there before.
    """
    previous = loop.get_exception_handler()
    last_warning = -ACCEPT_WARNING_EVERY

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal last_warning
        error = context.get("exception")
        if isinstance(error, OSError) and "accept()" in context.get("message", ""):
            now = time.monotonic()
            if now - last_warning >= ACCEPT_WARNING_EVERY:
                last_warning = now
                log.warning("http paused accepting connections for a second: %s", error.strerror or error)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
