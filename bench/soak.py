"""Soak benchmark: the daemon as a real process against N local feeds with changing content.

    python bench/soak.py                          # 200 feeds, 2,000 poll cycles, 1 s interval
    python bench/soak.py --cycles 300             # a shorter run

A feed server in a second process serves the feeds with ETags; every
`--change-every`-th request to a feed adds a story (the last 20 are kept),
so polls mix 304s with new content to parse, match and store. The daemon's
alerts go to the console (discarded). Every `--sample` seconds the script
records the daemon's RSS (with its parser processes), its open file
descriptors and the poll rate at the server; it prints the first sample
after warm-up against the last, and the poll-cycle time per window.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from ingest import sample_texts  # noqa: E402

from bench.localserver import QuietHandler, serve_forever  # noqa: E402
from bench.memory import TreeMemory  # noqa: E402


def serve(feeds: int, change_every: int, port_queue) -> None:
    texts = sample_texts()
    counts = [0] * feeds
    stats = {"requests": 0}

    def body(index: int, version: int) -> tuple[bytes, str]:
        now = datetime(2026, 11, 29, tzinfo=UTC)
        items = []
        for j in range(max(0, version - 20), version):
            title, summary = texts[(index * 31 + j) % len(texts)]
            published = email.utils.format_datetime(now + timedelta(minutes=j))
            items.append(f"<item><title>{escape(title)} #{j}</title><guid>s{index}-{j}</guid>"
                         f"<link>https://soak{index}.example/{j}</link><pubDate>{published}</pubDate>"
                         f"<description>{escape(summary[:600])}</description></item>")
        xml = (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
               f"<title>Soak {index}</title><link>https://soak{index}.example/</link>"
               f"<description>soak</description>{''.join(items)}</channel></rss>")
        return xml.encode(), f'"{index}-{version}"'

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            if self.path == "/stats":
                self.reply(200, json.dumps(stats).encode(), {})
                return
            index = int(self.path.rsplit("/", 1)[1].split(".")[0])
            stats["requests"] += 1
            counts[index] += 1
            version = 20 + counts[index] // change_every
            data, tag = body(index, version)
            if self.headers.get("If-None-Match") == tag:
                self.reply(304, b"", {"ETag": tag})
            else:
                self.reply(200, data, {"ETag": tag, "Content-Type": "application/rss+xml"})

    serve_forever(Handler, port_queue, backlog=512)


def requests_served(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as response:
        return json.loads(response.read())["requests"]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=2000, help="polls per feed before stopping")
    parser.add_argument("--interval", default="1s")
    parser.add_argument("--change-every", type=int, default=10)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline sample")
    args = parser.parse_args()

    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.feeds, args.change_every, queue), daemon=True)
    server.start()
    port = queue.get(timeout=30)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "cfg"
        env = {**os.environ, "MONITOR_CONFIG": str(cfg), "MONITOR_DB": str(Path(tmp) / "soak.db"),
               "NO_PROXY": "127.0.0.1", "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "monitor", "init", str(cfg), "--no-feeds"], env=env,
                       check=True, capture_output=True)
        (cfg / "monitor.toml").write_text('log_level = "warning"\n[fetch]\nper_host_limit = 32\n'
                                          'global_limit = 32\n[poll]\njitter = 0.1\n')
        (cfg / "feeds.toml").write_text("".join(
            f'[[feed]]\nname = "soak-{i}"\nurl = "http://127.0.0.1:{port}/feed/{i}.xml"\n'
            f'interval = "{args.interval}"\nlanguage = "en"\n\n' for i in range(args.feeds)))
        daemon = subprocess.Popen([sys.executable, "-m", "monitor", "run"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = args.cycles * args.feeds
        samples = []
        started = time.monotonic()
        with TreeMemory(exclude={server.pid}) as tree:
            last_requests, last_time = 0, started
            while True:
                try:
                    time.sleep(args.sample)
                except KeyboardInterrupt:  # stop early; report what was measured
                    break
                now = time.monotonic()
                served = requests_served(port)
                rate = (served - last_requests) / (now - last_time)
                last_requests, last_time = served, now
                samples.append({"t": round(now - started), "rss_mb": round(tree.sample()[0], 1),
                                "fds": open_fds(daemon.pid), "polls_per_s": round(rate, 1),
                                "cycle_s": round(args.feeds / rate, 2) if rate else None,
                                "polls": served})
                print(json.dumps(samples[-1]), flush=True)
                if served >= target or daemon.poll() is not None:
                    break
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    server.terminate()

    warm = next((s for s in samples if s["t"] >= args.warmup), samples[0])
    end = samples[-1]
    growth = (end["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"] * 100
    cycles = [s["cycle_s"] for s in samples if s["t"] >= args.warmup and s["cycle_s"]]
    print(f"feeds={args.feeds} interval={args.interval} polls={end['polls']} "
          f"({end['polls'] / args.feeds:.0f} cycles) in {end['t']} s; daemon exit code {code}")
    print(f"RSS (daemon + parser processes): {warm['rss_mb']} MB after warm-up (t={warm['t']} s), "
          f"{end['rss_mb']} MB at the end: growth {growth:+.1f} %")
    print(f"open fds: {warm['fds']} after warm-up, {end['fds']} at the end "
          f"(min {min(s['fds'] for s in samples)}, max {max(s['fds'] for s in samples)})")
    if cycles:
        print(f"cycle time (all feeds once): min {min(cycles)} s, max {max(cycles)} s, "
              f"first {cycles[0]} s, last {cycles[-1]} s")


if __name__ == "__main__":
    main()
