"""A feed whose polls cannot be stored stays visible (issue 13): other feeds' writes do not hide it."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from monitor.config.load import Config
from monitor.models import FeedConfig, FetchSettings, PollSettings
from monitor.read.status import gather_status
from monitor.runtime.daemon import Daemon
from monitor.store.database import Store
from monitor.store.lock import DaemonLock
from support.feeds import Item, rss
from support.feedserver import static
from test_daemon import prepared


def test_one_feed_failing_to_store_keeps_the_daemon_unhealthy_while_others_succeed(
        feed_server, tmp_path: Path) -> None:
    feed_server.routes["/big"] = static(rss([Item(f"b{n}", f"Big story {n}") for n in range(50)]))
    feed_server.routes["/small"] = static(rss([Item("s1", "Small story")]))
    big, small = (FeedConfig(name, feed_server.url(f"/{name}"), 600.0) for name in ("big", "small"))
    db = tmp_path / "monitor.db"
    config = Config(dir=tmp_path, fetch=FetchSettings(), poll=PollSettings(), feeds=(big, small),
                    timezone="UTC", log_level="info")
    store = Store.open(db)
    store.sync_feeds([big, small], datetime.now(UTC))
    store.close()
    with sqlite3.connect(db) as conn:  # the big feed's stories do not fit: a real SQLite error
        conn.execute("CREATE TRIGGER full BEFORE INSERT ON entries WHEN NEW.feed_id = "
                     "(SELECT id FROM feeds WHERE name = 'big') "
                     "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")

    async def scenario() -> tuple[bool, dict, dict]:
        with DaemonLock(db) as lock:
            daemon = Daemon(prepared(config), db, lock=lock)
            await daemon.start()
            daemon.scheduler.pause()
            try:
                await daemon.scheduler.get_job("big").func()
                await daemon.scheduler.get_job("small").func()  # succeeds after the failure
                healthy = await daemon.healthy(datetime.now(UTC))
                status = gather_status(db, None, datetime.now(UTC))
                not_stored = DaemonLock(db).feed_problems()
                with sqlite3.connect(db) as conn:
                    conn.execute("DROP TRIGGER full")
                await daemon.scheduler.get_job("big").func()  # space again
                status_after = gather_status(db, None, datetime.now(UTC))
                return healthy, status, not_stored, status_after, await daemon.healthy(
                    datetime.now(UTC))
            finally:
                await daemon.stop()

    healthy, status, not_stored, after, healthy_after = asyncio.run(scenario())
    assert healthy is False
    assert list(not_stored) == ["big"] and "database or disk is full" in not_stored["big"]
    assert status["healthy"] is False and "polls not stored for big" in status["problems"]
    assert status["feeds_not_stored"] == not_stored
    assert healthy_after is True and after["feeds_not_stored"] == {} and after["storage_problem"] is None
