"""The daemon's config reload: SIGHUP, `--watch-config`, or the web interface's edits.

The config folder is loaded and validated first; an invalid one is refused,
the daemon keeps running on the old one, and the error is recorded for
`monitor status`. A valid one is applied in place: feeds added, removed or
re-timed, rules and destinations swapped, without a restart, without
re-alerting old stories and without resetting the other feeds' rhythm.
Written as a mixin of `monitor.runtime.daemon.Daemon`, whose state it uses.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

from monitor.errors import ConfigError
from monitor.ingest.fetch import Fetcher
from monitor.ingest.prepare import Prepared
from monitor.store.database import Store

log = logging.getLogger("monitor.runtime.daemon")


class ConfigReload:
    """Daemon.reload and what it needs."""

    WATCH_EVERY = 2.0  # seconds between config-folder checks with --watch-config

    async def reload(self) -> bool:
        """Load, validate and apply the config folder; keep the old config when it is invalid."""
        if self.loader is None:
            return False
        async with self._reloading:
            if self.notifier is not None:
                self.notifier.reloading()
            try:
                prepared = await asyncio.get_running_loop().run_in_executor(None, self.loader)
            except ConfigError as exc:
                message = str(exc)
                log.error("reload refused, still running the previous config: %s",
                          message.replace("\n", " | "))
                await self._store.call(Store.set_meta, "config_error", message)
                if self.notifier is not None:
                    self.notifier.ready(f"config error, running the previous config: "
                                        f"{message.splitlines()[0]}")
                return False
            await self._apply(prepared)
            await self._store.call(Store.set_meta, "config_error", "")
            log.info("reloaded feeds=%d", len(prepared.config.feeds))
            if self.notifier is not None:
                self.notifier.ready(self.status_line())
            return True

    async def _apply(self, new: Prepared) -> None:
        """Swap in a validated config without touching the rhythm of unchanged feeds."""
        from apscheduler.triggers.interval import IntervalTrigger

        old_feeds, new_feeds = self._feeds, {f.name: f for f in new.config.feeds}
        now = self.clock()
        await self._store.call(Store.sync_feeds, new.config.feeds, now)
        states = {s.name: s for s in await self._store.call(Store.feed_states)}
        self._feeds = new_feeds
        for name in old_feeds.keys() - new_feeds.keys():
            self.scheduler.remove_job(name)
        for name, feed in new_feeds.items():
            old = old_feeds.get(name)
            if old is None:
                self._add_job(feed, states.get(name))
            elif old.interval != feed.interval:
                job = self.scheduler.get_job(name)
                soonest = now + timedelta(seconds=feed.interval)
                next_run = job.next_run_time if job and job.next_run_time else now
                self.scheduler.modify_job(name, trigger=IntervalTrigger(seconds=feed.interval),
                                          next_run_time=min(next_run, soonest))
        pipeline = self._pipeline
        if new.config.fetch != self.config.fetch:
            old_fetcher, pipeline.fetcher = pipeline.fetcher, Fetcher(new.config.fetch)
            self._spawn(_close_later(old_fetcher, self.STOP_GRACE))
        pipeline.reconfigure(new.config, new.match, new.alerting)
        dispatcher = new.alerting.dispatcher(self._store, self.clock)
        await dispatcher.warm_up()
        self._dispatcher = dispatcher
        self.prepared = new

    async def _watch_config(self) -> None:
        """Reload when a file of the config folder changes (mtime or size)."""
        seen = _folder_signature(self.config.dir)
        while not self._stop.is_set():
            await asyncio.sleep(self.WATCH_EVERY)
            current = _folder_signature(self.config.dir)
            if current != seen:
                seen = current
                log.info("config folder changed, reloading")
                await self.reload()


async def _close_later(fetcher: Fetcher, delay: float) -> None:
    """Close a replaced fetcher once the polls that were using it have had time to finish."""
    await asyncio.sleep(delay)
    await fetcher.aclose()


def _folder_signature(folder: Path) -> tuple:
    """(name, mtime, size) of every file in the config folder and its templates/."""
    entries = []
    for path in sorted([*folder.glob("*"), *folder.glob("templates/*")]):
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.is_file():
            entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)
