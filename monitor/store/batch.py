"""Group commit for the store: the writes of polls that finish together, in one transaction.

A re-poll of many unchanged feeds ends in a burst of tiny writes (each feed's
new state and fetch-log row). One transaction each costs a BEGIN, a commit and
a round trip to the store's thread per feed; here every write that arrives
while the previous batch is being written joins the next batch, so the burst
costs a few transactions. Each caller still waits for its own write, and gets
its own error: a batch that fails is retried one write at a time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from monitor.store.database import Store, StoreThread


class PollRecorder:
    """Batches Store.record_poll calls (state and log of a poll that stored no stories)."""

    def __init__(self, store: StoreThread) -> None:
        self._store = store
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record_poll(self, name: str, state: dict, log: dict, *, keep: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(((name, state, log, keep), future))
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write())
        await future

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._store.call(Store.record_polls, [args for args, _ in batch])
                except Exception:
                    for args, future in batch:  # one at a time: each caller gets its own outcome
                        try:
                            await self._store.call(Store.record_polls, [args])
                        except Exception as exc:
                            _settle(future, exc)
                        else:
                            _settle(future, None)
                else:
                    for _, future in batch:
                        _settle(future, None)
        finally:
            self._writer = None



def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():  # its poll was cancelled (shutdown): the write happened or not, unseen
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
