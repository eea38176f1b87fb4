"""Ingest benchmark: N realistic feeds served from a local server in a second process.

Measures, on one database:
  1. first poll of every feed (feeds/s, entries/s, peak RSS),
  2. a re-poll answered with 304s,
  3. a re-poll answered with unchanged 200 bodies (the server stops honouring validators),
and then feedparser's own parse-only rate on the same bytes with its defaults.

    python bench/ingest.py                 # 500 feeds x 50 items
    python bench/ingest.py --feeds 50      # a quick run
    python bench/ingest.py --compare       # whole processes beside rss2email (bench/compare.py)

All traffic stays on 127.0.0.1. The per-host limit is raised (default 16),
since every feed here lives on one host:port.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import hashlib
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.localserver import QuietHandler, serve_forever  # noqa: E402
from bench.memory import TreeMemory  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "feeds"
SHAPES = ["other_feeder_rss_theguardian.xml", "scmp_hknews-backend_rss2-feed.xml",
          "other_feeder_rss_ukrnet.xml", "other_rss-parser_content-encoded.rss"]


def sample_texts() -> list[tuple[str, str]]:
    """(title, description-html) pairs taken from real fixture feeds."""
    import feedparser

    pairs = []
    for name in SHAPES:
        parsed = feedparser.parse((FIXTURES / name).read_bytes())
        for entry in parsed.entries:
            title = entry.get("title", "")
            body = entry.get("summary", "") or ""
            if title:
                pairs.append((title, body[:1500]))
    return pairs


def build_feed(index: int, items: int, texts: list[tuple[str, str]]) -> bytes:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    parts = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
             'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>',
             f"<title>Bench feed {index}</title><link>https://bench{index}.example/</link>",
             "<description>benchmark</description><language>en</language>"]
    for j in range(items):
        title, body = texts[(index * items + j) % len(texts)]
        published = email.utils.format_datetime(now - timedelta(minutes=37 * j + index))
        parts.append(
            f"<item><title>{escape(title)}</title>"
            f"<link>https://bench{index}.example/story/{j}?utm_source=rss</link>"
            f'<guid isPermaLink="false">bench-{index}-{j}</guid>'
            f"<pubDate>{published}</pubDate><dc:creator>Desk {j % 7}</dc:creator>"
            f"<category>World</category><description>{escape(body)}</description>"
            f"<content:encoded><![CDATA[<p>{body}</p><p>{escape(title)}</p>]]></content:encoded></item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode()


def build_bodies(feeds: int, items: int) -> dict[str, bytes]:
    texts = sample_texts()
    return {f"/feed/{i}.xml": build_feed(i, items, texts) for i in range(feeds)}


def serve(feeds: int, items: int, port_queue: multiprocessing.Queue) -> None:
    """The feed server, in its own process so it shares neither our GIL nor our memory:
    the feed bodies are built here, and again later for the parse-only pass."""
    bodies = build_bodies(feeds, items)
    tags = {path: '"' + hashlib.sha1(b).hexdigest()[:16] + '"' for path, b in bodies.items()}
    honour = {"validators": True}

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            if self.path == "/control/no-validators":
                honour["validators"] = False
                self.reply(200, b"ok", {})
                return
            body = bodies.get(self.path)
            if body is None:
                self.reply(404, b"", {})
                return
            headers = {"Content-Type": "application/rss+xml; charset=utf-8"}
            if honour["validators"]:
                headers["ETag"] = tags[self.path]
                if self.headers.get("If-None-Match") == tags[self.path]:
                    self.reply(304, b"", headers)
                    return
            self.reply(200, body, headers)

    serve_forever(Handler, port_queue)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def timed_cycle(config, db: Path, match) -> tuple[float, object]:
    from monitor.ingest.once import run_once

    started = time.perf_counter()
    summary = await run_once(config, db, match)
    return time.perf_counter() - started, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--per-host-limit", type=int, default=16)
    parser.add_argument("--global-limit", type=int, default=32)
    parser.add_argument("--no-watch", action="store_true", help="skip matching (ingest only)")
    parser.add_argument("--compare", action="store_true",
                        help="feedparser, rss2email and `monitor run --once` as whole processes "
                             "on copies of the fixture feeds (default 200 feeds)")
    args = parser.parse_args()
    if args.compare:
        from bench.compare import compare

        compare(args.feeds if "--feeds" in sys.argv else 200)
        return

    from monitor.config.load import Config
    from monitor.models import FeedConfig, FetchSettings, PollSettings

    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.feeds, args.items, queue), daemon=True)
    server.start()
    port = queue.get(timeout=30)
    os.environ["NO_PROXY"] = "127.0.0.1"

    feeds = tuple(FeedConfig(f"bench-{i}", f"http://127.0.0.1:{port}/feed/{i}.xml", 600.0, "en")
                  for i in range(args.feeds))
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(dir=ROOT / "config", fetch=FetchSettings(per_host_limit=args.per_host_limit,
                                                                 global_limit=args.global_limit),
                        poll=PollSettings(), feeds=feeds, timezone="UTC", log_level="warning")
        match = None
        watch_note = "none"
        db = Path(tmp) / "bench.db"
        if not args.no_watch:
            from monitor.ingest.prepare import prepare

            # As a restarted daemon: the watch's word cache exists (written by an earlier
            # process), so this process compiles the watch without loading pymorphy3.
            subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from monitor.config.load import load_config; from monitor.ingest.prepare import prepare; "
                            "prepare(load_config(Path(sys.argv[1])), env={}, cache_dir=Path(sys.argv[2]))",
                            str(ROOT / "config"), tmp], check=True)
            match = prepare(config, cache_dir=Path(tmp)).match
            watch_note = "shipped config/watch.toml" if match else "none (no rules)"
        rss_before = peak_rss_mb()
        with TreeMemory(exclude={server.pid}) as tree:
            first, s1 = asyncio.run(timed_cycle(config, db, match))
        rss_first = peak_rss_mb()
        second, s2 = asyncio.run(timed_cycle(config, db, match))
        import urllib.request

        urllib.request.urlopen(f"http://127.0.0.1:{port}/control/no-validators").read()
        third, s3 = asyncio.run(timed_cycle(config, db, match))
    server.terminate()

    import feedparser

    bodies = build_bodies(args.feeds, args.items)
    total_bytes = sum(len(b) for b in bodies.values())
    started = time.perf_counter()
    parsed_entries = sum(len(feedparser.parse(body).entries) for body in bodies.values())
    fp_time = time.perf_counter() - started

    entries = s1.new
    print(f"feeds={args.feeds} items/feed={args.items} bytes={total_bytes / 1e6:.1f} MB "
          f"watch={watch_note} per_host_limit={args.per_host_limit} global_limit={args.global_limit}")
    print(f"first poll:         {first:7.2f} s  {args.feeds / first:7.1f} feeds/s  {entries / first:8.0f} entries/s  "
          f"({s1.line()})")
    print(f"re-poll, 304:       {second:7.2f} s  {args.feeds / second:7.1f} feeds/s  ({s2.line()})")
    print(f"re-poll, same 200:  {third:7.2f} s  {args.feeds / third:7.1f} feeds/s  ({s3.line()})")
    print(f"feedparser defaults, parse only: {fp_time:7.2f} s  {args.feeds / fp_time:7.1f} feeds/s  "
          f"{parsed_entries / fp_time:8.0f} entries/s")
    print(f"peak RSS: main process before {rss_before:.0f} MB, after first poll {rss_first:.0f} MB; "
          f"main + parser processes together: RSS summed {tree.peak_mb:.0f} MB "
          f"({tree.processes} processes), PSS summed {tree.peak_pss_mb:.0f} MB "
          f"(the parse-only pass runs after and is not included)")


if __name__ == "__main__":
    main()
