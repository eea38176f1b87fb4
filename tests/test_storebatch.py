"""Group commit of the polls that stored no stories (monitor.store.batch)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from monitor.errors import MonitorError
from monitor.models import FeedConfig
from monitor.store.batch import PollRecorder
from monitor.store.database import Store, StoreThread

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_a_burst_of_writes_shares_transactions_and_each_caller_gets_its_own_outcome(tmp_path, monkeypatch):
    feeds = [FeedConfig(f"feed-{i}", f"http://127.0.0.1:9/{i}.xml", 600.0) for i in range(20)]
    batches: list[int] = []
    real = Store.record_polls

    def counted(store, polls):
        batches.append(len(polls))
        return real(store, polls)

    monkeypatch.setattr(Store, "record_polls", counted)

    async def main():
        store = StoreThread(tmp_path / "m.db")
        try:
            await store.call(Store.sync_feeds, feeds, NOW)
            recorder = PollRecorder(store)
            names = [feed.name for feed in feeds] + ["no-such-feed"]
            outcomes = await asyncio.gather(
                *(recorder.record_poll(name, {"etag": f'"{name}"'}, {"at": NOW, "outcome": "not_modified"},
                                       keep=5) for name in names), return_exceptions=True)
            states = {s.name: s for s in await store.call(Store.feed_states)}
            return outcomes, states
        finally:
            store.close()

    outcomes, states = asyncio.run(main())
    assert outcomes[:-1] == [None] * 20
    assert isinstance(outcomes[-1], MonitorError) and "no-such-feed" in str(outcomes[-1])
    assert all(states[f"feed-{i}"].etag == f'"feed-{i}"' for i in range(20))
    # all 21 writes arrived before the first transaction: one batch, which failed on the
    # unknown feed, then one transaction each, so the 20 good writes still landed
    assert batches == [21] + [1] * 21


@pytest.mark.parametrize("count", [1, 3])
def test_writes_are_committed_before_the_callers_resume(tmp_path, count):
    feeds = [FeedConfig(f"f{i}", f"http://127.0.0.1:9/{i}.xml", 600.0) for i in range(count)]

    async def main():
        store = StoreThread(tmp_path / "m.db")
        try:
            await store.call(Store.sync_feeds, feeds, NOW)
            recorder = PollRecorder(store)
            await asyncio.gather(*(recorder.record_poll(f.name, {"etag": '"x"'}, {"at": NOW}, keep=5)
                                   for f in feeds))
        finally:
            store.close()

    asyncio.run(main())
    reopened = Store.open(tmp_path / "m.db")
    try:
        assert [s.etag for s in reopened.feed_states()] == ['"x"'] * count
    finally:
        reopened.close()
