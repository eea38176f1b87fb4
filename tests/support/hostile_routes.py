"""Routes for tests/support/feedserver.py that misbehave in ways a fetcher must survive.

Kept apart from the feed server so that the ordinary routes stay simple.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler

from support.feedserver import Route, send


def compressed(body: bytes, encoding: str, content_type: str = "application/rss+xml") -> Route:
    """Serve BODY already compressed, announcing ENCODING in Content-Encoding."""
    return lambda handler: send(handler, 200, body,
                                {"Content-Type": content_type, "Content-Encoding": encoding})


def gzip_bomb(decompressed_size: int) -> bytes:
    """A gzip stream of DECOMPRESSED_SIZE zero bytes, built without holding them in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [packer.compress(block) for _ in range(decompressed_size // len(block))]
    parts.append(packer.flush())
    return b"".join(parts)


def unsized(body: bytes, headers: dict[str, str] | None = None) -> Route:
    """No Content-Length: the body runs until the server closes the connection."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        for key, value in {"Content-Type": "application/rss+xml", **(headers or {})}.items():
            handler.send_header(key, value)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        handler.wfile.write(body)

    return route


def gated(arrivals: queue.Queue[str], gate: threading.Event, body: bytes = b"<rss/>",
          name: str = "request") -> Route:
    """Report each arrival on ARRIVALS, then hold the response until GATE is set.

    Lets a test see how many requests are in flight at once without sleeping.
    """

    def route(handler: BaseHTTPRequestHandler) -> None:
        arrivals.put(name)
        gate.wait(timeout=10)
        send(handler, 200, body, {"Content-Type": "application/rss+xml"})

    return route


def reset_mid_body(handler: BaseHTTPRequestHandler) -> None:
    """Send the head and part of the body, then reset the TCP connection (RST).

    The handler's read file holds a reference to the socket, so it must be
    closed too, or `close()` is deferred and the client just waits.
    """
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.write(b"<rss><channel>")
    handler.wfile.flush()
    handler.close_connection = True
    sock = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.rfile.close()
    sock.close()


def closed_port() -> int:
    """A loopback port that was just free: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
