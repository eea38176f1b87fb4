"""The cluster's one-at-a-time duties (dispatching polls, sending alerts): one node performs
each at a time, and a dead node's duty passes on as soon as its connection is gone, not
after it counts as stalled (which stopped every feed's polls for up to 25 s)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from monitor.runtime.worker import Node
from monitor.store import cluster
from monitor.store.cluster import DELIVER_DUTY, DISPATCH_DUTY
from monitor.store.database import Store, StoreThread
from monitor.store.postgres import connect
from support.daemon import wait_until


def test_one_node_holds_a_duty_until_it_ends_it_or_its_connection_dies(postgres_url: str) -> None:
    first, second, third = Store.open(postgres_url), Store.open(postgres_url), Store.open(postgres_url)
    try:
        assert cluster.take_duty(first, DISPATCH_DUTY)
        assert not cluster.take_duty(second, DISPATCH_DUTY)
        assert cluster.take_duty(second, DELIVER_DUTY)  # the duties are independent
        cluster.end_duty(second, DELIVER_DUTY)
        assert cluster.take_duty(third, DELIVER_DUTY)

        killer = connect(postgres_url)  # the server ends the first node's session, as when it is killed
        killer.execute("SELECT pg_terminate_backend(?)", [first.db.conn.raw.info.backend_pid])
        killer.close()
        assert wait_until(lambda: cluster.take_duty(second, DISPATCH_DUTY), 10)
    finally:
        for store in (first, second, third):
            store.close()


def test_two_jobs_of_one_worker_do_not_both_perform_a_duty(postgres_url: str) -> None:
    """PostgreSQL's session lock is re-entrant: the worker itself keeps its second job out."""
    store = StoreThread(postgres_url)
    node = Node(prepared=None, store=store, pipeline=None, dispatcher=None, version="", local_config=Path())
    other = Store.open(postgres_url)

    async def overlapping() -> tuple[bool, bool, bool]:
        async with node.duty(DISPATCH_DUTY) as first:
            async with node.duty(DISPATCH_DUTY) as second:
                elsewhere = cluster.take_duty(other, DISPATCH_DUTY)
        return first, second, elsewhere

    try:
        assert asyncio.run(overlapping()) == (True, False, False)
        assert cluster.take_duty(other, DISPATCH_DUTY)  # ended by the first job
        assert not asyncio.run(overlapping())[0]
    finally:
        other.close()
        store.close()
