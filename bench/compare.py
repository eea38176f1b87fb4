"""Side by side, in one invocation on the same local feeds: feedparser's parse-only loop,
rss2email (`r2e run --no-send`) and monitor (`monitor run --once`), each a whole process,
first poll and an all-304 re-poll.

    python bench/ingest.py --compare               # 200 feeds copied from the fixtures
    python bench/ingest.py --compare --feeds 50

The feeds are copies of the real fixture feeds (tests/fixtures/feeds, the hostile
`made_*` ones left out), served with ETags by bench/localserver.py in a process of
its own on 127.0.0.1. rss2email runs in a venv of its own, created on first use
under bench/results/ from PyPI's rss2email; if that cannot be installed its lines
say so and the rest still runs. monitor runs as a user installs it: this checkout
installed (`pip install .`, no test extras) into bench/results/monitor-venv, again
at every run so the code measured is the checkout's (the test extras would add
imports a user never pays for: selenium brings trio, which httpcore then imports).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "feeds"
RESULTS = ROOT / "bench" / "results"
R2E_VENV = RESULTS / "r2e-venv"
MONITOR_VENV = RESULTS / "monitor-venv"


def fixture_feeds() -> list[bytes]:
    """The real feeds among the fixtures (not the hand-made hostile or broken ones)."""
    return [path.read_bytes() for path in sorted(FIXTURES.iterdir())
            if path.suffix in (".xml", ".rss", ".atom") and not path.name.startswith("made_")]


def bodies(feeds: int) -> dict[str, bytes]:
    real = fixture_feeds()
    return {f"/feed/{i}.xml": real[i % len(real)] for i in range(feeds)}


def serve(feeds: int, port_queue: multiprocessing.Queue) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.localserver import serve_static

    serve_static(bodies(feeds), port_queue)


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall time of a whole process, and its output's last line (the summary)."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return elapsed, lines[-1] if lines else ""


def parse_only(feeds: int) -> tuple[float, int]:
    """feedparser with its defaults over the same bytes, one process, one core."""
    import feedparser

    served = list(bodies(feeds).values())
    started = time.perf_counter()
    entries = sum(len(feedparser.parse(body).entries) for body in served)
    return time.perf_counter() - started, entries


def rss2email() -> Path | None:
    """The r2e executable of bench/results/r2e-venv, installed from PyPI on first use."""
    r2e = R2E_VENV / "bin" / "r2e"
    if r2e.exists():
        return r2e
    try:
        subprocess.run([sys.executable, "-m", "venv", str(R2E_VENV)], check=True, capture_output=True)
        subprocess.run([str(R2E_VENV / "bin" / "pip"), "install", "-q", "rss2email"], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"rss2email: skipped, could not install it into {R2E_VENV} ({exc})")
        shutil.rmtree(R2E_VENV, ignore_errors=True)
        return None
    return r2e


def monitor_installed() -> Path:
    """The monitor executable of bench/results/monitor-venv, with this checkout installed as a user would."""
    if not (MONITOR_VENV / "bin" / "pip").exists():
        subprocess.run([sys.executable, "-m", "venv", str(MONITOR_VENV)], check=True, capture_output=True)
    subprocess.run([str(MONITOR_VENV / "bin" / "pip"), "install", "-q", "--force-reinstall", "--no-deps", str(ROOT)],
                   check=True, capture_output=True)
    subprocess.run([str(MONITOR_VENV / "bin" / "pip"), "install", "-q", str(ROOT)], check=True, capture_output=True)
    return MONITOR_VENV / "bin" / "monitor"


def r2e_setup(folder: Path, port: int, feeds: int) -> list[str]:
    """An rss2email config with every feed, as `r2e add` would write it (without 200 runs)."""
    config = folder / "r2e.cfg"
    lines = ["[DEFAULT]", "to = bench@127.0.0.1", "from = bench@127.0.0.1", ""]
    for i in range(feeds):
        lines += [f"[feed.bench-{i}]", f"url = http://127.0.0.1:{port}/feed/{i}.xml", ""]
    config.write_text("\n".join(lines))
    return ["-c", str(config), "-d", str(folder / "r2e.json")]


def monitor_setup(folder: Path, port: int, feeds: int) -> list[str]:
    """A config folder with the shipped watch and alerts (no destinations) and every feed."""
    config = folder / "config"
    config.mkdir()
    for name in ("watch.toml", "alerts.toml"):
        shutil.copy(ROOT / "config" / name, config / name)
    (config / "monitor.toml").write_text(
        'timezone = "UTC"\nlog_level = "warning"\n[fetch]\nper_host_limit = 16\nglobal_limit = 32\n')
    (config / "feeds.toml").write_text("".join(
        f'[[feed]]\nname = "bench-{i}"\nurl = "http://127.0.0.1:{port}/feed/{i}.xml"\n\n'
        for i in range(feeds)))
    return ["--config", str(config), "--db", str(folder / "state" / "monitor.db")]


def compare(feeds: int) -> None:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(feeds, queue), daemon=True)
    server.start()
    port = queue.get(timeout=30)
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    total = sum(len(b) for b in bodies(feeds).values())
    monitor = monitor_installed()
    results: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            fp_time, fp_entries = parse_only(feeds)
            results["parse_only"] = fp_time
            print(f"feeds={feeds} bytes={total / 1e6:.1f} MB entries={fp_entries} "
                  f"load={os.getloadavg()[0]:.1f} (2 cores, shared with other work)")
            print(f"feedparser parse-only, one process:   {fp_time:6.2f} s  {fp_entries / fp_time:7.0f} entries/s")
            r2e = rss2email()
            if r2e is not None:
                args = r2e_setup(folder, port, feeds)
                first, _ = timed([str(r2e), *args, "run", "--no-send"], env)
                again, _ = timed([str(r2e), *args, "run", "--no-send"], env)
                results["r2e_first"], results["r2e_again"] = first, again
                print(f"rss2email first poll (r2e run --no-send): {first:6.2f} s")
                print(f"rss2email re-poll, all 304:               {again:6.2f} s")
            args = monitor_setup(folder, port, feeds)
            first, line1 = timed([str(monitor), *args, "run", "--once"], env)
            again, line2 = timed([str(monitor), *args, "run", "--once"], env)
            results["monitor_first"], results["monitor_again"] = first, again
            print(f"monitor first poll (run --once):          {first:6.2f} s  ({line1})")
            print(f"monitor re-poll, all 304:                 {again:6.2f} s  ({line2})")
    finally:
        server.terminate()
    print(f"ratio: monitor first poll rate / feedparser parse-only rate = "
          f"{results['parse_only'] / results['monitor_first']:.2f}x (target >= 1.5x)")
    if "r2e_first" in results:
        print(f"ratio: monitor first poll rate / rss2email's = "
              f"{results['r2e_first'] / results['monitor_first']:.2f}x; "
              f"re-poll: monitor {results['monitor_again']:.2f} s vs rss2email "
              f"{results['r2e_again']:.2f} s = {results['r2e_again'] / results['monitor_again']:.2f}x "
              f"(target: monitor <= 0.5 s)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare.json").write_text(json.dumps({"feeds": feeds, **results}, indent=1))
