"""The benchmarks' local HTTP servers: a quiet HTTP/1.1 handler base and a runner that
serves on 127.0.0.1 in the calling process (each benchmark starts it in a process of
its own, so it shares neither the measured process's GIL nor its memory)."""

from __future__ import annotations

from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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


def serve_static(bodies: Mapping[str, bytes], port_queue, content_type: str = "application/rss+xml") -> None:
    """Serve BODIES (path -> bytes) with ETags, answering a matching If-None-Match with 304.

    One asyncio loop instead of a thread per connection: with 16 keep-alive
    connections from one client, ThreadingHTTPServer's threads queue on the GIL
    and the server, not the client, sets the pace (a 304 re-poll of 200 feeds
    took 1.2 s against 0.25 s here).
    """
    import asyncio
    import hashlib

    tags = {path: '"' + hashlib.sha1(body).hexdigest()[:16] + '"' for path, body in bodies.items()}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, path = head[0].split(" ")[:2]
                headers = {name.strip().lower(): value.strip()
                           for name, _, value in (line.partition(":") for line in head[1:]) if value}
                body = bodies.get(path)
                if body is None:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                elif headers.get("if-none-match") == tags[path]:
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {tags[path]}\r\n"
                                 "Content-Length: 0\r\n\r\n".encode())
                else:
                    writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                                 f"ETag: {tags[path]}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                                 + (b"" if method == "HEAD" else body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
        port_queue.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())
