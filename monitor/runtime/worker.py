"""`monitor worker`: any number of processes, on any number of machines, sharing the feeds
of one PostgreSQL database through procrastinate, a job queue that lives in the same database.

Three periodic tasks, each deferred once per tick however many workers run
(procrastinate records every periodic defer under a unique key):

- `dispatch_polls` (every DISPATCH_EVERY seconds; one at a time in the cluster) defers
  one `poll_feed` job per feed that is due and has no job queued or running, the
  longest overdue first, keeping at most MAX_WAITING_POLLS waiting;
- `deliver_alerts` (every DELIVER_EVERY seconds) sends the outbox's due alerts, one at
  a time in the whole cluster, so no alert goes out twice;
- `recover_stalled` (every RECOVER_EVERY seconds) retries, on any live worker, the
  polls of a worker that stopped sending heartbeats (killed, or its machine gone),
  and ends its periodic jobs (the next tick's job does their work);
- `prune_jobs` (every 10 minutes) deletes finished jobs after KEEP_JOBS_HOURS.

"One at a time" is a duty (`store.cluster.take_duty`): a session lock of PostgreSQL that
the server drops with a killed worker's connection, so the next tick, on any worker,
performs it; a tick that finds the duty taken does nothing.

Each worker also writes its heartbeat and the version of its config folder to the
`nodes` table every NODE_BEAT_EVERY seconds, for `monitor status`.

`poll_feed` runs the single-machine pipeline (`Pipeline.poll`: fetch, parse, match, and
the story, its matches and its alerts stored in one transaction) for one feed, under a
lock named after the feed, and only while the feed is still due, so a job that raced
another poll of its feed does nothing. Stories are kept once by the store's unique
keys, whichever worker saw them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.config.load import folder_version
from monitor.config.paths import DatabaseURL
from monitor.errors import DatabaseLocked, MonitorError
from monitor.ingest.fetch import Fetcher
from monitor.ingest.pipeline import Pipeline, utc_now
from monitor.ingest.schedule import is_due
from monitor.models import FeedState
from monitor.store import cluster, configs
from monitor.store.database import Store, StoreThread
from monitor.store.lock import daemon_lock

if TYPE_CHECKING:
    import procrastinate

    from monitor.alert.dispatch import Dispatcher
    from monitor.ingest.prepare import Prepared

log = logging.getLogger("monitor.worker")

RECONNECT_AFTER = 5  # seconds before listening again for config pushes after a lost connection
NODE_BEAT_EVERY = 5.0  # seconds between a node's heartbeats in `nodes` (for `monitor status`)
DISPATCH_EVERY = 5  # seconds between looks for due feeds
DELIVER_EVERY = 5  # seconds between sends of due alerts
RECOVER_EVERY = 10  # seconds between looks for the jobs of dead workers
HEARTBEAT_EVERY = 2.0  # seconds between a worker's heartbeats
KEEP_JOBS_HOURS = 1  # finished jobs (one per poll, with three events) are deleted after this long
MAX_WAITING_POLLS = 500  # poll jobs waiting in the queue at most; more due feeds wait for the next tick
HOUSEKEEPING_PRIORITY = 10  # dispatch, delivery and recovery go before the polls that wait
STALLED_AFTER = 15.0  # seconds without a heartbeat after which a worker counts as dead
POLL_TASK = "monitor.poll_feed"


def poll_lock(feed: str) -> str:
    return f"poll:{feed}"


def due_now(state: FeedState, now: datetime) -> bool:
    """Whether a worker should poll this feed now: its rhythm says so, and neither backoff,
    Retry-After nor a pause holds it."""
    return is_due(state, now) and (state.next_poll is None or state.next_poll <= now)


@dataclass
class Node:
    """What one worker process polls and sends with (one per process)."""

    prepared: Prepared
    store: StoreThread
    pipeline: Pipeline
    dispatcher: Dispatcher
    version: str  # the digest of the config folder it runs (monitor.config.load.files_version)
    local_config: Path  # its own config folder: run until a push, its secrets.toml with a pushed config
    duties: set[int] = field(default_factory=set)  # the cluster's duties this process performs now

    def apply(self, prepared: Prepared, version: str) -> None:
        """Run later jobs with PREPARED; jobs under way finish with the old config."""
        self.prepared, self.version = prepared, version
        self.pipeline.reconfigure(prepared.config, prepared.match, prepared.alerting)
        self.dispatcher = prepared.alerting.dispatcher(self.store, utc_now)

    def feed(self, name: str):
        return next((feed for feed in self.prepared.config.feeds if feed.name == name), None)

    @asynccontextmanager
    async def duty(self, duty: int) -> AsyncIterator[bool]:
        """Whether this process performs DUTY for the cluster now. The database's lock is
        re-entrant within one connection, so two jobs of this process check `duties` too."""
        if duty in self.duties or not await self.store.call(cluster.take_duty, duty):
            yield False
            return
        self.duties.add(duty)
        try:
            yield True
        finally:
            self.duties.discard(duty)
            await self.store.call(cluster.end_duty, duty)


_node: Node | None = None


def _current() -> Node:
    if _node is None:
        raise RuntimeError("a monitor job ran outside `monitor worker`")
    return _node


def build_app(location: DatabaseURL) -> procrastinate.App:
    """The procrastinate app on LOCATION's database, with monitor's tasks."""
    import procrastinate
    from procrastinate.exceptions import AlreadyEnqueued
    from procrastinate.jobs import Status

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=location.url))

    @app.periodic(cron=f"* * * * * */{DISPATCH_EVERY}", periodic_id="dispatch")
    @app.task(name="monitor.dispatch_polls", queueing_lock="dispatch", priority=HOUSEKEEPING_PRIORITY)
    async def dispatch_polls(timestamp: int) -> int:
        node = _current()
        async with node.duty(cluster.DISPATCH_DUTY) as mine:
            return await defer_due_polls(node) if mine else 0

    async def defer_due_polls(node: Node) -> int:
        waiting = list(await app.job_manager.list_jobs_async(task=POLL_TASK, status="todo"))
        busy = {job.lock for job in waiting} | {
            job.lock for job in await app.job_manager.list_jobs_async(task=POLL_TASK, status="doing")}
        now = utc_now()
        states = {state.name: state for state in await node.store.call(Store.feed_states)}
        due = [feed for feed in node.prepared.config.feeds
               if feed.name in states and poll_lock(feed.name) not in busy and due_now(states[feed.name], now)]
        # the longest overdue first; the rest at the next ticks, so the queue stays short
        # (procrastinate's job fetch slows down as the queue grows)
        due.sort(key=lambda feed: states[feed.name].next_poll or datetime.min.replace(tzinfo=UTC))
        deferred = 0
        for feed in due[:max(0, MAX_WAITING_POLLS - len(waiting))]:
            try:
                await poll_feed.configure(lock=poll_lock(feed.name),
                                          queueing_lock=poll_lock(feed.name)).defer_async(feed=feed.name)
                deferred += 1
            except AlreadyEnqueued:
                pass
        return deferred

    @app.task(name=POLL_TASK)
    async def poll_feed(feed: str) -> str:
        node = _current()
        config = node.feed(feed)
        state = await node.store.call(Store.feed_state, feed)
        if config is None or state is None or not due_now(state, utc_now()):
            return "skipped"
        report = await node.pipeline.poll(config, state)
        return report.outcome

    @app.periodic(cron=f"* * * * * */{DELIVER_EVERY}", periodic_id="deliver")
    @app.task(name="monitor.deliver_alerts", queueing_lock="deliver", priority=HOUSEKEEPING_PRIORITY)
    async def deliver_alerts(timestamp: int) -> int:
        node = _current()
        async with node.duty(cluster.DELIVER_DUTY) as mine:
            return (await node.dispatcher.dispatch_due()).sent if mine else 0

    @app.periodic(cron=f"* * * * * */{RECOVER_EVERY}", periodic_id="recover")
    @app.task(name="monitor.recover_stalled", queueing_lock="recover", priority=HOUSEKEEPING_PRIORITY)
    async def recover_stalled(timestamp: int) -> int:
        stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER))
        for job in stalled:
            if job.task_name == POLL_TASK:  # its feed is polled again, by another worker
                log.warning("retrying job %s of a worker that stopped task=%s", job.id, job.task_name)
                await app.job_manager.retry_job(job)
            else:  # a periodic one: the next tick's job (maybe already waiting) does its work
                log.warning("ending job %s of a worker that stopped task=%s", job.id, job.task_name)
                await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
        return len(stalled)

    @app.periodic(cron="*/10 * * * *", periodic_id="prune")
    @app.task(name="monitor.prune_jobs", queueing_lock="prune", priority=HOUSEKEEPING_PRIORITY)
    async def prune_jobs(timestamp: int) -> None:
        # a finished job is history after an hour; the stories and alerts it made stay
        await app.job_manager.delete_old_jobs(nb_hours=KEEP_JOBS_HOURS)

    return app


async def apply_queue_schema(app: procrastinate.App, location: DatabaseURL) -> None:
    """procrastinate's tables, created once however many workers start together."""
    from monitor.store.postgres import SCHEMA_LOCK, connect

    db = await asyncio.to_thread(connect, location)
    try:
        await asyncio.to_thread(db.execute, f"SELECT pg_advisory_lock({SCHEMA_LOCK})")
        exists = (await asyncio.to_thread(db.execute, "SELECT to_regclass('procrastinate_jobs')")).fetchone()[0]
        if exists is None:
            await app.schema_manager.apply_schema_async()
    finally:
        await asyncio.to_thread(db.close)  # the session's advisory lock goes with it


