"""What the web pages need from their host: the daemon, or `monitor web` alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.config.paths import DatabaseLocation
from monitor.ingest.pipeline import utc_now

T = TypeVar("T")

if TYPE_CHECKING:
    from monitor.runtime.metrics import Metrics
    from monitor.store.database import StoreThread
    from monitor.web.auth import Guard


@dataclass
class WebContext:
    """The store, config folder and hooks the pages read and write through.

    `reload` applies an edited config folder in this process (the daemon's own
    reload: a bad edit keeps the old config); None means "signal the daemon
    that holds the database, if any", as the CLI's edits do.
    """

    store: StoreThread
    config_dir: Path
    db_path: DatabaseLocation
    guard: Guard
    metrics: Metrics
    timezone: str = "UTC"
    healthy: Callable[[], bool] = lambda: True
    reload: Callable[[], Awaitable[bool]] | None = None
    clock: Callable[[], datetime] = field(default=utc_now)
    # brings the gauges up to date before a scrape, where no heartbeat does (`monitor web`)
    refresh_metrics: Callable[[], Awaitable[None]] | None = None

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(store, ...) on a read-only connection of its own, in a worker thread: long
        reads (a backtest, a search, a report) never hold up the daemon's writes, which
        all go through `store`'s one thread."""
        import asyncio

        from monitor.store.database import Store

        def run() -> T:
            store = Store.open(self.db_path, readonly=True)
            try:
                return fn(store, *args, **kwargs)
            finally:
                store.close()

        return await asyncio.to_thread(run)
