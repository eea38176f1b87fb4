"""The long-running daemon: one event loop for polling, matching and alert dispatch.

Lifecycle:
- start: open the store, resume every feed's stored rhythm (one APScheduler job
  per feed), start the dispatcher, the heartbeat and (optionally) the config
  watcher, then tell systemd READY=1.
- SIGHUP (or an edited file with --watch-config): load and validate the config
  folder first. An invalid config is refused: the daemon keeps running on the
  old one, logs the error with file and line, and records it for
  `monitor status`. A valid one is applied in place: feeds added, removed or
  re-timed, rules and destinations swapped, without a restart, without
  re-alerting old stories and without resetting the other feeds' rhythm
  (monitor.runtime.reload).
- SIGTERM/SIGINT: stop taking work, cancel in-flight polls and sends (a send
  that was abandoned stays pending in the outbox and goes out after the next
  start), close the store. Every write is a transaction, so a SIGKILL leaves
  nothing half-written either.
- heartbeat: checks that the loop is responsive and that no active feed is
  overdue by more than two intervals; only then does it send WATCHDOG=1, so a
  hung daemon is restarted by systemd. It also writes the heartbeat time and a
  one-line cycle summary.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from monitor.config.paths import DatabaseLocation
from monitor.errors import MonitorError
from monitor.ingest.fetch import Fetcher
from monitor.ingest.pipeline import Clock, CycleSummary, Pipeline, settle_for_latency, utc_now
from monitor.ingest.prepare import Prepared
from monitor.ingest.schedule import first_poll_time
from monitor.models import FeedConfig, FeedState
from monitor.runtime.reload import ConfigReload
from monitor.store.database import Store, StoreThread
from monitor.urls import strip_userinfo

if TYPE_CHECKING:
    from monitor.alert.dispatch import Dispatcher
    from monitor.runtime.metrics import Metrics
    from monitor.runtime.sdnotify import Notifier
    from monitor.store.lock import DaemonLock, PostgresDaemonLock
    from monitor.web.server import WebServer

log = logging.getLogger("monitor.runtime.daemon")

Loader = Callable[[], Prepared]


class StillRunningFilter(logging.Filter):
    """APScheduler's "maximum number of running instances reached", said once per feed
    per interval while polls are slow, becomes one debug line of ours.

    A poll that outlasts its interval (a slow host, a long queue behind the
    per-host limit) is normal here: the job is coalesced, and the poll re-times
    its own next run when it ends, so the skipped turn loses nothing.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "maximum number of running instances" not in record.msg:
            return True
        job = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        log.debug("poll still running at its next turn, skipped job=%s", getattr(job, "id", job))
        return False


