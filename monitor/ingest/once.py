"""`monitor run --once`: every due feed polled a single time, then the alerts that fall due.

The same pipeline as the daemon's (monitor.ingest.pipeline), run once over
the feeds instead of on a schedule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from monitor.config.load import Config
from monitor.config.paths import DatabaseLocation
from monitor.ingest.fetch import Fetcher
from monitor.ingest.pipeline import Clock, CycleSummary, Pipeline, utc_now
from monitor.ingest.schedule import is_due
from monitor.ingest.workers import MatchFn
from monitor.models import FeedConfig, FeedState, PollReport
from monitor.store.database import Store, StoreThread

if TYPE_CHECKING:
    from monitor.alert.dispatch import Dispatcher, DispatchReport
    from monitor.ingest.prepare import Alerting


async def poll_all(pipeline: Pipeline, feeds: Sequence[FeedConfig], *,
                   progress: Callable[[PollReport], None] | None = None,
                   states: dict[str, FeedState] | None = None) -> CycleSummary:
    """Poll the given feeds concurrently (the fetcher enforces the limits); STATES, if
    given, are the feeds' states just read."""
    summary = CycleSummary()

    async def one(feed: FeedConfig) -> None:
        report = await pipeline.poll(feed, (states or {}).get(feed.name))
        summary.add(report)
        if progress is not None:
            progress(report)

    await asyncio.gather(*(one(feed) for feed in feeds))
    return summary


async def run_once(config: Config, db_path: DatabaseLocation, match: MatchFn | None = None, *,
                   alerting: Alerting | None = None, clock: Clock = utc_now,
                   progress: Callable[[PollReport], None] | None = None,
                   deliver_wait: float = 60.0) -> CycleSummary:
    """Poll every active feed now, whatever its interval, honouring backoff and Retry-After;
    then send the alerts that are due, waiting (at most `deliver_wait` seconds) for
    alerts held by a short grouping delay."""
    store = StoreThread(db_path)
    try:
        await store.call(Store.sync_feeds, config.feeds, clock())
        states = {s.name: s for s in await store.call(Store.feed_states)}
        now = clock()
        due = [feed for feed in config.feeds if feed.name in states and is_due(states[feed.name], now)]
        due_names = {feed.name for feed in due}  # not `feed in due`: comparing feeds pairwise is O(n²)
        skipped = [feed for feed in config.feeds if feed.name not in due_names]
        async with Fetcher(config.fetch) as fetcher:
            pipeline = Pipeline(config, store, fetcher, match, clock=clock, alerting=alerting)
            try:
                summary = await poll_all(pipeline, due, progress=progress, states=states)
            finally:
                pipeline.close()
        for feed in skipped:
            summary.add(PollReport(feed.name, "skipped"))
        if alerting is not None:
            wait = min(deliver_wait, alerting.settings.grouping_delay + 1.0)
            summary.alerts = await _deliver_due(alerting.dispatcher(store, clock), store, clock, wait)
        await store.call(Store.prune, clock(), config.poll.retention)
        await store.call(Store.set_meta, "last_cycle", clock().isoformat())
        return summary
    finally:
        store.close()


async def _deliver_due(dispatcher: Dispatcher, store: StoreThread, clock: Clock,
                       wait: float) -> DispatchReport:
    """Send what is due now, then new alerts that fall due within `wait` seconds (held by a
    grouping delay); failed ones wait for their retry time, digests for their schedule."""
    from monitor.store.outbox import next_pending

    report = await dispatcher.dispatch_due()
    deadline = time.monotonic() + wait
    while True:
        upcoming = await store.call(next_pending)
        if upcoming is None:
            return report
        delay = (upcoming - clock()).total_seconds()
        if delay > deadline - time.monotonic():
            return report
        await asyncio.sleep(max(0.0, delay))
        report.add(await dispatcher.dispatch_due())
