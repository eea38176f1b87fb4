"""The demo's feed server: the sample feeds over real HTTP on 127.0.0.1.

A `ThreadingHTTPServer` on a thread, on a free port. It answers conditional
GETs with 304 like a well-behaved publisher, so the demo shows the daemon's
cheap "nothing new" polls too; adding a story changes the feed's body and
validator, and the next poll picks it up.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from monitor.demo.samples import Published, SampleFeed, SampleStory, backlog_at, render_page, render_rss, story_path

HOST = "127.0.0.1"


class DemoFeedServer:
    """Serves each sample feed at /<slug>.xml and each story's page at /<slug>/<id>."""

    def __init__(self, feeds: list[SampleFeed], now: datetime) -> None:
        self.feeds = {feed.slug: feed for feed in feeds}
        self._items = {feed.slug: backlog_at(feed, now) for feed in feeds}
        self._lock = threading.Lock()
        self._bodies: dict[str, tuple[bytes, str]] = {}  # path -> (body, etag)
        self._httpd = ThreadingHTTPServer((HOST, 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.base_url = f"http://{HOST}:{self._httpd.server_address[1]}"
        self._render_all()
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="monitor-demo-feeds",
                                        daemon=True)

    def __enter__(self) -> DemoFeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def feed_url(self, feed: SampleFeed) -> str:
        return f"{self.base_url}/{feed.slug}.xml"

    def publish(self, feed: SampleFeed, story: SampleStory, now: datetime) -> None:
        """Put STORY at the top of FEED, published NOW."""
        with self._lock:
            self._items[feed.slug].append(Published(story, now))
            self._render(feed)

    def _render_all(self) -> None:
        with self._lock:
            for feed in self.feeds.values():
                self._render(feed)

    def _render(self, feed: SampleFeed) -> None:
        items = self._items[feed.slug]
        self._bodies[f"/{feed.slug}.xml"] = _with_etag(render_rss(feed, items, self.base_url))
        for item in items:
            self._bodies[story_path(feed, item.story)] = _with_etag(render_page(feed, item.story))

    def lookup(self, path: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self._bodies.get(path)


def _with_etag(body: bytes) -> tuple[bytes, str]:
    return body, '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


def _handler_for(server: DemoFeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server naming)
            found = server.lookup(self.path.split("?", 1)[0])
            if found is None:
                self._reply(404, b"not found", "text/plain; charset=utf-8")
                return
            body, etag = found
            if self.headers.get("If-None-Match") == etag:
                self._reply(304, b"", None, etag)
                return
            kind = ("application/rss+xml; charset=utf-8" if self.path.endswith(".xml")
                    else "text/html; charset=utf-8")
            self._reply(200, body, kind, etag)

        def _reply(self, status: int, body: bytes, content_type: str | None,
                   etag: str | None = None) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the demo narrates polls itself."""

    return Handler