async def _until_signalled(work: Coroutine[Any, Any, None], on_hangup: Callable[[], object]) -> None:
    """Run WORK until it ends or SIGTERM/SIGINT cancels it: procrastinate's worker then lets
    its running jobs finish (its own signal handlers differ between its releases). SIGHUP
    calls ON_HANGUP (a reload), as it does for the daemon."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    finally:  # already stopping: a second SIGTERM must not cut the shutdown short
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, lambda: log.info("stopping already"))


async def run_worker(prepared: Prepared, location: DatabaseURL, *, concurrency: int, name: str) -> None:
    """Take part in the cluster until SIGTERM or SIGINT. PREPARED is the local config folder's,
    run until a config is pushed (`monitor config push`); the newest pushed one wins."""
    global _node
    if await asyncio.to_thread(daemon_lock(location).held_by_other):
        raise DatabaseLocked(f"a `monitor run` daemon polls {location}: a worker beside it would poll the "
                             "same feeds; stop the daemon to run the database with workers")
    store = StoreThread(location)
    tasks: list[asyncio.Task] = []
    try:
        pipeline = Pipeline(prepared.config, store, Fetcher(prepared.config.fetch), prepared.match,
                            alerting=prepared.alerting)
        dispatcher = prepared.alerting.dispatcher(store, utc_now)
        _node = node = Node(prepared, store, pipeline, dispatcher, folder_version(prepared.config.dir),
                            prepared.config.dir)
        await _apply_pushed(node, location)
        await store.call(Store.sync_feeds, node.prepared.config.feeds, utc_now())
        tasks = [asyncio.create_task(_beat(node, name)), asyncio.create_task(_follow_pushes(node, location))]
        app = build_app(location)
        async with app.open_async():
            await apply_queue_schema(app, location)
            log.info("worker started name=%s concurrency=%d feeds=%d db=%s", name, concurrency,
                     len(prepared.config.feeds), location)
            reloads: set[asyncio.Task] = set()

            def reload() -> None:
                task = asyncio.ensure_future(_reload(node, location))
                reloads.add(task)
                task.add_done_callback(reloads.discard)

            await _until_signalled(app.run_worker_async(
                concurrency=concurrency, name=name, install_signal_handlers=False,
                update_heartbeat_interval=HEARTBEAT_EVERY, stalled_worker_timeout=STALLED_AFTER), reload)
        pipeline.close(wait=False)
        await pipeline.fetcher.aclose()
    finally:
        _node = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
            await store.call(cluster.leave, name)
        store.close()
        log.info("worker stopped name=%s", name)


async def _beat(node: Node, name: str) -> None:
    """Say every NODE_BEAT_EVERY seconds that this node is alive, and which config it runs."""
    started = utc_now()
    while True:
        try:
            await node.store.call(cluster.beat, name=name, kind="worker", host=socket.gethostname(),
                                  pid=os.getpid(), started=started, now=utc_now(), config_version=node.version)
        except Exception as exc:  # the database is away for a moment: the next beat will tell
            log.warning("heartbeat not recorded name=%s error=%s", name, exc)
        await asyncio.sleep(NODE_BEAT_EVERY)


async def _follow_pushes(node: Node, location: DatabaseURL) -> None:
    """LISTEN for pushed config versions and apply each; reconnect when the database goes away
    (and catch up on what was pushed meanwhile)."""
    import psycopg

    while True:
        try:
            async for _ in configs.pushes(location):
                await _apply_pushed(node, location)
        except psycopg.Error as exc:
            log.warning("config updates not heard (%s); listening again in %d s", _first_line(exc), RECONNECT_AFTER)
        await asyncio.sleep(RECONNECT_AFTER)


async def _apply_pushed(node: Node, location: DatabaseURL) -> None:
    """Run the newest pushed config, if it is not the one running; a version that does not
    load here (a secret this machine lacks, say) is refused and the running one stays."""
    from monitor.config.load import load_config, write_folder
    from monitor.ingest.prepare import prepare

    pushed = await node.store.call(configs.latest)
    if pushed is None or pushed["digest"] == node.version:
        return
    folder = location.parent / "cluster-config" / f"v{pushed['version']}"
    try:
        await asyncio.to_thread(write_folder, pushed["files"], folder, secrets_from=node.local_config)
        prepared = await asyncio.to_thread(
            lambda: prepare(load_config(folder), cache_dir=location.parent, log_warnings=False))
    except (OSError, MonitorError) as exc:
        log.error("config version %d refused, still running %s: %s", pushed["version"], node.version, exc)
        return
    node.apply(prepared, pushed["digest"])
    await node.store.call(Store.sync_feeds, prepared.config.feeds, utc_now())
    log.info("config version %d applied digest=%s feeds=%d", pushed["version"], pushed["digest"],
             len(prepared.config.feeds))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


async def _reload(node: Node, location: DatabaseURL) -> None:
    """SIGHUP: the newest pushed config if the cluster has one, else the local config folder
    again; a folder with a mistake is refused and the running config stays."""
    from monitor.config.load import load_config
    from monitor.ingest.prepare import prepare

    if await node.store.call(configs.latest) is not None:
        await _apply_pushed(node, location)
        return
    try:
        prepared = await asyncio.to_thread(
            lambda: prepare(load_config(node.local_config), cache_dir=location.parent, log_warnings=False))
    except MonitorError as exc:
        log.error("reload refused, still running %s: %s", node.version, exc)
        return
    node.apply(prepared, folder_version(node.local_config))
    await node.store.call(Store.sync_feeds, prepared.config.feeds, utc_now())
    log.info("config reloaded digest=%s feeds=%d", node.version, len(prepared.config.feeds))
