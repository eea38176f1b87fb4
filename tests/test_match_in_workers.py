"""A compiled watch is matched in the parser processes, with the same results as on the thread."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

from monitor.config import Config
from monitor.fetch import Fetcher
from monitor.match.worker import CompiledWatch
from monitor.models import FeedConfig, FetchSettings, PollSettings
from monitor.service import Pipeline, prepare
from monitor.store import Store, StoreThread
from support.feedserver import fixture_bytes, static

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ["other_feeder_rss_ukrnet.xml", "other_feeder_rss_theguardian.xml", "scmp_hknews-backend_rss2-feed.xml"]


class MainThreadNeverMatches(CompiledWatch):
    """The daemon's own process must not match when parser processes do."""

    calls: list[str] = []

    def __call__(self, entry, feed_tags):
        self.calls.append(threading.current_thread().name)
        return super().__call__(entry, feed_tags)


def poll_all(tmp_path: Path, feed_server, workers: int, wrap: bool) -> list[tuple]:
    feeds = []
    for name in FIXTURES:
        feed_server.routes[f"/{name}"] = static(fixture_bytes(name))
        feeds.append(FeedConfig(name, feed_server.url(f"/{name}"), 600.0))
    config_dir = tmp_path / f"cfg{workers}"
    config_dir.mkdir()
    (config_dir / "watch.toml").write_bytes((ROOT / "config" / "watch.toml").read_bytes())
    config = Config(dir=config_dir, fetch=FetchSettings(deadline=10.0), poll=PollSettings(),
                    feeds=tuple(feeds), timezone="UTC", log_level="info")
    match = prepare(config, env={}, cache_dir=tmp_path / f"state{workers}").match
    assert isinstance(match, CompiledWatch)
    if wrap:
        match = MainThreadNeverMatches(match.matcher, match.source)
    db = tmp_path / f"m{workers}.db"

    async def run() -> None:
        store = StoreThread(db)
        try:
            await store.call(Store.sync_feeds, config.feeds, T0)
            async with Fetcher(config.fetch) as fetcher:
                pipeline = Pipeline(config, store, fetcher, match, clock=lambda: T0,
                                    rng=random.Random(1), parse_workers=workers)
                try:
                    reports = await asyncio.gather(*(pipeline.poll(feed) for feed in feeds))
                finally:
                    pipeline.close()
            assert [r.outcome for r in reports] == ["ok"] * len(feeds)
        finally:
            store.close()

    asyncio.run(run())
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT e.guid, m.rule, m.score, m.hits FROM matches m JOIN entries e ON e.id = m.entry_id "
            "ORDER BY e.guid, m.rule").fetchall()


def test_workers_match_what_the_thread_matches_and_the_main_process_matches_nothing(tmp_path, feed_server):
    MainThreadNeverMatches.calls.clear()
    in_workers = poll_all(tmp_path, feed_server, workers=1, wrap=True)
    assert MainThreadNeverMatches.calls == []
    on_thread = poll_all(tmp_path, feed_server, workers=0, wrap=True)
    assert MainThreadNeverMatches.calls and all(name.startswith("monitor-match")
                                                for name in MainThreadNeverMatches.calls)
    assert in_workers == on_thread
    assert len(in_workers) > 0


def test_the_parser_processes_share_the_dictionaries_loaded_by_their_forkserver(tmp_path, feed_server):
    """With Cyrillic terms in the watch, the forkserver loads the language data before it
    forks the parser processes: they find it loaded instead of each loading a copy."""
    import subprocess
    import sys

    code = f"""
import asyncio, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from monitor.config import Config
from monitor.models import FetchSettings, PollSettings
from monitor.service import Pipeline, prepare
from monitor.match import morph

config_dir = Path({str(tmp_path)!r})
(config_dir / "watch.toml").write_text('[entity.c]\\naliases = ["Китай"]\\n[rule.c]\\nquery = "@c"\\n', encoding="utf-8")
config = Config(dir=config_dir, fetch=FetchSettings(), poll=PollSettings(), feeds=(), timezone="UTC", log_level="info")
match = prepare(config, env={{}}).match
assert match.matcher.needs_dictionaries

async def main():
    pipeline = Pipeline(config, None, None, match, parse_workers=1)
    try:
        pool = pipeline._parser_pool()
        return sorted(await asyncio.get_running_loop().run_in_executor(pool, morph.loaded))
    finally:
        pipeline.close()

print(asyncio.run(main()))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.stdout.strip().splitlines()[-1:] == ["['ru', 'uk']"], done.stdout + done.stderr


def test_a_reloaded_watch_is_compiled_again_in_the_running_parser_processes(tmp_path, feed_server):
    from support.feeds import Item, rss

    feed_server.routes["/a"] = static(rss([Item("a1", "Drones over Kyiv")]))
    feed_server.routes["/b"] = static(rss([Item("b1", "Drones over Kyiv again")]))
    feeds = [FeedConfig("a", feed_server.url("/a"), 600.0), FeedConfig("b", feed_server.url("/b"), 600.0)]
    config = Config(dir=tmp_path, fetch=FetchSettings(deadline=10.0), poll=PollSettings(),
                    feeds=tuple(feeds), timezone="UTC", log_level="info")

    def compiled(rule: str, word: str):
        (tmp_path / "watch.toml").write_text(f'[rule.{rule}]\nquery = "{word}"\n', encoding="utf-8")
        return prepare(config, env={}, cache_dir=tmp_path / "state").match

    async def run() -> list:
        store = StoreThread(tmp_path / "m.db")
        try:
            await store.call(Store.sync_feeds, config.feeds, T0)
            async with Fetcher(config.fetch) as fetcher:
                pipeline = Pipeline(config, store, fetcher, compiled("drones", "drones"), clock=lambda: T0,
                                    parse_workers=1)
                try:
                    first = await pipeline.poll(feeds[0])
                    pipeline.reconfigure(config, compiled("kyiv", "kyiv"), None)
                    second = await pipeline.poll(feeds[1])
                finally:
                    pipeline.close()
            return [first.rules, second.rules]
        finally:
            store.close()

    assert asyncio.run(run()) == [("drones",), ("kyiv",)]
