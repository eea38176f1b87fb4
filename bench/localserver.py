"""The benchmarks' local HTTP servers: a quiet HTTP/1.1 handler base and a runner that
serves on 127.0.0.1 in the calling process (each benchmark starts it in a process of
its own, so it shares neither the measured process's GIL nor its memory)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Mapping


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_forever(handler: type[QuietHandler], port_queue, backlog: int = 256) -> None:
    """Serve on a free port of 127.0.0.1, putting the port on PORT_QUEUE first."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.request_queue_size = backlog
    port_queue.put(server.server_address[1])
    server.serve_forever()
