"""Alert delivery benchmark: 1,000 queued alerts to a local webhook while polling runs.

    python bench/alerts.py                    # 1,000 alerts, 50 feeds polled meanwhile
    python bench/alerts.py --alerts 200

Queues the alerts through the real planner (as a poll with 1,000 matched
stories would), then runs the real dispatcher (apprise json:// to a receiver
in a second process) while a pipeline polls local feeds in a loop on the same
event loop. A probe task wakes every 10 ms and records how late it wakes:
the event loop's worst stall. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench.localserver import QuietHandler, serve_forever  # noqa: E402


def receiver(port_queue, feeds_body: bytes) -> None:
    """Webhook receiver and feed server in one process (not sharing the daemon's GIL)."""
    received = {"posts": 0}

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received["posts"] += 1
            self.reply(200, b"")

        def do_GET(self) -> None:
            if self.path == "/count":
                self.reply(200, json.dumps(received).encode())
            else:
                self.reply(200, feeds_body)

    serve_forever(Handler, port_queue)


async def probe(stop: asyncio.Event, stalls: list[float], every: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await asyncio.sleep(every)
        stalls.append(loop.time() - started - every)


async def poll_forever(pipeline, feeds, stop: asyncio.Event) -> int:
    polls = 0
    while not stop.is_set():
        await asyncio.gather(*(pipeline.poll(feed) for feed in feeds))
        polls += len(feeds)
    return polls


async def bench(args, port: int, db: Path) -> dict:
    from monitor.alert.dispatch import Dispatcher
    from monitor.alert.outbox import Planner
    from monitor.config.load import Config
    from monitor.ingest.fetch import Fetcher
    from monitor.ingest.pipeline import Pipeline, settle_for_latency
    from monitor.ingest.storing import store_poll
    from monitor.models import AlertSettings, Destination, Entry, FeedConfig, FetchSettings, Hit, Match, PollSettings
    from monitor.store.database import Store, StoreThread

    url = f"json://127.0.0.1:{port}/hook"
    destination = Destination(name="hook", url=url, safe_url=url)
    settings = AlertSettings(send_timeout=30, rate_limit=0)  # measure sending, not the flood guard
    now = datetime.now(UTC)
    feeds = [FeedConfig(f"f{i}", f"http://127.0.0.1:{port}/feed/{i}", 600.0) for i in range(args.feeds)]
    store = Store.open(db)
    store.sync_feeds([FeedConfig("queued", "http://127.0.0.1/q", 600.0), *feeds], now)
    planner = Planner([destination], settings, "UTC")
    items = [(Entry(feed="queued", guid=str(i), url=f"https://example.org/{i}",
                    title=f"Chinese drone shipment number {i} reaches the front, officials say {i * 13}",
                    published=now, content_hash=str(i)),
              "new", True, [Match("china_drones", 4.5, "warning", (), (Hit("title", 0, 7, "Chinese"),),
                                  "[[Chinese]] drone shipment")]) for i in range(args.alerts)]
    store_poll(store, "queued", items, now, {"status": "ok"}, {"outcome": "ok"}, keep=10, planner=planner)
    store.close()

    thread = StoreThread(db)
    config = Config(dir=ROOT / "config", fetch=FetchSettings(per_host_limit=8), poll=PollSettings(),
                    feeds=tuple(feeds), timezone="UTC", log_level="warning")
    stop = asyncio.Event()
    stalls: list[float] = []
    async with Fetcher(config.fetch) as fetcher:
        pipeline = Pipeline(config, thread, fetcher, clock=lambda: datetime.now(UTC),
                            parse_workers=None)  # as the daemon: parsing in worker processes
        dispatcher = Dispatcher(thread, [destination], settings, "UTC",
                                clock=lambda: datetime.now(UTC))
        await dispatcher.warm_up()  # as the daemon's start does, then:
        settle_for_latency()
        probe_task = asyncio.create_task(probe(stop, stalls))
        poll_task = asyncio.create_task(poll_forever(pipeline, feeds, stop))
        started = time.perf_counter()
        report = await dispatcher.dispatch_due()
        while True:  # one pass takes at most 500 due alerts, as the daemon's does every 5 s
            more = await dispatcher.dispatch_due()
            if not more.sent and not more.failed:
                break
            report.add(more)
        elapsed = time.perf_counter() - started
        stop.set()
        polls = await poll_task
        await probe_task
        pipeline.close()
    thread.close()
    stalls.sort()
    return {"alerts": args.alerts, "sent": report.sent, "failed": report.failed, "seconds": elapsed,
            "rate": report.sent / elapsed, "polls_meanwhile": polls,
            "worst_stall_ms": stalls[-1] * 1000, "p99_stall_ms": stalls[int(len(stalls) * 0.99)] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--feeds", type=int, default=50)
    args = parser.parse_args()
    from ingest import build_feed, sample_texts

    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=receiver, args=(queue, build_feed(0, 30, sample_texts())),
                                     daemon=True)
    server.start()
    port = queue.get(timeout=30)
    os.environ["NO_PROXY"] = "127.0.0.1"
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(bench(args, port, Path(tmp) / "alerts.db"))
    server.terminate()
    print(f"alerts={result['alerts']} sent={result['sent']} failed={result['failed']} "
          f"in {result['seconds']:.2f} s: {result['rate']:.0f} alerts/s; "
          f"{result['polls_meanwhile']} polls ran meanwhile")
    print(f"event loop stall: worst {result['worst_stall_ms']:.1f} ms, p99 {result['p99_stall_ms']:.1f} ms "
          f"(probe every 10 ms)")


if __name__ == "__main__":
    main()