class Daemon(ConfigReload):
    """Keeps polling every feed on its own rhythm until SIGTERM or SIGINT.

    `start()` and `stop()` are separate from `run()` so that tests can look at
    the scheduler between them.
    """

    HOUSEKEEPING_EVERY = 3600.0  # seconds between retention and silence checks
    DISPATCH_EVERY = 5.0  # seconds between outbox checks (retries, digests, `alerts retry`)
    HEARTBEAT_EVERY = 10.0  # seconds; shortened to half the systemd watchdog interval
    SUMMARY_EVERY = 60.0  # seconds between cycle summary lines
    STOP_GRACE = 5.0  # seconds in-flight work may take to unwind on SIGTERM
    MAX_LOOP_LAG = 5.0  # seconds of event-loop stall that make the heartbeat unhealthy

    def __init__(self, prepared: Prepared, db_path: DatabaseLocation, *, loader: Loader | None = None,
                 clock: Clock = utc_now, notifier: Notifier | None = None,
                 watch_config: bool = False, http: tuple[str, int] | None = None,
                 http_socket: socket.socket | None = None,
                 lock: DaemonLock | PostgresDaemonLock | None = None) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self.prepared = prepared
        self.db_path = db_path
        self.loader = loader
        self.clock = clock
        self.notifier = notifier
        self.watch_config = watch_config
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler_log = logging.getLogger("apscheduler.scheduler")
        if not any(isinstance(f, StillRunningFilter) for f in scheduler_log.filters):
            scheduler_log.addFilter(StillRunningFilter())
        self.summary = CycleSummary()  # polls since the last summary line
        self.loop_lag = 0.0
        self._feeds: dict[str, FeedConfig] = {f.name: f for f in prepared.config.feeds}
        self._stop = asyncio.Event()
        self._store: StoreThread | None = None
        self._pipeline: Pipeline | None = None
        self._dispatcher: Dispatcher | None = None
        self._tasks: set[asyncio.Task] = set()  # heartbeat, config watcher
        self._inflight: set[asyncio.Task] = set()  # running polls and sends
        self._reloading = asyncio.Lock()
        self._http_address = http
        self._http_socket = http_socket  # bound by the caller, so a port in use fails first
        self._http: WebServer | None = None
        self.metrics: Metrics | None = None
        self.is_healthy = True  # the heartbeat's last verdict, for /healthz
        self._lock = lock  # where a storage problem is said when the database cannot take it
        self._storage_problem: str | None = None
        # feed name -> why its last poll could not be stored; unhealthy while any is here
        self._feed_storage: dict[str, str] = {}

    @property
    def config(self):
        return self.prepared.config

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the store, resume each feed's stored rhythm and start the scheduler."""
        from apscheduler.triggers.interval import IntervalTrigger

        if self._http_address is not None and self._http_socket is None:
            from monitor.config.listen import BACKLOG, bind

            self._http_socket = bind(*self._http_address, BACKLOG)
        self._store = store = StoreThread(self.db_path)
        now = self.clock()
        await store.call(Store.sync_feeds, self.config.feeds, now)
        await store.call(Store.set_meta, "daemon_started", now.isoformat())
        await store.call(Store.set_meta, "config_error", "")
        self._pipeline = Pipeline(self.config, store, Fetcher(self.config.fetch),
                                  self.prepared.match, clock=self.clock,
                                  alerting=self.prepared.alerting)
        self._dispatcher = self.prepared.alerting.dispatcher(store, self.clock)
        await self._dispatcher.warm_up()
        states = {s.name: s for s in await store.call(Store.feed_states)}
        for feed in self.config.feeds:
            self._add_job(feed, states.get(feed.name))
        self.scheduler.add_job(self._housekeeping, IntervalTrigger(seconds=self.HOUSEKEEPING_EVERY),
                               id="housekeeping", coalesce=True, max_instances=1)
        self.scheduler.add_job(self._dispatch, IntervalTrigger(seconds=self.DISPATCH_EVERY),
                               id="dispatch", coalesce=True, max_instances=1,
                               next_run_time=self.clock())
        if self._http_socket is not None:  # before the scheduler: no job runs if serving fails
            await self._start_http(self._http_socket)
        self.scheduler.start()
        self._spawn(self._heartbeat(), keep=True)
        if self.watch_config and self.loader is not None:
            self._spawn(self._watch_config(), keep=True)
        settle_for_latency()
        self._started = True
        log.info("daemon started feeds=%d db=%s", len(self.config.feeds), self.db_path)
        if self.notifier is not None:
            self.notifier.ready(self.status_line())

    async def stop(self) -> None:
        """Stop taking new work, let in-flight work unwind briefly, then close everything."""
        started = getattr(self, "_started", False)  # a failed start (a port in use) stops quietly
        if started:
            log.info("daemon stopping")
        if self.notifier is not None:
            self.notifier.stopping()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)  # also cancels running job tasks
        for task in self._tasks | self._inflight:
            task.cancel()
        pending = {t for t in self._tasks | self._inflight if not t.done()}
        if pending:
            await asyncio.wait(pending, timeout=self.STOP_GRACE)
        if self._http is not None:
            await self._http.stop()
        if self._pipeline is not None:
            self._pipeline.close(wait=False)
            await self._pipeline.fetcher.aclose()
        if self._store is not None:
            self._store.close()
        if started:
            self._log_summary(force=True)

    def _spawn(self, coro, *, keep: bool = False) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        bucket = self._tasks if keep else self._inflight
        bucket.add(task)
        task.add_done_callback(bucket.discard)
        return task

    # ------------------------------------------------------------- polling

    def _add_job(self, feed: FeedConfig, state: FeedState | None) -> None:
        """One job per feed; the pipeline's computed next poll re-times it after each run."""
        from apscheduler.triggers.interval import IntervalTrigger

        name = feed.name

        async def job() -> None:
            current = self._feeds.get(name)
            if current is None or self._stop.is_set():
                return
            task = asyncio.current_task()
            self._inflight.add(task)
            try:
                await self._poll_and_retime(current)
                self._note_storage(None, feed=name)
            except asyncio.CancelledError:
                if self._stop.is_set():
                    return  # abandoned on shutdown: nothing was half-written
                raise
            except Exception as exc:  # the database is full or locked, say: one line, keep going
                log.error("poll failed feed=%s error=%s", name, _one_line(exc))
                self._note_storage(exc, feed=name)
            finally:
                self._inflight.discard(task)

        self.scheduler.add_job(
            job, IntervalTrigger(seconds=feed.interval), id=name, name=name,
            next_run_time=first_poll_time(state, self.clock()),
            coalesce=True, max_instances=1, replace_existing=True,
            misfire_grace_time=max(60, int(feed.interval)),
        )

    async def _poll_and_retime(self, feed: FeedConfig) -> None:
        """One poll, then the job is re-timed to the next poll the pipeline computed (its report
        carries it)."""
        report = await self._pipeline.poll(feed)
        self.summary.add(report)
        if self.metrics is not None:
            self.metrics.observe_poll(report.outcome, report.error_kind, report.duration,
                                      report.new, report.updated)
            self.metrics.observe_matches(report.rules)
        if self._stop.is_set():
            return
        if report.matched:
            self._spawn(self._dispatch())
        if self.scheduler.get_job(feed.name) is None:
            return  # removed by a reload meanwhile
        if report.next_poll is not None:
            self.scheduler.modify_job(feed.name, next_run_time=report.next_poll)
        elif report.outcome == "gone":
            self.scheduler.pause_job(feed.name)

    async def _dispatch(self) -> None:
        if self._dispatcher is None or self._stop.is_set():
            return
        try:
            report = await self._dispatcher.dispatch_due()
        except asyncio.CancelledError:
            if self._stop.is_set():
                return  # a send abandoned on shutdown stays pending in the outbox
            raise
        except Exception as exc:  # e.g. the database is full: say so, try again next time
            log.error("dispatch failed error=%s", _one_line(exc))
            self._note_storage(exc)
            return
        if self.metrics is not None:
            self.metrics.observe_alerts(report.sent, report.failed, report.dead, report.cancelled)

    async def _start_http(self, sock: socket.socket) -> None:
        """The web interface, /healthz, /metrics and /matches.atom (--http or [http])."""
        from monitor.runtime.metrics import Metrics
        from monitor.web.app import create_app
        from monitor.web.auth import guard_for
        from monitor.web.context import WebContext
        from monitor.web.server import WebServer

        host, port = sock.getsockname()[:2]
        guard = guard_for(host, port, self.config.dir)
        self.metrics = Metrics()
        await self._update_gauges()  # feed gauges exist from the first scrape, not the first heartbeat
        context = WebContext(store=self._store, config_dir=self.config.dir, db_path=self.db_path,
                             guard=guard, metrics=self.metrics, timezone=self.config.timezone,
                             healthy=lambda: self.is_healthy, reload=self.reload, clock=self.clock)
        self._http = WebServer(create_app(context), sock)
        await self._http.start()

    # -------------------------------------------------- heartbeat, health

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.HEARTBEAT_EVERY
        watchdog = self.notifier.watchdog_interval() if self.notifier else None
        if watchdog:
            period = min(period, watchdog / 2)
        since_summary = 0.0
        while not self._stop.is_set():
            started = loop.time()
            await asyncio.sleep(period)
            self.loop_lag = max(0.0, loop.time() - started - period)
            now = self.clock()
            try:
                await self._store.call(Store.set_meta, "heartbeat", now.isoformat())
                healthy = self.is_healthy = await self.healthy(now)
                if self.metrics is not None:
                    await self._update_gauges()
            except Exception as exc:  # the database is full or locked: unhealthy, not dead
                log.error("heartbeat failed error=%s", _one_line(exc))
                self._note_storage(exc)
                healthy = self.is_healthy = False
            if self.notifier is not None:
                if healthy:
                    self.notifier.watchdog()
                self.notifier.status(self.status_line())
            since_summary += period
            if since_summary >= self.SUMMARY_EVERY:
                since_summary = 0.0
                self._log_summary()

    def _note_storage(self, error: BaseException | None, *, feed: str | None = None) -> None:
        """Keep `monitor status` and `feeds list` told, through the lock file, while the
        database refuses writes (a full disk, a lock held elsewhere), and for which feeds.

        Failures are kept per feed: one feed of 100,000 items that cannot be stored
        while small polls of other feeds still fit must not look healthy. A feed's
        failure is cleared by its own completed poll; the general problem by any
        completed poll once no feed's failure persists (with a full disk, SQLite
        may still take a small write into space its WAL file already holds).
        """
        changed = False
        if isinstance(error, MonitorError) and isinstance(error.__cause__, (sqlite3.Error, OSError)):
            error = error.__cause__  # a read the store turned into a message naming the file
        if error is None:
            if feed is not None and self._feed_storage.pop(feed, None) is not None:
                log.info("the database takes this feed's polls again feed=%s", feed)
                changed = True
            if self._storage_problem is not None and not self._feed_storage:
                self._storage_problem = None
                log.info("the database takes writes again")
                changed = True
        elif isinstance(error, (sqlite3.Error, OSError)):
            since = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
            reason = " ".join(str(error).split()) or type(error).__name__
            if feed is not None and feed not in self._feed_storage:
                self._feed_storage[feed] = f"its poll could not be stored since {since}: {reason}"
                changed = True
            if self._storage_problem is None:
                self._storage_problem = f"cannot write to the database since {since}: {reason}"
                changed = True
        if changed and self._lock is not None:
            problem = self._storage_problem
            if problem and self._feed_storage:
                problem += f" ({len(self._feed_storage)} feeds' polls not stored)"
            self._lock.note_problem(problem, self._feed_storage)

    async def _update_gauges(self) -> None:
        from monitor.store.outbox import counts

        self.metrics.set_loop_lag(self.loop_lag)
        states = await self._store.call(Store.feed_states)
        by_status: dict[str, int] = {}
        for state in states:
            by_status[state.status] = by_status.get(state.status, 0) + 1
        self.metrics.set_feed_statuses(by_status)
        self.metrics.set_alerts_pending((await self._store.call(counts)).get("pending", 0))

    async def healthy(self, now: datetime) -> bool:
        """The loop answers, and no active feed is overdue by more than two intervals."""
        if self.loop_lag > self.MAX_LOOP_LAG:
            log.warning("heartbeat unhealthy loop_lag=%.1fs", self.loop_lag)
            return False
        if self._feed_storage:
            log.warning("heartbeat unhealthy storage_failing_feeds=%s",
                        ",".join(sorted(self._feed_storage)))
            return False
        states = await self._store.call(Store.feed_states)
        for state in states:
            feed = self._feeds.get(state.name)
            if feed is None or state.status in ("paused", "gone", "removed") or state.next_poll is None:
                continue
            if now - state.next_poll > timedelta(seconds=2 * feed.interval):
                log.warning("heartbeat unhealthy feed=%s overdue_since=%s", feed.name,
                            state.next_poll.isoformat())
                return False
        return True

    def status_line(self) -> str:
        s = self.summary
        return (f"{len(self._feeds)} feeds; last minute: polled {len(s.reports)}, "
                f"new {s.new}, matched {s.matched}, errors {s.count('error')}")

    def _log_summary(self, force: bool = False) -> None:
        if self.summary.reports or force:
            log.info("cycle %s", self.summary.line())
            if self._store is not None and not force:
                self._spawn(self._record_cycle())
        self.summary = CycleSummary()

    async def _record_cycle(self) -> None:
        try:
            await self._store.call(Store.set_meta, "last_cycle", self.clock().isoformat())
        except Exception as exc:
            log.error("could not record the cycle error=%s", _one_line(exc))

    # --------------------------------------------------------- housekeeping

    async def _housekeeping(self) -> None:
        """Hourly: prune past retention, tell the admins about feeds gone silent, and
        index new stories for `monitor search`."""
        try:
            await self._housekeep()
        except Exception as exc:
            log.error("housekeeping failed error=%s", _one_line(exc))

    async def _housekeep(self) -> None:
        from monitor.read.search import index_documents
        from monitor.store.search import save_index, stale_entries

        pruned = await self._store.call(Store.prune, self.clock(), self.config.poll.retention)
        if pruned:
            log.info("retention pruned=%d", pruned)
        await self._check_silence()
        # Keep the search index caught up, normalising text off the store thread.
        rows = await self._store.call(stale_entries, 2000)
        if rows:
            docs = await asyncio.get_running_loop().run_in_executor(None, index_documents, rows)
            await self._store.call(save_index, docs)

    async def _check_silence(self) -> None:
        """One "silent" alert per quiet spell: a feed that stopped publishing for far longer
        than its usual rhythm (health_silence x its interval)."""
        alerting = self.prepared.alerting
        if not alerting.admins or not alerting.settings.health_silence:
            return
        from monitor.alert.outbox import queue_health
        from monitor.alert.route import is_silent
        from monitor.config.durations import format_duration

        now = self.clock()
        last = await self._store.call(Store.last_story_times)
        states = {s.name: s for s in await self._store.call(Store.feed_states)}
        for feed in self._feeds.values():
            seen = last.get(feed.name)
            state = states.get(feed.name)
            if state is None or state.status != "ok" or not is_silent(
                    seen, feed.interval, alerting.settings.health_silence, now):
                continue
            marker = f"silent_alerted:{feed.name}"
            if await self._store.call(Store.get_meta, marker) == seen.isoformat():
                continue
            quiet = format_duration(int((now - seen).total_seconds()))
            await self._store.call(queue_health, alerting.admins, feed=feed.name,
                                   url=strip_userinfo(state.url), event="silent", detail=quiet,
                                   now=now)
            await self._store.call(Store.set_meta, marker, seen.isoformat())


def _one_line(exc: BaseException) -> str:
    """An exception as a short quoted phrase for a key=value log line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return repr(f"{type(exc).__name__}: {text}"[:300])
