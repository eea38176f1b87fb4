"""A feed that is slow to parse, and a parser worker that stops or dies, cost one feed one poll.

The pipeline parses in real worker processes here (as the daemon does); the
slow body is 100,000 tiny items, which takes feedparser several seconds.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from datetime import UTC
from pathlib import Path

import pytest

from monitor.config.load import Config
from monitor.ingest.fetch import Fetcher
from monitor.ingest.parse import parse_feed_within
from monitor.ingest.pipeline import Pipeline
from monitor.models import FeedConfig, FetchSettings, ParseError, PollReport, PollSettings
from monitor.store.database import Store, StoreThread
from support.feeds import Item, rss
from support.feedserver import static

SLOW_BODY = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>slow</title>'
             + b"".join(b"<item><title>s%d</title><guid>g%d</guid></item>" % (i, i)
                        for i in range(100_000))
             + b"</channel></rss>")


def test_a_parse_past_its_time_limit_is_a_parse_error_and_leaves_no_timer_behind():
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(ParseError, match=r"parsing took longer than 0\.3 s"):
        parse_feed_within(0.3, SLOW_BODY, {}, feed="slow", url="http://127.0.0.1/slow")
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


def test_a_quick_parse_within_its_limit_is_untouched():
    body = rss([Item("q1", "Quick story")])
    parsed = parse_feed_within(5.0, body, {}, feed="quick", url="http://127.0.0.1/quick")
    assert [e.title for e in parsed.entries] == ["Quick story"]
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


class Polls:
    """One pipeline with one real parser process, polling feeds served locally:
    `slow`, and `good-1` ... `good-3` (each parsed once: a re-poll of the same
    body would be answered by the body hash, without parsing)."""

    def __init__(self, tmp_path: Path, feed_server, parse_timeout: float) -> None:
        feed_server.routes["/slow.xml"] = static(SLOW_BODY)
        self.slow = FeedConfig("slow", feed_server.url("/slow.xml"), 600.0)
        self.good = []
        for n in (1, 2, 3):
            feed_server.routes[f"/good-{n}.xml"] = static(rss([Item(f"good-{n}", f"Good story {n}")]))
            self.good.append(FeedConfig(f"good-{n}", feed_server.url(f"/good-{n}.xml"), 600.0))
        self.config = Config(dir=tmp_path, fetch=FetchSettings(deadline=10.0, parse_timeout=parse_timeout),
                             poll=PollSettings(), feeds=(self.slow, *self.good), timezone="UTC",
                             log_level="info")
        self.db = tmp_path / "monitor.db"

    async def run(self, script) -> list[PollReport]:
        store = StoreThread(self.db)
        try:
            await store.call(Store.sync_feeds, self.config.feeds, _now())
            async with Fetcher(self.config.fetch) as fetcher:
                pipeline = Pipeline(self.config, store, fetcher, clock=_now, rng=random.Random(1),
                                    parse_workers=1)
                try:
                    return await script(pipeline)
                finally:
                    pipeline.close(wait=False)
        finally:
            store.close()


def _now():
    from datetime import datetime

    return datetime.now(UTC)


def _worker_pids(pipeline: Pipeline) -> list[int]:
    return pipeline._parsers.worker_pids()  # the pool's live worker processes


def test_a_slow_feed_is_cut_off_and_the_other_feeds_still_parse(tmp_path, feed_server):
    polls = Polls(tmp_path, feed_server, parse_timeout=0.5)

    async def script(pipeline: Pipeline) -> list[PollReport]:
        slow, good = await asyncio.gather(pipeline.poll(polls.slow), pipeline.poll(polls.good[0]))
        return [slow, good]

    slow, good = asyncio.run(polls.run(script))
    assert slow.outcome == "error"
    assert "parsing took longer than 0.5 s" in slow.error
    assert good.outcome == "ok" and good.new == 1


def test_a_worker_that_stops_answering_is_replaced_and_costs_one_poll(tmp_path, feed_server):
    polls = Polls(tmp_path, feed_server, parse_timeout=0.5)

    async def script(pipeline: Pipeline) -> list[PollReport]:
        first = await pipeline.poll(polls.good[0])
        (worker,) = _worker_pids(pipeline)
        os.kill(worker, signal.SIGSTOP)  # deaf even to its own parse timer
        stuck = await pipeline.poll(polls.good[1])
        after = await pipeline.poll(polls.good[2])
        assert worker not in _worker_pids(pipeline)
        return [first, stuck, after]

    first, stuck, after = asyncio.run(polls.run(script))
    assert first.outcome == "ok"
    assert stuck.outcome == "error" and "the parser stopped responding" in stuck.error
    assert after.outcome == "ok"


def test_a_worker_that_died_between_polls_costs_no_feed_a_poll(tmp_path, feed_server):
    polls = Polls(tmp_path, feed_server, parse_timeout=30.0)

    async def script(pipeline: Pipeline) -> list[PollReport]:
        first = await pipeline.poll(polls.good[0])
        (worker,) = _worker_pids(pipeline)
        os.kill(worker, signal.SIGKILL)
        again = await pipeline.poll(polls.good[1])
        return [first, again]

    first, again = asyncio.run(polls.run(script))
    assert first.outcome == "ok"
    assert again.outcome == "ok", again.error
